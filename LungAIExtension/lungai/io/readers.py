"""Readers: NIfTI, NRRD, MHA/MHD, DICOM series folders, and single-file 2D radiographs."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import SimpleITK as sitk

from lungai.checks import check_ct, check_finite, check_geometry
from lungai.errors import InputError
from lungai.image import Image

PathLike = Union[str, Path]
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")
XRAY_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".tif", ".tiff")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _read_file(path: Path) -> Image:
    if path.stat().st_size == 0:
        raise InputError(path, "the file is empty (0 bytes)")
    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        meta = {k: reader.GetMetaData(k) for k in reader.GetMetaDataKeys()}
        image = reader.Execute()
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = next((l for l in first if "rror" in l or "ead" in l), first[-1] if first else "")
        raise InputError(path, f"cannot be read as an image: the file is unreadable, truncated or not a "
                               f"supported format ({detail.strip()[:200]})") from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, f"has {image.GetNumberOfComponentsPerPixel()} components per voxel "
                               "(colour or vector image); a scalar grey-level image is required")
    result = Image.from_sitk(image, {"source": str(path)})
    modality = meta.get("0008|0060", "").strip()
    if modality:
        result.metadata["modality"] = modality
    return result


def _series_modality(file_name: str) -> str:
    reader = sitk.ImageFileReader()
    reader.SetFileName(file_name)
    try:
        reader.ReadImageInformation()
        return reader.GetMetaData("0008|0060").strip().upper() if reader.HasMetaDataKey("0008|0060") else ""
    except RuntimeError:
        return ""


def list_dicom_series(folder: PathLike) -> Dict[str, List[str]]:
    """Series instance UID -> file names sorted by slice position (not file name), for one folder."""
    folder = Path(folder)
    ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or ()
    return {uid: list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)) for uid in ids}


def read_dicom_series(folder: PathLike, series_uid: Optional[str] = None) -> Image:
    """Read one DICOM series from a folder; picks the CT series when the folder holds several.

    Raises :class:`InputError` for an empty folder, a folder without DICOM, several CT series without
    ``series_uid``, and slices whose spacing is uneven (missing slices).
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(folder, "does not exist")
    if not any(folder.iterdir()):
        raise InputError(folder, "the folder is empty")
    series = list_dicom_series(folder)
    if not series:
        raise InputError(folder, "the folder holds no DICOM image series")
    if series_uid is not None:
        if series_uid not in series:
            raise InputError(folder, f"series {series_uid} is not in this folder (it has {sorted(series)})")
        chosen = series_uid
    else:
        modality = {uid: _series_modality(files[0]) for uid, files in series.items()}
        ct = [uid for uid in series if modality[uid] == "CT"]
        candidates = ct or list(series)
        if len(candidates) > 1:
            listing = "; ".join(f"{uid} ({modality[uid] or '?'}, {len(series[uid])} files)" for uid in candidates)
            raise InputError(folder, f"mixed series: the folder holds {len(candidates)} "
                                     f"{'CT ' if ct else ''}series ({listing}); choose one by its series UID")
        chosen = candidates[0]
    files = series[chosen]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    reader.LoadPrivateTagsOff()
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(folder, f"series {chosen} cannot be read (unreadable, truncated or mixed slice sizes: "
                                 f"{str(exc).strip().splitlines()[-1][:200]})") from None
    _check_even_slices(folder, files)
    meta = {"source": str(folder), "series_uid": chosen, "files": len(files)}
    if reader.HasMetaDataKey(0, "0008|0060"):
        meta["modality"] = reader.GetMetaData(0, "0008|0060").strip()
    return Image.from_sitk(sitk.Cast(image, sitk.sitkFloat32) if image.GetPixelID() not in
                           (sitk.sitkInt16, sitk.sitkFloat32) else image, meta)


def _check_even_slices(folder: Path, files: List[str]) -> None:
    if len(files) < 3:
        return
    positions = []
    for name in files:
        r = sitk.ImageFileReader()
        r.SetFileName(name)
        r.ReadImageInformation()
        if not r.HasMetaDataKey("0020|0032"):
            return
        positions.append([float(v) for v in r.GetMetaData("0020|0032").split("\\")])
    steps = np.linalg.norm(np.diff(np.asarray(positions), axis=0), axis=1)
    if steps.min() < 1e-3 or steps.max() > 1.5 * np.median(steps):
        raise InputError(folder, f"uneven slice positions (steps {steps.min():.2f} to {steps.max():.2f} mm): "
                                 "slices are missing or duplicated in this series")


def read_image(path: PathLike, *, series_uid: Optional[str] = None, check: str = "ct") -> Image:
    """Read a volume from a file (NIfTI, NRRD, MHA, single DICOM) or a DICOM series folder.

    ``check`` is ``"ct"`` (a 3D chest CT in HU is required; see :func:`lungai.checks.check_ct`), ``"volume"``
    (3D, sane geometry and finite values, any intensities) or ``"none"``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "does not exist")
    if path.is_dir():
        image = read_dicom_series(path, series_uid)
    else:
        suffix = _suffix(path)
        if suffix in (".png", ".jpg", ".jpeg"):
            raise InputError(path, "is a 2D picture (PNG/JPEG); a CT volume (NIfTI, NRRD, MHA or DICOM) is needed")
        image = _read_file(path)
    if check == "ct":
        check_ct(image, str(path))
    elif check == "volume":
        check_geometry(image, str(path))
        check_finite(image, str(path))
    elif check != "none":
        raise ValueError(f"unknown check {check!r}")
    return image


def read_xray(path: PathLike) -> Image:
    """Read a frontal radiograph (PNG, JPEG, TIFF, DICOM DX/CR) as a 2D float image scaled to 0..1.

    DICOM: rescale and VOI window applied, MONOCHROME1 inverted so that bone is bright. Colour pictures are
    converted to grey. ``metadata`` keeps the source, modality and photometric interpretation.
    """
    from lungai.io.xray import load_radiograph

    return load_radiograph(Path(path))
