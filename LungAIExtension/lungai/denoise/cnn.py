"""CNN denoising: the registered RED-CNN-style model run slice by slice, in batches, on CPU or GPU."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch

from lungai.denoise.network import NOISE_LEVEL_SCALE  # importing the module registers the architecture
from lungai.denoise.noise_level import noise_profile
from lungai.image import Image
from lungai.models.preprocess import denormalize, normalize
from lungai.models.registry import ModelEntry, get_model
from lungai.progress import Progress, ensure
from lungai.provenance import Provenance

MODEL_NAME = "denoise-redcnn"
BATCH = 8


def default_model(version: Optional[str] = None) -> ModelEntry:
    """Registry entry of the shipped (or locally retrained) denoiser, newest version unless given."""
    return get_model(MODEL_NAME, version)


def _pad_to(batch: torch.Tensor, multiple: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    h, w = batch.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        batch = torch.nn.functional.pad(batch, (0, pw, 0, ph), mode="replicate")
    return batch, (h, w)


def uses_noise_level(net: torch.nn.Module) -> bool:
    """Whether ``net`` takes the measured noise level as a second input channel."""
    return bool(getattr(net, "noise_level_input", False))


def denoise_slices(net: torch.nn.Module, slices_hu: np.ndarray, normalization: dict, device: torch.device,
                   progress: Optional[Progress] = None, batch: int = BATCH, noise_std: Optional[np.ndarray] = None,
                   pixel_mm: Optional[float] = None) -> np.ndarray:
    """Run ``net`` on ``slices_hu`` [n, j, i] (HU) in batches; returns HU, float32, same shape.

    A network with the noise-level input gets each slice's noise std (HU): ``noise_std`` [n] when given, else
    measured in flat soft tissue (:func:`lungai.denoise.noise_level.noise_profile`, needs ``pixel_mm``).
    """
    progress = ensure(progress)
    multiple = int(getattr(net, "shuffle", 1))
    out = np.empty(slices_hu.shape, np.float32)
    n = len(slices_hu)
    levels = slice_noise_levels(slices_hu, pixel_mm, noise_std) if uses_noise_level(net) else None
    with torch.inference_mode():
        for start in range(0, n, batch):
            chunk = normalize(slices_hu[start:start + batch], normalization)
            x = torch.from_numpy(np.ascontiguousarray(chunk))[:, None]
            if levels is not None:
                level = torch.from_numpy(np.asarray(levels[start:start + batch], np.float32) * NOISE_LEVEL_SCALE)
                x = torch.cat([x, level[:, None, None, None].expand_as(x)], dim=1)
            x, (h, w) = _pad_to(x, multiple)
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            y = net(x)[:, 0, :h, :w].float().cpu().numpy()
            out[start:start + batch] = denormalize(y, normalization)
            progress.update(min(n, start + batch) / n, f"CNN denoising, slice {min(n, start + batch)}/{n}")
    return out


def slice_noise_levels(slices_hu: np.ndarray, pixel_mm: Optional[float],
                       noise_std: Optional[np.ndarray] = None) -> np.ndarray:
    """Noise std (HU) per slice for the noise-level input: ``noise_std`` (one value or one per slice) when given,
    else measured as for non-local means."""
    if noise_std is not None:
        return np.broadcast_to(np.asarray(noise_std, np.float32), (len(slices_hu),))
    if pixel_mm is None:
        raise ValueError("the pixel size is needed to measure the noise level for this network")
    try:
        return noise_profile(slices_hu, float(pixel_mm)).astype(np.float32)
    except ValueError:
        raise ValueError("no flat soft tissue found to measure the noise level the CNN needs; "
                         "give the noise std (HU) explicitly") from None


def denoise_cnn(image: Image, strength: float = 1.0, entry: Optional[ModelEntry] = None, device: str = "cpu",
                progress: Optional[Progress] = None, noise_std: Optional[float] = None) -> Tuple[Image, Provenance]:
    """Denoise every axial slice of ``image`` (HU) with the CNN; ``strength`` blends input (0) to CNN (1).

    Strengths above 1 extrapolate the removed noise (at most 1.5). HU stay calibrated: the network is
    residual and trained to keep the mean. A model with the noise-level input measures the noise std of each
    slice in flat soft tissue unless ``noise_std`` (HU) is given.
    """
    from lungai.models.inference import load_network, resolve_device

    progress = ensure(progress)
    if not 0.0 <= strength <= 1.5:
        raise ValueError("strength must be between 0 and 1.5 for the CNN")
    entry = entry or default_model()
    dev = resolve_device(device)
    progress.update(0.0, f"loading {entry.id}")
    net = load_network(entry, dev).to(memory_format=torch.channels_last)
    vol = image.array.astype(np.float32) if image.ndim == 3 else image.array.astype(np.float32)[None]
    parameters = {"strength": float(strength), "architecture": entry.architecture, "device": dev.type}
    levels = None
    if uses_noise_level(net):
        progress.update(0.01, "measuring the noise level")
        levels = slice_noise_levels(vol, float(np.mean(image.spacing[:2])), noise_std)
        parameters["noise_std_hu_median"] = round(float(np.median(levels)), 2)
        parameters["noise_std_measured"] = noise_std is None
    clean = denoise_slices(net, vol, entry.normalization, dev, progress.span(0.02, 1.0),
                           batch=int(entry.inference.get("sw_batch_size", BATCH)), noise_std=levels)
    result = vol + strength * (clean - vol)
    result = result if image.ndim == 3 else result[0]
    provenance = Provenance(method="CNN denoising (RED-CNN style, slice-wise)", model_name=entry.name,
                            model_version=entry.version, weights_sha256=entry.sha256, parameters=parameters)
    return image.like(result.astype(np.float32), method="cnn", strength=float(strength)), provenance
