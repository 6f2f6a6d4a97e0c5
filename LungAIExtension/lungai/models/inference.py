"""Running a registry model on an image: build, load verified weights, preprocess, slide, map back.

Memory stays bounded: the network sees one window batch at a time (on the GPU when asked) while the stitched
output is kept on the CPU at the model's (coarser) grid; probabilities are mapped back to the input grid one
channel at a time while a running arg-max builds the label map. A 2D model given a 3D CT runs slice by slice
on the axial slices of the model orientation.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import SimpleITK as sitk
import torch

from lungai.errors import InputError, LungAIError
from lungai.image import Image
from lungai.models import architectures
from lungai.models.preprocess import denormalize, normalize, resample_onto, to_model_grid
from lungai.models.registry import ModelEntry
from lungai.models.weights import require_weights
from lungai.progress import Progress, ensure
from lungai.provenance import Provenance

Device = Union[str, torch.device]
_NETWORK_CACHE: "OrderedDict[Tuple[str, str, str], torch.nn.Module]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 3
SLICE_CHUNK = 16


def resolve_device(device: Device = "cpu") -> torch.device:
    """``auto`` takes CUDA when available; ``cuda`` without a GPU is an error."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LungAIError("device cuda was asked for, but torch sees no CUDA GPU on this machine")
    return torch.device(name)


def build_network(entry: ModelEntry) -> torch.nn.Module:
    """The untrained network of ``entry`` (architecture and parameters from the registry)."""
    arch = entry.architecture
    return architectures.build(arch["name"], entry.spatial_dims, entry.in_channels, int(entry.out_channels),
                               **dict(arch.get("params", {})))


def load_network(entry: ModelEntry, device: Device = "cpu", *, cache: bool = True) -> torch.nn.Module:
    """Network of ``entry`` in eval mode with its verified weights (cache first, then shipped)."""
    dev = resolve_device(device)
    key = (entry.id, entry.sha256, str(dev))
    with _CACHE_LOCK:
        if cache and key in _NETWORK_CACHE:
            _NETWORK_CACHE.move_to_end(key)
            return _NETWORK_CACHE[key]
    path = require_weights(entry)
    network = build_network(entry)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several kinds for a damaged or foreign file
        raise InputError(path, f"cannot be loaded as PyTorch weights ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputError(path, f"does not fit the {entry.architecture['name']} network of {entry.id}: "
                               f"{str(exc).splitlines()[0]}") from None
    network.to(dev).eval()
    if cache:
        with _CACHE_LOCK:
            _NETWORK_CACHE[key] = network
            while len(_NETWORK_CACHE) > _CACHE_SIZE:
                _NETWORK_CACHE.popitem(last=False)
    return network


@dataclass
class InferenceResult:
    """What a model made of an image, on the input image's grid, with its provenance.

    ``labels``: arg-max label map (softmax/sigmoid models); ``probabilities``: ``[C, *image.shape]`` float32 when
    asked for; ``output``: the image a regression model produced (intensities in the input's units);
    ``scores``: label name -> probability for classification models.
    """

    provenance: Provenance
    labels: Optional[Image] = None
    probabilities: Optional[np.ndarray] = None
    output: Optional[Image] = None
    scores: Optional[Dict[str, float]] = None
    seconds: float = 0.0
    extra: Dict[str, Any] = field(default_factory=dict)


def _window_count(size: Sequence[int], roi: Sequence[int], overlap: float) -> int:
    count = 1
    for s, r in zip(size, roi):
        if r >= s:
            continue
        step = max(int(r * (1 - overlap)), 1)
        count *= math.ceil((s - r) / step) + 1
    return count


class _CountingPredictor:
    """Wraps the network for ``sliding_window_inference``: reports progress per window batch, honours cancel."""

    def __init__(self, network: torch.nn.Module, progress: Progress, total: int, message: str):
        self.network, self.progress, self.total, self.message, self.done = network, progress, max(total, 1), message, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.progress.check()
        out = self.network(x)
        self.done += 1
        self.progress.update(min(self.done / self.total, 1.0), self.message)
        return out


def _activate(logits: torch.Tensor, output: str) -> torch.Tensor:
    if output in ("softmax", "classification"):
        return torch.softmax(logits, dim=1)
    if output == "sigmoid":
        return torch.sigmoid(logits)
    return logits


def _predict(network: torch.nn.Module, x: torch.Tensor, entry: ModelEntry, device: torch.device,
             flips: List[Tuple[int, ...]], progress: Progress) -> torch.Tensor:
    """Activated output for a batch ``x`` ([B, C, *spatial]) on the CPU, averaged over test-time flips."""
    from monai.inferers import sliding_window_inference

    spatial = tuple(x.shape[2:])
    roi = entry.patch_size_array or spatial
    roi = tuple(int(r) for r in roi[-len(spatial):])
    options = entry.inference
    overlap = float(options.get("overlap", 0.25))
    sw_batch = int(options.get("sw_batch_size", 2 if entry.spatial_dims == 3 else 8))
    calls = math.ceil(_window_count(spatial, roi, overlap) * x.shape[0] / sw_batch)
    total = None
    passes = [()] + list(flips)
    for index, axes in enumerate(passes):
        sub = progress.span(index / len(passes), (index + 1) / len(passes))
        predictor = _CountingPredictor(network, sub, calls, f"{entry.name}: pass {index + 1} of {len(passes)}")
        dims = tuple(a + 2 for a in axes)
        xin = torch.flip(x, dims) if dims else x
        with torch.inference_mode():
            logits = sliding_window_inference(xin, roi, sw_batch, predictor, overlap=overlap,
                                              mode=options.get("blend", "gaussian"), sw_device=device,
                                              device=torch.device("cpu"))
            out = _activate(logits.float(), entry.output)
        if dims:
            out = torch.flip(out, dims)
        total = out if total is None else total + out
    assert total is not None
    return total / len(passes)


def _flip_sets(entry: ModelEntry, tta_flips: bool) -> List[Tuple[int, ...]]:
    if not tta_flips:
        return []
    axes = entry.inference.get("tta_axes", list(range(entry.spatial_dims)))
    return [(int(a),) for a in axes]


def _back_to_input(prob: np.ndarray, grid: sitk.Image, reference: sitk.Image, output: str,
                   keep: bool, progress: Progress) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Map channel probabilities from the model grid onto the input grid; running arg-max."""
    shape = sitk.GetArrayViewFromImage(reference).shape
    best = np.full(shape, -1.0, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    kept = np.zeros((prob.shape[0],) + shape, dtype=np.float32) if keep else None
    for c in range(prob.shape[0]):
        progress.update(c / prob.shape[0], "mapping the result back to the input grid")
        channel = sitk.GetImageFromArray(np.ascontiguousarray(prob[c]))
        channel.CopyInformation(grid)
        default = 1.0 if (c == 0 and output == "softmax") else 0.0
        mapped = sitk.GetArrayFromImage(resample_onto(channel, reference, default))
        if kept is not None:
            kept[c] = mapped
        if output == "sigmoid":
            labels[(mapped >= 0.5) & (mapped > best)] = c + 1
            best = np.maximum(best, np.where(mapped >= 0.5, mapped, -1.0))
        else:
            better = mapped > best
            labels[better] = c
            best[better] = mapped[better]
    return labels, kept


def run_inference(image: Image, entry: ModelEntry, device: Device = "cpu", tta_flips: bool = False,
                  progress: Optional[Progress] = None, *, return_probabilities: bool = False,
                  network: Optional[torch.nn.Module] = None) -> InferenceResult:
    """Apply model ``entry`` to ``image``; the result lies on the input grid and carries its provenance.

    ``progress.cancel()`` stops the run between two window batches (raises :class:`lungai.errors.Cancelled`).
    ``network`` may be given to run a network that is not (yet) published, e.g. during validation.
    """
    progress = ensure(progress)
    started = time.perf_counter()
    dev = resolve_device(device)
    if image.ndim < entry.spatial_dims:
        raise InputError(image.metadata.get("source"), f"is {image.ndim}D but model {entry.id} needs "
                                                       f"{entry.spatial_dims}D images")
    progress.update(0.0, f"loading {entry.id}")
    net = network if network is not None else load_network(entry, dev)
    net.eval()
    progress.update(0.02, "preparing the image")
    reference = image.to_sitk()
    grid, _ = to_model_grid(image, entry)
    array = normalize(sitk.GetArrayViewFromImage(grid), entry.normalization)
    if not array.flags.writeable:  # "none" normalisation hands back SimpleITK's read-only view
        array = array.copy()
    flips = _flip_sets(entry, tta_flips)
    run = progress.span(0.05, 0.85)
    if entry.output == "classification":
        prob = _classify(net, array, entry, dev)
        names = [entry.labels.get(i, str(i)) for i in range(prob.shape[0])]
        scores = {n: float(p) for n, p in zip(names, prob)}
        result = InferenceResult(_provenance(entry, dev, tta_flips, flips), scores=scores)
    else:
        x = torch.from_numpy(np.ascontiguousarray(array))
        if entry.spatial_dims == 3 or image.ndim == 2:
            prob = _predict(net, x[None, None], entry, dev, flips, run)[0].numpy()
        else:  # 2D model on a 3D volume: batches of axial slices
            chunks = []
            n = x.shape[0]
            for start in range(0, n, SLICE_CHUNK):
                stop = min(start + SLICE_CHUNK, n)
                part = run.span(start / n, stop / n)
                chunks.append(_predict(net, x[start:stop, None], entry, dev, flips, part).numpy())
            prob = np.concatenate(chunks, axis=0).transpose(1, 0, 2, 3)
        result = InferenceResult(_provenance(entry, dev, tta_flips, flips))
        back = progress.span(0.85, 1.0)
        if entry.output == "regression":
            out = sitk.GetImageFromArray(denormalize(prob[0], entry.normalization))
            out.CopyInformation(grid)
            mapped = sitk.GetArrayFromImage(resample_onto(out, reference))
            result.output = image.like(mapped.astype(np.float32), **result.provenance.header_fields())
        else:
            labels, kept = _back_to_input(prob, grid, reference, entry.output, return_probabilities, back)
            result.labels = image.like(labels, **result.provenance.header_fields())
            result.probabilities = kept
    result.seconds = time.perf_counter() - started
    result.provenance.parameters["seconds"] = round(result.seconds, 2)
    progress.update(1.0, f"{entry.name} done")
    return result


def _classify(network: torch.nn.Module, array: np.ndarray, entry: ModelEntry, device: torch.device) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(array))[None, None].float()
    if entry.patch_size_array is not None:
        mode = "bilinear" if entry.spatial_dims == 2 else "trilinear"
        x = torch.nn.functional.interpolate(x, size=entry.patch_size_array, mode=mode, align_corners=False)
    with torch.inference_mode():
        return _activate(network(x.to(device)).float().cpu(), entry.output)[0].numpy()


def _provenance(entry: ModelEntry, device: torch.device, tta: bool, flips: List[Tuple[int, ...]]) -> Provenance:
    return Provenance(
        method=f"{entry.task} model {entry.name}", model_name=entry.name, model_version=entry.version,
        weights_sha256=entry.sha256,
        parameters={"architecture": entry.architecture["name"], "spacing_mm": entry.spacing,
                    "patch_size": entry.patch_size, "orientation": entry.orientation,
                    "normalization": entry.normalization, "overlap": entry.inference.get("overlap", 0.25),
                    "tta_flips": [list(f) for f in flips] if tta else [], "device": device.type})
