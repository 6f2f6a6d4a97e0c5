"""Plausibility checks on input images, each failing with an :class:`InputError` that names the file and says
what is wrong, so that a reader sees at once why a CT was refused and what to do about it."""

from __future__ import annotations

from typing import Optional

import numpy as np

from lungai.errors import InputError
from lungai.image import Image

MIN_SPACING_MM = 0.05
MAX_SPACING_MM = 20.0
MAX_VOXELS = 2_000_000_000
MAX_AXIS_VOXELS = 8192
MAX_EXTENT_MM = 2500.0
DEFAULT_CT_MIN_SLICES = 3
DEFAULT_VOLUME_MIN_SLICES = 2
CT_MODALITIES = ("CT", "OT", "SC")  # OT/SC: converted or secondary-capture CTs keep HU more often than not


def check_finite(image: Image, path: Optional[str]) -> None:
    """No NaN or infinite voxel values (also those a file reader replaced, counted in the metadata)."""
    bad = int(image.metadata.get("non_finite_voxels", 0))
    if np.issubdtype(image.array.dtype, np.floating) and not np.all(np.isfinite(image.array)):
        bad = max(bad, int(np.count_nonzero(~np.isfinite(image.array))))
    if bad:
        raise InputError(path, f"contains {bad} non-finite voxel values (NaN or infinity)")


def check_geometry(image: Image, path: Optional[str], min_size: int = 2) -> None:
    """Spacing, size and orientation a scanner can produce (catches corrupt or mis-scaled headers).

    ``min_size`` is the fewest voxels allowed along each in-plane axis (the slice axis is left to
    :func:`check_3d`).
    """
    sp = np.asarray(image.spacing)
    if np.any(~np.isfinite(sp)) or np.any(sp < MIN_SPACING_MM) or np.any(sp > MAX_SPACING_MM):
        raise InputError(path, f"absurd voxel spacing {tuple(round(float(s), 4) for s in sp)} mm "
                               f"(expected {MIN_SPACING_MM} to {MAX_SPACING_MM} mm per axis; is the header "
                               "in the wrong unit or corrupt?)")
    if image.array.size > MAX_VOXELS or max(image.shape) > MAX_AXIS_VOXELS:
        raise InputError(path, f"absurd image size {image.size} ({image.array.size} voxels; limits "
                               f"{MAX_AXIS_VOXELS} per axis and {MAX_VOXELS} in all)")
    in_plane = image.size[:2]
    if image.array.size == 0 or min(in_plane) < min_size:
        raise InputError(path, f"absurd image size {image.size}: fewer than {min_size} voxels along an in-plane axis")
    extent = [n * s for n, s in zip(image.size, image.spacing)]
    if max(extent) > MAX_EXTENT_MM:
        raise InputError(path, f"absurd field of view {tuple(round(e) for e in extent)} mm (more than "
                               f"{MAX_EXTENT_MM:g} mm along an axis): the spacing in the header is wrong")
    d = image.direction
    if not np.all(np.isfinite(d)) or not np.allclose(d.T @ d, np.eye(image.ndim), atol=1e-3):
        raise InputError(path, "the direction matrix is not a rotation (corrupt orientation header)")
    if not np.all(np.isfinite(image.origin)):
        raise InputError(path, "the origin is not a finite point (corrupt header)")


def check_3d(image: Image, path: Optional[str], min_slices: int = DEFAULT_CT_MIN_SLICES) -> None:
    """A 3D volume with at least ``min_slices`` slices."""
    if image.ndim == 3 and image.shape[0] >= min_slices:
        return
    got = "a 2D image" if image.ndim == 2 else f"only {image.shape[0]} slice(s)"
    hint = ""
    if image.metadata.get("single_dicom_file"):
        hint = "; this is one DICOM file: give the folder that holds the whole series"
    elif image.ndim == 3 and min_slices > 1:
        hint = f" (at least {min_slices} slices are needed)"
    raise InputError(path, f"a 3D volume is required but this is {got} (size {image.size}){hint}")


def check_ct_modality(image: Image, path: Optional[str]) -> None:
    """Reject images whose DICOM modality says they are not CT (MR, radiographs, PET...)."""
    modality = str(image.metadata.get("modality", "")).strip().upper()
    if modality and modality not in CT_MODALITIES:
        raise InputError(path, f"modality is {modality}, not CT: LungAI needs a CT in Hounsfield units")


def check_ct_intensities(image: Image, path: Optional[str]) -> None:
    """Reject images whose values are not CT Hounsfield units (MR, 8-bit windowed, un-rescaled raw values)."""
    check_ct_modality(image, path)
    a = image.array
    if a.dtype == np.bool_:
        raise InputError(path, "this is a binary mask, not a CT image")
    sample = a[:: max(1, a.shape[0] // 32)] if a.ndim == 3 else a
    lo, hi = np.percentile(sample, [0.5, 99.5])
    vmin, vmax = float(sample.min()), float(sample.max())
    if vmin >= 0 and image.metadata.get("dicom_rescale") is False:
        raise InputError(path, f"the DICOM has no Rescale Slope/Intercept (0028,1053/0028,1052) and its stored "
                               f"values {vmin:g}..{vmax:g} are not Hounsfield units; export the CT with rescale")
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


def check_volume(image: Image, path: Optional[str] = None,
                 min_slices: int = DEFAULT_VOLUME_MIN_SLICES) -> Image:
    """A 3D volume with sane geometry and finite values, any intensities (masks, probability maps)."""
    path = path or image.metadata.get("source")
    check_3d(image, path, min_slices)
    check_geometry(image, path)
    check_finite(image, path)
    return image


def check_ct(image: Image, path: Optional[str] = None, min_slices: int = DEFAULT_CT_MIN_SLICES) -> Image:
    """All checks a 3D chest CT must pass; returns the image for chaining.

    ``min_slices`` may be lowered for thin crops (2-slice test crops, single DICOM slices with 1).
    """
    path = path or image.metadata.get("source")
    check_ct_modality(image, path)
    check_3d(image, path, min_slices)
    check_geometry(image, path, min_size=16)
    check_finite(image, path)
    check_ct_intensities(image, path)
    return image
