"""Windowed 8-bit CT pictures (JPEG/PNG slices of public data sets) mapped back to approximate Hounsfield units.

Such pictures carry no rescale: each was windowed differently before it was saved. Two anatomical landmarks fix
the mapping slice by slice: the soft-tissue peak (chest wall muscle, about 40 HU) and the darkest lung (the 2nd
percentile of the dark pixels, about -950 HU). The lesion models and the weight-free method then see the same HU
scale as on a real CT.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

SOFT_TISSUE_HU = 40.0
DARK_LUNG_HU = -950.0
SOFT_TISSUE_GREY = (150, 245)  # where the soft-tissue peak of a lung-windowed picture lies (8-bit grey)


def picture_to_hu(gray: np.ndarray) -> np.ndarray:
    """HU estimate (float32) of an 8-bit lung-windowed picture by two-point calibration."""
    gray = np.asarray(gray, dtype=np.float32)
    bright = gray[(gray > SOFT_TISSUE_GREY[0]) & (gray < SOFT_TISSUE_GREY[1])]
    soft = float(np.bincount(bright.astype(int)).argmax()) if bright.size else 200.0
    dark = gray[gray < 0.5 * (soft + np.percentile(gray, 1))]
    low = float(np.percentile(dark, 2)) if dark.size else float(np.percentile(gray, 1))
    scale = (SOFT_TISSUE_HU - DARK_LUNG_HU) / max(soft - low, 1.0)
    return (DARK_LUNG_HU + (gray - low) * scale).astype(np.float32)


def picture_lungs(hu: np.ndarray, closing_px: int = 12) -> np.ndarray:
    """Lung mask of one picture: pixels below -450 HU, the two largest regions (each over 1 % of the picture),
    closed with a disc of ``closing_px`` and filled. Dense consolidation touching the chest wall stays out."""
    dark = ndi.binary_opening(hu < -450.0, iterations=2)
    labels, _ = ndi.label(dark)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = [int(i) for i in np.argsort(sizes)[::-1][:2] if sizes[i] > 0.01 * hu.size]
    disc = np.hypot(*np.mgrid[-closing_px:closing_px + 1, -closing_px:closing_px + 1]) <= closing_px
    padded = np.pad(np.isin(labels, keep), closing_px)
    closed = ndi.binary_fill_holes(ndi.binary_closing(padded, structure=disc))
    return closed[closing_px:-closing_px, closing_px:-closing_px]
