"""Plausibility checks on input images, each failing with an :class:`InputError` that says what is wrong."""

from __future__ import annotations

from typing import Optional

import numpy as np

from lungai.errors import InputError
from lungai.image import Image

MIN_SPACING_MM = 0.05
MAX_SPACING_MM = 20.0
MAX_VOXELS = 2_000_000_000


def check_finite(image: Image, path: Optional[str]) -> None:
    if np.issubdtype(image.array.dtype, np.floating) and not np.all(np.isfinite(image.array)):
        bad = int(np.count_nonzero(~np.isfinite(image.array)))
        raise InputError(path, f"contains {bad} non-finite voxel values (NaN or infinity)")


def check_geometry(image: Image, path: Optional[str]) -> None:
    sp = np.asarray(image.spacing)
    if np.any(~np.isfinite(sp)) or np.any(sp < MIN_SPACING_MM) or np.any(sp > MAX_SPACING_MM):
        raise InputError(path, f"absurd voxel spacing {tuple(round(float(s), 4) for s in sp)} mm "
                               f"(expected {MIN_SPACING_MM} to {MAX_SPACING_MM} mm per axis)")
    if image.array.size > MAX_VOXELS:
        raise InputError(path, f"absurd image size {image.size} ({image.array.size} voxels, limit {MAX_VOXELS})")
    if min(image.shape) < 2 or image.array.size == 0:
        raise InputError(path, f"absurd image size {image.size}: too few voxels along an axis")
    if not np.all(np.isfinite(image.direction)) or abs(abs(np.linalg.det(image.direction)) - 1) > 1e-3:
        raise InputError(path, "the direction matrix is not a rotation (corrupt orientation header)")


def check_3d(image: Image, path: Optional[str], min_slices: int = 3) -> None:
    if image.ndim != 3 or image.shape[0] < min_slices:
        got = "a 2D image" if image.ndim == 2 else f"only {image.shape[0]} slice(s)"
        raise InputError(path, f"a 3D CT volume is required but this is {got} (size {image.size})")


def check_ct_intensities(image: Image, path: Optional[str]) -> None:
    """Reject images whose values are not CT Hounsfield units (MR, 8-bit windowed, un-rescaled raw values)."""
    modality = str(image.metadata.get("modality", "")).upper()
    if modality and modality not in ("CT", "OT", "SC"):
        raise InputError(path, f"modality is {modality}, not CT: LungAI needs a CT in Hounsfield units")
    a = image.array
    if a.dtype == np.bool_:
        raise InputError(path, "this is a binary mask, not a CT image")
    sample = a[:: max(1, a.shape[0] // 32)] if a.ndim == 3 else a
    lo, hi = np.percentile(sample, [0.5, 99.5])
    vmin, vmax = float(sample.min()), float(sample.max())
    if vmin >= 0 and vmax <= 255:
        raise InputError(path, f"values {vmin:g}..{vmax:g} look like 8-bit windowed pixels, not Hounsfield "
                               "units; export the CT with its original HU values (or DICOM with rescale)")
    if vmin >= 0:
        raise InputError(path, f"values {vmin:g}..{vmax:g} have no negative numbers: this is not a CT in "
                               "Hounsfield units (an MR image, or stored values without rescale slope/intercept)")
    if lo > -500:
        raise InputError(path, f"no air or lung density found (0.5th percentile {lo:.0f} HU, expected below "
                               "-500 HU): not a chest CT in Hounsfield units")
    if hi > 40000 or vmin < -32768:
        raise InputError(path, f"values {vmin:g}..{vmax:g} are outside any CT Hounsfield range")


def check_ct(image: Image, path: Optional[str] = None) -> Image:
    """All checks a 3D chest CT must pass; returns the image for chaining."""
    path = path or image.metadata.get("source")
    check_3d(image, path)
    check_geometry(image, path)
    check_finite(image, path)
    check_ct_intensities(image, path)
    return image
