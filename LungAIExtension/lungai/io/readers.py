"""Readers: NIfTI, NRRD, MHA/MHD, single DICOM files and DICOM series folders, and 2D radiographs.

Every failure is an :class:`InputError` naming the path and the problem; ITK's console messages are kept off
the terminal (see :mod:`lungai.io.itk_messages`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np
import SimpleITK as sitk

from lungai.checks import (DEFAULT_CT_MIN_SLICES, DEFAULT_VOLUME_MIN_SLICES, check_ct, check_volume)
from lungai.errors import InputError
from lungai.image import Image
from lungai.io.dicom import list_dicom_series, read_dicom_series  # noqa: F401  (re-exported)
from lungai.io.itk_messages import captured_stderr, itk_error_detail, silence_itk_warnings
from lungai.io.nifti_integrity import check_nifti_file

PathLike = Union[str, Path]
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
XRAY_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".tif", ".tiff")
CHECKS = ("ct", "volume", "none")

silence_itk_warnings()


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _positive_float(text: str) -> Optional[float]:
    try:
        value = float(text.strip().split("\\")[0])
    except ValueError:
        return None
    return value if np.isfinite(value) and value > 0 else None


def _check_detached_data(path: Path) -> None:
    """A .mhd or .nhdr header names its voxel file; say so plainly when that file is missing."""
    keys = {".mhd": ("elementdatafile",), ".nhdr": ("data file", "datafile")}[_suffix(path)]
    with open(path, "r", encoding="latin-1") as handle:
        for line in handle:
            key, sep, value = line.partition("=" if _suffix(path) == ".mhd" else ":")
            value = value.strip()
            if sep and key.strip().lower() in keys and value.upper() != "LOCAL" and " " not in value:
                data = Path(value) if Path(value).is_absolute() else path.parent / value
                if not data.exists():
                    raise InputError(path, f"its voxel data file {data.name} is missing (expected at {data})")
                return


def _read_file(path: Path) -> Image:
    if path.stat().st_size == 0:
        raise InputError(path, "the file is empty (0 bytes)")
    if _suffix(path) in (".mhd", ".nhdr"):
        _check_detached_data(path)
    nifti = check_nifti_file(path) if _suffix(path) in (".nii", ".nii.gz") else None
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    with captured_stderr() as console:
        try:
            reader.ReadImageInformation()
            meta = {k: reader.GetMetaData(k) for k in reader.GetMetaDataKeys()}
            image = reader.Execute()
        except RuntimeError as exc:
            failure: Optional[RuntimeError] = exc
        else:
            failure = None
    if failure is not None:
        raise InputError(path, "cannot be read as an image: the file is unreadable, truncated or not a supported "
                               f"format ({itk_error_detail(failure, console)})")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, f"has {image.GetNumberOfComponentsPerPixel()} components per voxel "
                               "(colour or vector image); a scalar grey-level image is required")
    if image.GetDimension() == 4:
        size = image.GetSize()
        if size[3] != 1:
            raise InputError(path, f"is a 4D image with {size[3]} volumes (time points or channels); "
                                   "a single 3D volume is required")
        image = image[:, :, :, 0]
    elif image.GetDimension() not in (2, 3):
        raise InputError(path, f"is a {image.GetDimension()}D image; a 3D volume is required")
    result = Image.from_sitk(image, {"source": str(path)})
    if nifti is not None and nifti.non_finite:
        result.metadata["non_finite_voxels"] = nifti.non_finite  # zeros in the array now; check_finite refuses them
    if nifti is not None and not nifti.oriented:
        result.metadata["orientation_unknown"] = True  # neither qform nor sform: left/right is not stated
    modality = meta.get("0008|0060", "").strip().upper()
    if modality:
        result.metadata["modality"] = modality
        result.metadata["dicom_rescale"] = "0028|1052" in meta
        result.metadata["single_dicom_file"] = True
        thickness = _positive_float(meta.get("0018|0088", "")) or _positive_float(meta.get("0018|0050", ""))
        if result.ndim == 3 and result.shape[0] == 1 and thickness:  # ITK gives a lone slice 1 mm
            result.spacing = result.spacing[:2] + (thickness,)
    return result


def read_image(path: PathLike, *, series_uid: Optional[str] = None, check: str = "ct",
               min_slices: Optional[int] = None) -> Image:
    """Read a volume from a file (NIfTI, NRRD, MHA/MHD, single DICOM) or a DICOM series folder.

    ``check`` is ``"ct"`` (a 3D chest CT in HU is required; see :func:`lungai.checks.check_ct`), ``"volume"``
    (3D, sane geometry and finite values, any intensities; for masks and maps) or ``"none"``.
    ``min_slices`` lowers or raises the slices required (default 3 for ``ct``, 2 for ``volume``); use 2 for
    thin test crops and 1 for a single DICOM slice.
    """
    if check not in CHECKS:
        raise ValueError(f"unknown check {check!r}; use one of {CHECKS}")
    path = Path(path)
    if not path.exists():
        raise InputError(path, "does not exist")
    if path.is_dir():
        image = read_dicom_series(path, series_uid)
    else:
        if _suffix(path) in PICTURE_SUFFIXES:
            raise InputError(path, "is a 2D picture (PNG/JPEG/TIFF); a CT volume (NIfTI, NRRD, MHA or DICOM) "
                                   "is needed (radiographs go to `lungai xray`)")
        image = _read_file(path)
    if check == "ct":
        check_ct(image, str(path), DEFAULT_CT_MIN_SLICES if min_slices is None else min_slices)
    elif check == "volume":
        check_volume(image, str(path), DEFAULT_VOLUME_MIN_SLICES if min_slices is None else min_slices)
    return image


def read_xray(path: PathLike) -> Image:
    """Read a frontal radiograph (PNG, JPEG, TIFF, DICOM DX/CR) as a 2D float image scaled to 0..1.

    DICOM: modality LUT and VOI window applied, MONOCHROME1 inverted so that bone is bright. Colour pictures are
    converted to grey. ``metadata`` keeps the source, modality and photometric interpretation.
    """
    from lungai.io.xray import load_radiograph

    return load_radiograph(Path(path))
