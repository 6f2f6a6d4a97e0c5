"""Single-file 2D radiographs: PNG/JPEG/TIFF/BMP through Pillow, DICOM (DX/CR) through pydicom.

Every radiograph comes back as a 2D float32 :class:`Image` with values 0..1, bright = dense (bone white):

* 8-bit pictures are divided by 255 (they are already windowed for display);
* 16-bit and floating-point pictures are stretched from their minimum to their maximum (raw detector values
  rarely fill the 16-bit range);
* colour pictures become grey by ITU-R 601 luma; the EXIF orientation of photographed films is applied;
* DICOM: the modality LUT (rescale) is applied, then the first VOI window (LINEAR, LINEAR_EXACT or SIGMOID as
  the file says) or VOI LUT maps values to 0..1; without either the values are stretched min..max.
  MONOCHROME1 (bright = low values) is inverted so that bone is bright as in MONOCHROME2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from lungai.errors import InputError
from lungai.image import Image

RADIOGRAPH_MODALITIES = ("DX", "CR", "DR", "RG", "OT", "SC", "PX")
MIN_PIXELS = 64


def _stretch(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    return ((values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)).astype(np.float32)


def _from_picture(path: Path) -> Image:
    from PIL import Image as PILImage, ImageOps, UnidentifiedImageError

    try:
        with PILImage.open(path) as pic:
            pic.load()
            source_mode = pic.mode
            pic = ImageOps.exif_transpose(pic)
            if pic.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                values = np.asarray(pic, dtype=np.float64)
                bits = 32 if pic.mode == "F" else 16
                scaled = _stretch(values)
            else:
                grey = pic if pic.mode == "L" else pic.convert("L")
                bits = 8
                scaled = np.asarray(grey, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"cannot be read as a picture: unreadable or truncated ({exc})") from None
    return Image.from_array(scaled, metadata={"source": str(path), "modality": "", "bits": bits,
                                              "mode": source_mode, "pixel_spacing_known": False})


def _window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 VOI windowing to 0..1."""
    if function == "SIGMOID":
        return (1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))).astype(np.float32)
    if function == "LINEAR_EXACT":
        return np.clip((values - center) / width + 0.5, 0.0, 1.0).astype(np.float32)
    width = max(width, 1.0)
    if width == 1.0:
        return (values > center - 0.5).astype(np.float32)
    return np.clip((values - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0).astype(np.float32)


def _first(value) -> float:
    try:
        return float(value[0])
    except TypeError:
        return float(value)


def _voi(ds, values: np.ndarray) -> Tuple[np.ndarray, str]:
    """Values mapped to 0..1 by the file's VOI (window or LUT), else stretched; and what was done."""
    from pydicom.pixels import apply_voi_lut

    if "VOILUTSequence" in ds and len(ds.VOILUTSequence):
        mapped = apply_voi_lut(values, ds, index=0).astype(np.float64)
        descriptor = ds.VOILUTSequence[0].LUTDescriptor
        top = float(2 ** int(descriptor[2]) - 1)
        return np.clip(mapped / top, 0.0, 1.0).astype(np.float32), "VOI LUT"
    if "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
        if width > 0:
            function = str(ds.get("VOILUTFunction", "LINEAR")).strip().upper() or "LINEAR"
            return _window(values, center, width, function), f"window {center:g}/{width:g} {function}"
    return _stretch(values), "min-max"


def _grey_from_colour(raw: np.ndarray) -> np.ndarray:
    return raw[..., 0] * 0.299 + raw[..., 1] * 0.587 + raw[..., 2] * 0.114


def _from_dicom(path: Path) -> Image:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut

    try:
        ds = pydicom.dcmread(str(path), force=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise InputError(path, f"cannot be read as DICOM: unreadable or truncated ({exc})") from None
    modality = str(ds.get("Modality", "")).strip().upper()
    if modality and modality not in RADIOGRAPH_MODALITIES:
        raise InputError(path, f"modality is {modality}, not a radiograph (DX/CR)")
    if "PixelData" not in ds:
        raise InputError(path, "the DICOM file holds no pixel data")
    try:
        raw = ds.pixel_array
    except Exception as exc:  # pydicom raises many kinds for truncated or undecodable pixel data
        raise InputError(path, f"the DICOM pixel data cannot be decoded: truncated or compressed in a form "
                               f"not supported here ({exc})") from None
    samples = int(ds.get("SamplesPerPixel", 1))
    if samples == 3 and raw.ndim == 3:
        raw = _grey_from_colour(raw.astype(np.float64))
    if raw.ndim != 2:
        raise InputError(path, f"holds a {raw.ndim}D pixel array {raw.shape}; a single 2D radiograph is needed")
    values = apply_modality_lut(raw, ds).astype(np.float64) if samples == 1 else raw
    scaled, voi = _voi(ds, values) if samples == 1 else (_stretch(values), "min-max")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric == "MONOCHROME1":
        scaled = 1.0 - scaled
    spacing: Optional[object] = ds.get("ImagerPixelSpacing") or ds.get("PixelSpacing")
    row_col = (float(spacing[0]), float(spacing[1])) if spacing else (1.0, 1.0)
    return Image.from_array(scaled.astype(np.float32), spacing=(row_col[1], row_col[0]),
                            metadata={"source": str(path), "modality": modality, "photometric": photometric,
                                      "voi": voi, "pixel_spacing_known": bool(spacing),
                                      "bits": int(ds.get("BitsStored", 8))})


def load_radiograph(path: Path) -> Image:
    """A chest radiograph file as a 0..1 grey image (see the module docstring for the scaling)."""
    if not path.exists():
        raise InputError(path, "does not exist")
    if path.is_dir():
        raise InputError(path, "is a folder; a single radiograph file (PNG, JPEG or DICOM) is needed")
    if path.stat().st_size == 0:
        raise InputError(path, "the file is empty (0 bytes)")
    with open(path, "rb") as handle:
        head = handle.read(132)
    is_dicom = head[128:132] == b"DICM" or path.suffix.lower() in (".dcm", ".dicom")
    image = _from_dicom(path) if is_dicom else _from_picture(path)
    if min(image.shape) < MIN_PIXELS:
        raise InputError(path, f"is only {image.shape[1]}x{image.shape[0]} pixels; a chest radiograph needs at "
                               f"least {MIN_PIXELS} in each direction")
    if not np.all(np.isfinite(image.array)):
        raise InputError(path, "contains non-finite pixel values (NaN or infinity)")
    return image
