"""Noise level of a CT measured on the image itself (no reference): flat soft-tissue regions, per slice."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from lungai import quality


def slice_noise_std(slice_hu: np.ndarray, pixel_mm: float) -> Optional[float]:
    """Noise standard deviation (HU) of one axial slice, or None when it has no flat soft tissue."""
    rois = quality.uniform_rois(slice_hu, pixel_mm, keep_fraction=0.25, max_rois=32)
    return quality.noise_std(slice_hu, rois) if len(rois) >= 3 else None


def noise_profile(volume_hu: np.ndarray, pixel_mm: float) -> np.ndarray:
    """Noise std (HU) for every axial slice of ``volume_hu`` [k, j, i].

    Slices without flat soft tissue (lung apices, outside the body) take the value of the nearest measured
    slice. Raises ``ValueError`` when no slice has any.
    """
    vol = volume_hu if volume_hu.ndim == 3 else volume_hu[None]
    measured = np.array([np.nan if (s := slice_noise_std(sl, pixel_mm)) is None else s for sl in vol])
    ok = np.flatnonzero(np.isfinite(measured))
    if ok.size == 0:
        raise ValueError("no flat soft tissue found to measure the noise level")
    nearest = ok[np.abs(np.arange(len(vol))[:, None] - ok[None, :]).argmin(axis=1)]
    return measured[nearest]


#: doses at which :func:`bundle_noise_levels` measures a bundle's inputs (log-spaced; training interpolates)
LEVEL_TABLE_DOSES = tuple(float(d) for d in np.geomspace(0.03, 1.0, 11))


def bundle_noise_levels(bundle_path: Path, doses: Sequence[float] = LEVEL_TABLE_DOSES) -> Path:
    """Measure the noise level of every low-dose training input of a noise-bank bundle; returns the table's path.

    For each realization, slice and dose the input is made exactly as training makes it (noise sign +1) and its
    noise std measured with :func:`slice_noise_std`; slices without flat soft tissue take the nearest measured
    slice's value, as :func:`noise_profile` does at inference. Written to ``levels/<bundle>.npz`` beside it.
    """
    import torch

    from lungai.denoise.noisebank import Bundle, levels_path

    bundle = Bundle.load(Path(bundle_path), torch.device("cpu"))
    pixel_mm = float(np.load(bundle_path)["pixel_mm"])
    reps, n = int(bundle.noise.shape[0]), len(bundle)
    levels = np.empty((reps, n, len(doses)))
    for r in range(reps):
        for g, d in enumerate(doses):
            inputs = np.stack([bundle.pair(k, r, d, 1.0)[0].numpy() for k in range(n)])
            levels[r, :, g] = noise_profile(inputs, pixel_mm)
    out = levels_path(Path(bundle_path))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, doses=np.asarray(doses, float), levels=levels)
    return out
