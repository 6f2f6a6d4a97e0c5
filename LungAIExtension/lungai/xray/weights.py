"""Getting a ready classifier network: the registry's verified model, or a weights file the user supplies."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from lungai.errors import InputError
from lungai.xray.network import NetworkConfig, XrayNet, build_network

MODEL_NAME = "xray-pneumonia"
_STAGE_KEY = re.compile(r"^backbone\.layer(\d+)\.(\d+)\.conv1\.weight$")


def config_from_state(state: Dict[str, torch.Tensor], input_size: int = NetworkConfig.input_size) -> NetworkConfig:
    """Widths and blocks per stage read off the tensor shapes of an ``xray-resnet`` state dict."""
    stages: Dict[int, Dict[int, int]] = {}
    for key, value in state.items():
        match = _STAGE_KEY.match(key)
        if match:
            stages.setdefault(int(match.group(1)), {})[int(match.group(2))] = int(value.shape[0])
    if not stages:
        raise ValueError("no backbone.layerN.M.conv1 weights: not an xray-resnet state dict")
    order = sorted(stages)
    return NetworkConfig(input_size=input_size, widths=tuple(stages[s][0] for s in order),
                         blocks=tuple(len(stages[s]) for s in order))


def _read_state(path: Path) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    if not path.is_file():
        raise InputError(path, "weights file does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several kinds for damaged or foreign files
        raise InputError(path, f"cannot be loaded as PyTorch weights ({exc})") from None
    params: Dict[str, Any] = {}
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        params = dict(data.get("params") or {})
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise InputError(path, "holds no state dict of tensors (expected torch.save(network.state_dict()))")
    return data, params


def load_weights_file(path: Path, input_size: Optional[int] = None) -> XrayNet:
    """An ``xray-resnet`` network from a user's weights file, its layout inferred from the tensor shapes.

    The file is a state dict (as ``publish_model`` writes) or ``{"state_dict": ..., "params": {...}}``.
    """
    path = Path(path)
    state, params = _read_state(path)
    try:
        config = NetworkConfig.from_dict(params) if params else config_from_state(state)
    except ValueError as exc:
        raise InputError(path, str(exc)) from None
    if input_size is not None:
        config = NetworkConfig(input_size, config.widths, config.blocks, config.dropout)
    network = build_network(config)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputError(path, f"does not fit the xray-resnet network: {str(exc).splitlines()[0]}") from None
    return network.eval()


def load_initial_weights(network: XrayNet, path: Path) -> Dict[str, int]:
    """Start training from a user's (e.g. pretrained) weights: copy every tensor whose name and shape match.

    Returns how many tensors were loaded and skipped; refuses a file that matches nothing.
    """
    state, _ = _read_state(Path(path))
    own = network.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise InputError(path, "no tensor matches the xray-resnet network by name and shape")
    network.load_state_dict(usable, strict=False)
    return {"loaded": len(usable), "skipped": len(state) - len(usable)}


def registry_network(version: Optional[str] = None, device: str = "cpu"):
    """``(network, entry)`` of the newest (or given) registered ``xray-pneumonia`` model, weights verified."""
    from lungai.models import get_model, load_network

    entry = get_model(MODEL_NAME, version)
    return load_network(entry, device), entry
