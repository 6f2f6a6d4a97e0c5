"""Preprocessing shared by inference and training, so a model always sees what it was trained on.

Order: reorient to the model's orientation (3D), resample to the model's spacing (Gaussian anti-aliasing when
shrinking), normalise intensities as the registry entry says. Label maps follow the same grid with SimpleITK's
label-Gaussian interpolation (smooth borders, labels kept).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from lungai.image import Image


# -- intensities -------------------------------------------------------------------------------------------------
def normalize(array: np.ndarray, spec: Dict[str, Any]) -> np.ndarray:
    """Map raw intensities to network input (float32) by the registry's ``normalization`` entry."""
    kind = spec.get("type", "none")
    a = np.asarray(array, dtype=np.float32)
    if kind == "ct_window":
        lo, hi = (float(v) for v in spec["window"])
        return (np.clip(a, lo, hi) - lo) / (hi - lo)
    if kind == "zscore":
        mean = float(spec["mean"]) if "mean" in spec else float(a.mean())
        std = float(spec["std"]) if "std" in spec else float(a.std())
        return (a - mean) / max(std, 1e-6)
    if kind == "minmax":
        lo, hi = float(a.min()), float(a.max())
        return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    if kind == "scale":
        return a * float(spec.get("scale", 1.0)) + float(spec.get("offset", 0.0))
    if kind == "none":
        return a
    raise ValueError(f"unknown normalization type {kind!r}")


def denormalize(array: np.ndarray, spec: Dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`normalize` for regression outputs (no clipping); fixed-parameter types only."""
    kind = spec.get("type", "none")
    a = np.asarray(array, dtype=np.float32)
    if kind == "ct_window":
        lo, hi = (float(v) for v in spec["window"])
        return a * (hi - lo) + lo
    if kind == "zscore" and "mean" in spec and "std" in spec:
        return a * float(spec["std"]) + float(spec["mean"])
    if kind == "scale":
        return (a - float(spec.get("offset", 0.0))) / float(spec.get("scale", 1.0))
    if kind == "none":
        return a
    raise ValueError(f"normalization {spec} cannot be inverted (it depends on the image)")


# -- geometry ----------------------------------------------------------------------------------------------------
def reorient(image: sitk.Image, orientation: str) -> sitk.Image:
    """3D image with its axes permuted/flipped to the DICOM orientation code (e.g. ``LPS``); 2D unchanged."""
    if image.GetDimension() != 3:
        return image
    return sitk.DICOMOrient(image, orientation)


def target_spacing(image: sitk.Image, spacing: Optional[Sequence[float]]) -> Tuple[float, ...]:
    """Model spacing in ITK order; a 2D spacing applied to a 3D image keeps the slice spacing."""
    current = image.GetSpacing()
    if spacing is None:
        return tuple(current)
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) == 2 and image.GetDimension() == 3:
        return spacing + (current[2],)
    return spacing


def resample_to_spacing(image: sitk.Image, spacing: Sequence[float], *, is_label: bool = False) -> sitk.Image:
    """Resample to ``spacing`` (ITK order) over the same physical extent; smooths first when shrinking."""
    old_spacing = np.asarray(image.GetSpacing(), dtype=float)
    new_spacing = np.asarray(spacing, dtype=float)
    if np.allclose(old_spacing, new_spacing, rtol=1e-4):
        return image
    old_size = np.asarray(image.GetSize())
    new_size = np.maximum(1, np.round(old_size * old_spacing / new_spacing)).astype(int)
    direction = np.asarray(image.GetDirection()).reshape(image.GetDimension(), -1)
    origin = np.asarray(image.GetOrigin()) + direction @ ((new_spacing - old_spacing) / 2.0)
    source = image
    if not is_label and np.any(new_spacing > old_spacing * 1.2):
        sigma = np.sqrt(np.maximum(new_spacing ** 2 - old_spacing ** 2, 0.0)) / 2.355
        sigma = np.where(new_spacing > old_spacing * 1.2, sigma, 0.0)
        source = sitk.DiscreteGaussian(sitk.Cast(image, sitk.sitkFloat32), [float(s * s) for s in sigma], 32, 0.01,
                                       True)
    reference = sitk.Image([int(s) for s in new_size], sitk.sitkUInt8)
    reference.SetSpacing([float(s) for s in new_spacing])
    reference.SetOrigin([float(o) for o in origin])
    reference.SetDirection(image.GetDirection())
    interpolator = sitk.sitkLabelGaussian if is_label else sitk.sitkLinear
    pixel = image.GetPixelID() if is_label else sitk.sitkFloat32
    return sitk.Resample(source, reference, sitk.Transform(), interpolator, 0.0, pixel)


def resample_onto(image: sitk.Image, reference: sitk.Image, default: float = 0.0) -> sitk.Image:
    """Linear resampling of ``image`` onto the grid of ``reference`` (physical space)."""
    return sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, default, sitk.sitkFloat32)


def to_model_grid(image: Image, entry: Any, label: Optional[Image] = None) -> Tuple[sitk.Image, Optional[sitk.Image]]:
    """Reoriented and resampled SimpleITK image (and label map) on the grid the model ``entry`` works on."""
    itk = image.to_sitk()
    if itk.GetPixelID() != sitk.sitkFloat32:
        itk = sitk.Cast(itk, sitk.sitkFloat32)
    itk = reorient(itk, entry.orientation)
    spacing = target_spacing(itk, entry.spacing)
    itk = resample_to_spacing(itk, spacing)
    lab = None
    if label is not None:
        lab = reorient(sitk.Cast(label.to_sitk(), sitk.sitkUInt8), entry.orientation)
        lab = resample_to_spacing(lab, spacing, is_label=True)
        if lab.GetSize() != itk.GetSize():
            lab = sitk.Resample(lab, itk, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return itk, lab


def preprocess(image: Image, entry: Any, label: Optional[Image] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Network-ready arrays ([k, j, i] order): normalised image (float32) and label map (uint8) if given."""
    itk, lab = to_model_grid(image, entry, label)
    array = normalize(sitk.GetArrayViewFromImage(itk), entry.normalization)
    return array, (None if lab is None else sitk.GetArrayFromImage(lab).astype(np.uint8))
