"""DICOM series folders: find the image series, pick the CT, order slices by position, check and read them.

Headers are scanned with pydicom (fast, no pixel data); pixels are read by SimpleITK/GDCM, which decodes the
compressed transfer syntaxes and applies each slice's Rescale Slope/Intercept (so CT values arrive in HU).
Slices are ordered by their position along the slice normal, never by file name or instance number.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import SimpleITK as sitk

from lungai.errors import InputError
from lungai.image import Image
from lungai.io.itk_messages import captured_stderr, itk_error_detail

PathLike = Union[str, Path]
DICOM_SUFFIXES = ("", ".dcm", ".dicom", ".ima", ".img")
MAX_TILT_DEGREES = 0.5
SPACING_TOLERANCE = 0.1  # relative deviation of one slice step from the median step
_HEADER_TAGS = ["SeriesInstanceUID", "StudyInstanceUID", "Modality", "SeriesDescription", "SeriesNumber",
                "Rows", "Columns", "ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing",
                "RescaleIntercept", "RescaleSlope", "NumberOfFrames", "ImageType", "Manufacturer",
                "ConvolutionKernel", "KVP", "SliceThickness"]

_METADATA_KEYS = {"StudyInstanceUID": "study_uid", "Manufacturer": "manufacturer", "ConvolutionKernel": "kernel",
                  "KVP": "kvp", "SliceThickness": "slice_thickness", "SeriesNumber": "series_number"}


class _NoGeometry(Exception):
    """A DICOM image without Image Position/Orientation (Patient): a radiograph, a secondary capture, or an
    enhanced multi-frame object whose geometry sits in per-frame sequences."""


@dataclass
class DicomSlice:
    """Header facts of one DICOM image file."""

    path: str
    series_uid: str
    modality: str
    description: str
    rows: int
    columns: int
    orientation: Tuple[float, ...]
    position: Tuple[float, ...]
    pixel_spacing: Tuple[float, ...]
    has_rescale: bool
    frames: int
    extra: Dict[str, str]

    @property
    def normal(self) -> np.ndarray:
        row, col = np.asarray(self.orientation[:3]), np.asarray(self.orientation[3:])
        return np.cross(row, col)

    def grid_key(self) -> Tuple:
        """Slices that can stack into one volume share this key (size, in-plane spacing, orientation)."""
        return (self.rows, self.columns, tuple(round(s, 3) for s in self.pixel_spacing),
                tuple(round(v, 3) for v in self.orientation))


@dataclass
class SeriesInfo:
    """A DICOM series found in a folder (for listings and choosing)."""

    uid: str
    modality: str
    description: str
    files: List[str]
    slices: List[DicomSlice]

    def summary(self) -> Dict[str, object]:
        first = self.slices[0]
        return {"series_uid": self.uid, "modality": self.modality, "description": self.description,
                "files": len(self.files), "size": [first.columns, first.rows, sum(s.frames for s in self.slices)]}


def _looks_like_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM" or (path.suffix.lower() in DICOM_SUFFIXES and len(head) >= 8)


def _floats(value, n: int) -> Optional[Tuple[float, ...]]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n and all(np.isfinite(out)) else None


def _read_header(path: Path) -> Optional[DicomSlice]:
    """Header of an image file; None for non-DICOM files, non-image objects (reports, RTSTRUCT) and localizers."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with open(path, "rb") as handle:
            has_preamble = handle.read(132)[128:132] == b"DICM"
    except OSError as exc:
        raise InputError(path, f"cannot be opened ({exc.strerror})") from None
    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=not has_preamble,
                             specific_tags=_HEADER_TAGS)
    except InvalidDicomError:
        return None
    except Exception as exc:  # pydicom raises many kinds on a damaged header
        if has_preamble:
            raise InputError(path, f"DICOM file is unreadable or truncated ({exc})") from None
        return None  # a file without the DICOM signature that does not parse is simply not DICOM
    if "LOCALIZER" in [str(v).strip().upper() for v in (ds.get("ImageType") or [])]:
        return None  # scout views sometimes share the CT's series UID; they are not part of the volume
    uid = str(ds.get("SeriesInstanceUID", "")).strip()
    orientation = _floats(ds.get("ImageOrientationPatient"), 6)
    position = _floats(ds.get("ImagePositionPatient"), 3)
    if not uid or "Rows" not in ds:
        return None
    if orientation is None or position is None:
        raise _NoGeometry()
    spacing = _floats(ds.get("PixelSpacing"), 2) or (1.0, 1.0)
    extra = {key: str(ds.get(key)).strip() for key in _METADATA_KEYS if ds.get(key) not in (None, "")}
    return DicomSlice(str(path), uid, str(ds.get("Modality", "")).strip().upper(),
                      str(ds.get("SeriesDescription", "")).strip(), int(ds.Rows), int(ds.get("Columns", 0)),
                      orientation, position, spacing, "RescaleIntercept" in ds,
                      int(ds.get("NumberOfFrames", 1) or 1), extra)


def scan_folder(folder: PathLike) -> Dict[str, SeriesInfo]:
    """All DICOM image series under ``folder`` (sub-folders included), slices ordered by position."""
    folder = Path(folder)
    by_uid: Dict[str, List[DicomSlice]] = {}
    without_geometry = 0
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            if name.upper() == "DICOMDIR" or not _looks_like_dicom(path):
                continue
            try:
                header = _read_header(path)
            except _NoGeometry:
                without_geometry += 1
                continue
            if header is not None:
                by_uid.setdefault(header.series_uid, []).append(header)
    if not by_uid and without_geometry:
        raise InputError(folder, f"the folder holds {without_geometry} DICOM image(s) without patient position "
                                 "and orientation (radiographs, secondary captures or enhanced multi-frame "
                                 "objects), but no CT slice series")
    series = {}
    for uid, slices in by_uid.items():
        slices = sort_by_position(slices)
        counts = Counter(s.modality for s in slices)
        series[uid] = SeriesInfo(uid, counts.most_common(1)[0][0], slices[0].description,
                                 [s.path for s in slices], slices)
    return series


def sort_by_position(slices: Sequence[DicomSlice]) -> List[DicomSlice]:
    """Slices ordered by position along the slice normal of the first slice (inferior to superior for axial)."""
    normal = slices[0].normal
    return sorted(slices, key=lambda s: float(np.dot(normal, s.position)))


def choose_series(folder: Path, series: Dict[str, SeriesInfo], series_uid: Optional[str]) -> SeriesInfo:
    """The asked-for series, else the only CT series, else the only series; anything else is an error."""
    if not series:
        raise InputError(folder, "the folder holds no DICOM image series (no DICOM files with image geometry)")
    if series_uid is not None:
        if series_uid not in series:
            raise InputError(folder, f"series {series_uid} is not in this folder (it has: {_listing(series.values())})")
        return series[series_uid]
    ct = [info for info in series.values() if info.modality == "CT"]
    candidates = ct or list(series.values())
    if len(candidates) > 1:
        raise InputError(folder, f"mixed series: the folder holds {len(candidates)} {'CT ' if ct else ''}series "
                                 f"({_listing(candidates)}); choose one by its series UID (--series)")
    return candidates[0]


def _listing(infos) -> str:
    return "; ".join(f"{i.uid} ({i.modality or '?'}, {i.description or 'no description'}, {len(i.files)} files)"
                     for i in infos)


def check_slices(folder: Path, info: SeriesInfo) -> None:
    """Refuse series whose slices do not stack into one regular volume."""
    slices = info.slices
    grids = Counter(s.grid_key() for s in slices)
    if len(grids) > 1:
        kinds = "; ".join(f"{n} slice(s) of {c}x{r} pixels, spacing {sp[0]:g}x{sp[1]:g} mm, orientation "
                          f"{'/'.join(f'{v:g}' for v in o)}" for (r, c, sp, o), n in grids.most_common())
        raise InputError(folder, f"series {info.uid} mixes slices of different sizes or orientations ({kinds}); "
                                 "they do not form one volume")
    if any(s.frames > 1 for s in slices) and len(slices) > 1:
        raise InputError(folder, f"series {info.uid} mixes multi-frame and single-frame files")
    if len(slices) < 2:
        return
    normal = slices[0].normal
    positions = np.asarray([s.position for s in slices])
    along = positions @ normal
    steps = np.diff(along)
    duplicates = int(np.count_nonzero(steps < 1e-3))
    if duplicates:
        raise InputError(folder, f"series {info.uid} has {duplicates} duplicate slice position(s): it holds "
                                 "several acquisitions or repeated files; split them or choose another series")
    total = positions[-1] - positions[0]
    tilt = np.degrees(np.arccos(min(1.0, abs(float(np.dot(total, normal))) / float(np.linalg.norm(total)))))
    if tilt > MAX_TILT_DEGREES:
        raise InputError(folder, f"series {info.uid} is sheared (gantry tilt of {tilt:.1f} degrees): the slices "
                                 "do not stack along their normal; resample it to a regular grid first")
    median = float(np.median(steps))
    worst = float(np.max(np.abs(steps - median)))
    if worst > SPACING_TOLERANCE * median + 0.01:
        raise InputError(folder, f"series {info.uid} has uneven slice positions (steps {steps.min():.2f} to "
                                 f"{steps.max():.2f} mm, usual {median:.2f} mm): slices are missing or the "
                                 "series is not contiguous")


def _read_pixels(folder: Path, files: List[str]) -> sitk.Image:
    with captured_stderr() as console:
        try:
            if len(files) == 1:
                return sitk.ReadImage(files[0])
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(files)
            return reader.Execute()
        except RuntimeError as exc:
            failure = exc
    for name in files:  # name the file that breaks the series
        with captured_stderr() as single:
            try:
                sitk.ReadImage(name)
            except RuntimeError as exc:
                raise InputError(name, "DICOM slice is unreadable or truncated "
                                       f"({itk_error_detail(exc, single)})") from None
    raise InputError(folder, f"the series cannot be read ({itk_error_detail(failure, console)})")


def _compact(image: sitk.Image) -> sitk.Image:
    """Integer HU that fit in int16 are stored as int16 (GDCM returns int32 after rescale); float64 -> float32."""
    pid = image.GetPixelID()
    if pid in (sitk.sitkInt32, sitk.sitkUInt32, sitk.sitkInt64, sitk.sitkUInt64, sitk.sitkUInt16):
        stats = sitk.MinimumMaximumImageFilter()
        stats.Execute(image)
        if stats.GetMinimum() >= -32768 and stats.GetMaximum() <= 32767:
            return sitk.Cast(image, sitk.sitkInt16)
    if pid == sitk.sitkFloat64:
        return sitk.Cast(image, sitk.sitkFloat32)
    return image


def read_dicom_series(folder: PathLike, series_uid: Optional[str] = None) -> Image:
    """Read one DICOM series from a folder; picks the CT series when the folder holds several.

    Raises :class:`InputError` for an empty folder, a folder without DICOM images, several CT series without
    ``series_uid``, slices of different sizes or orientations, duplicate, uneven (missing) or tilted slices,
    and unreadable or truncated slices (naming the file).
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(folder, "does not exist")
    if not folder.is_dir():
        raise InputError(folder, "is not a folder")
    if not any(folder.iterdir()):
        raise InputError(folder, "the folder is empty")
    info = choose_series(folder, scan_folder(folder), series_uid)
    check_slices(folder, info)
    image = Image.from_sitk(_compact(_read_pixels(folder, info.files)))
    first = info.slices[0]
    expected = np.asarray(first.position)
    if image.ndim == 3 and not np.allclose(image.origin, expected, atol=1e-2):
        raise InputError(folder, f"series {info.uid}: the reader placed the first slice at {image.origin}, "
                                 f"but its header says {tuple(expected)}")
    image.metadata.update({"source": str(folder), "series_uid": info.uid, "modality": info.modality,
                           "series_description": info.description, "files": len(info.files),
                           "dicom_rescale": all(s.has_rescale for s in info.slices),
                           **{_METADATA_KEYS[k]: v for k, v in first.extra.items()}})
    if len(info.files) == 1:
        image.metadata["single_dicom_file"] = True
        thickness = _positive(first.extra.get("SliceThickness"))
        if image.ndim == 3 and image.shape[0] == 1 and thickness:  # ITK gives a lone slice 1 mm
            image.spacing = image.spacing[:2] + (thickness,)
    return image


def _positive(text: Optional[str]) -> Optional[float]:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and np.isfinite(value) and value > 0 else None


def list_dicom_series(folder: PathLike) -> Dict[str, List[str]]:
    """Series instance UID -> file names sorted by slice position (not file name), for one folder tree."""
    return {uid: info.files for uid, info in scan_folder(folder).items()}


def describe_dicom_series(folder: PathLike) -> List[Dict[str, object]]:
    """One summary per DICOM image series under ``folder`` (UID, modality, description, files, size)."""
    return [info.summary() for info in scan_folder(folder).values()]
