"""Network builders by name, so that the registry can describe a model as ``{"name": ..., "params": {...}}``.

A builder is ``builder(spatial_dims, in_channels, out_channels, **params) -> torch.nn.Module``. The MONAI
networks LungAI uses are registered here; other modules add their own with :func:`register`::

    from lungai.models import architectures
    architectures.register("MyNet", lambda spatial_dims, in_channels, out_channels, **p: MyNet(...))
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List

import torch
from torch import nn

from lungai.errors import LungAIError

Builder = Callable[..., nn.Module]
_BUILDERS: Dict[str, Builder] = {}


def register(name: str, builder: Builder, *, replace: bool = False) -> None:
    """Make ``name`` usable as ``architecture.name`` in the registry."""
    if name in _BUILDERS and not replace and _BUILDERS[name] is not builder:
        raise ValueError(f"architecture {name!r} is already registered")
    _BUILDERS[name] = builder


def names() -> List[str]:
    return sorted(_BUILDERS)


# Architectures defined by a capability's own package register themselves on import; these are imported on demand.
PROVIDERS: Dict[str, str] = {"xray-resnet": "lungai.xray.network", "REDCNNShuffle": "lungai.denoise.network",
                             "EmbolusMLP": "lungai.embolism.scorer"}


def build(name: str, spatial_dims: int, in_channels: int, out_channels: int, **params: Any) -> nn.Module:
    """Instantiate a registered architecture (importing the package that provides it when needed)."""
    if name not in _BUILDERS and name in PROVIDERS:
        importlib.import_module(PROVIDERS[name])
    if name not in _BUILDERS:
        raise LungAIError(f"unknown network architecture {name!r}; registered: {', '.join(names())}")
    try:
        return _BUILDERS[name](spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                               **params)
    except TypeError as exc:
        raise LungAIError(f"architecture {name} cannot be built with parameters {params}: {exc}") from None


# -- MONAI networks ---------------------------------------------------------------------------------------------
def _unet(spatial_dims: int, in_channels: int, out_channels: int, **p: Any) -> nn.Module:
    from monai.networks.nets import UNet

    p.setdefault("channels", (16, 32, 64, 128))
    p.setdefault("strides", (2,) * (len(p["channels"]) - 1))
    p.setdefault("num_res_units", 2)
    return UNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels, **p)


def _basic_unet(spatial_dims: int, in_channels: int, out_channels: int, **p: Any) -> nn.Module:
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels, **p)


def _densenet121(spatial_dims: int, in_channels: int, out_channels: int, **p: Any) -> nn.Module:
    from monai.networks.nets import DenseNet121

    return DenseNet121(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels, **p)


def _segresnet(spatial_dims: int, in_channels: int, out_channels: int, **p: Any) -> nn.Module:
    from monai.networks.nets import SegResNet

    return SegResNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels, **p)


class REDCNN(nn.Module):
    """Residual encoder-decoder CNN for low-dose CT denoising (Chen et al., IEEE TMI 2017).

    Unpadded convolutions shrink the image, transposed convolutions grow it back, and three shortcuts add
    encoder features (and the input itself) to the decoder, so the network learns the noise to remove.
    """

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1, features: int = 96,
                 kernel_size: int = 5, depth: int = 5):
        super().__init__()
        if depth < 3 or depth % 2 == 0:
            raise ValueError("REDCNN depth must be odd and at least 3")
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        deconv = nn.ConvTranspose2d if spatial_dims == 2 else nn.ConvTranspose3d
        self.encoder = nn.ModuleList(
            [conv(in_channels if i == 0 else features, features, kernel_size) for i in range(depth)])
        self.decoder = nn.ModuleList(
            [deconv(features, out_channels if i == depth - 1 else features, kernel_size) for i in range(depth)])
        self.act = nn.ReLU()
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcuts = [x]
        out = x
        for i, layer in enumerate(self.encoder):
            out = self.act(layer(out))
            if i % 2 == 1 and i < self.depth - 1:
                shortcuts.append(out)
        for i, layer in enumerate(self.decoder):
            out = layer(out)
            back = self.depth - 1 - i
            if back % 2 == 0:
                out = out + shortcuts.pop()
            if i < self.depth - 1:
                out = self.act(out)
        return out


def _redcnn(spatial_dims: int, in_channels: int, out_channels: int, **p: Any) -> nn.Module:
    return REDCNN(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels, **p)


for _name, _builder in {"UNet": _unet, "BasicUNet": _basic_unet, "DenseNet121": _densenet121,
                        "SegResNet": _segresnet, "REDCNN": _redcnn}.items():
    register(_name, _builder)
