"""Classical baseline: slice-wise non-local means with the filter strength set from the measured noise level."""

from __future__ import annotations

from typing import Optional

import numpy as np
from skimage.restoration import denoise_nl_means

from lungai.denoise.noise_level import noise_profile
from lungai.image import Image
from lungai.progress import Progress, ensure

#: h = H_PER_SIGMA * strength * noise std (skimage's advice for fast mode is h ~ 0.8 sigma).
H_PER_SIGMA = 0.8
PATCH_MM = 4.0
SEARCH_MM = 10.0


def nlm_parameters(pixel_mm: float) -> dict:
    """Patch size and search distance (pixels) for a pixel size: about 4 mm patches, 10 mm search radius."""
    patch = max(3, int(round(PATCH_MM / pixel_mm)) | 1)
    return {"patch_size": patch, "patch_distance": max(3, int(round(SEARCH_MM / pixel_mm / 2)))}


def denoise_nlm(image: Image, strength: float = 1.0, noise_std: Optional[float] = None,
                progress: Optional[Progress] = None) -> Image:
    """Non-local means on every axial slice (HU in, HU out, same grid).

    The noise std is measured per slice in flat soft tissue unless ``noise_std`` is given; ``strength``
    scales the filtering (1.0 = default, 0 = no change). Metadata records the parameters and noise levels.
    """
    progress = ensure(progress)
    if strength < 0:
        raise ValueError("strength must be 0 or more")
    vol = image.array.astype(np.float32) if image.ndim == 3 else image.array.astype(np.float32)[None]
    pixel_mm = float(np.mean(image.spacing[:2]))
    progress.update(0.0, "measuring the noise level")
    sigmas = np.full(len(vol), float(noise_std)) if noise_std is not None else noise_profile(vol, pixel_mm)
    params = nlm_parameters(pixel_mm)
    out = np.empty_like(vol)
    for k, sl in enumerate(vol):
        h = H_PER_SIGMA * strength * float(sigmas[k])
        out[k] = sl if h <= 0 else denoise_nl_means(sl, h=h, sigma=float(sigmas[k]), fast_mode=True, **params)
        progress.update((k + 1) / len(vol), f"non-local means, slice {k + 1}/{len(vol)}")
    result = out if image.ndim == 3 else out[0]
    meta = {"method": "nlm", "strength": float(strength), "h_per_sigma": H_PER_SIGMA, **params,
            "noise_std_hu_median": float(np.median(sigmas))}
    return image.like(result.astype(np.float32), **meta)
