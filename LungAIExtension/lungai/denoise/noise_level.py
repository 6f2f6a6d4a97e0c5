"""Noise level of a CT measured on the image itself (no reference): flat soft-tissue regions, per slice."""

from __future__ import annotations

from typing import Optional

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
