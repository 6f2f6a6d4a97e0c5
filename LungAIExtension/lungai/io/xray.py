"""Single-file 2D radiographs: PNG/JPEG/TIFF through Pillow, DICOM (DX/CR) through pydicom."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lungai.errors import InputError
from lungai.image import Image


def _from_picture(path: Path) -> Image:
    from PIL import Image as PILImage, UnidentifiedImageError

    try:
        with PILImage.open(path) as pic:
            pic.load()
            bits = 16 if pic.mode in ("I;16", "I;16B", "I") else 8
            grey = pic.convert("I;16" if bits == 16 else "L") if pic.mode not in ("L", "I;16") else pic
            array = np.asarray(grey, dtype=np.float32)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(path, f"cannot be read as a picture: unreadable or truncated ({exc})") from None
    scale = 65535.0 if bits == 16 else 255.0
    return Image.from_array(array / scale, metadata={"source": str(path), "modality": "", "bits": bits})


def _from_dicom(path: Path) -> Image:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(str(path))
        raw = ds.pixel_array
    except (InvalidDicomError, AttributeError, ValueError, OSError) as exc:
        raise InputError(path, f"cannot be read as a DICOM radiograph ({exc})") from None
    if raw.ndim != 2:
        raise InputError(path, f"holds a {raw.ndim}D pixel array {raw.shape}; a single 2D radiograph is needed")
    values = apply_modality_lut(raw, ds).astype(np.float32)
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        values = apply_voi_lut(values, ds).astype(np.float32)
    lo, hi = float(values.min()), float(values.max())
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "MONOCHROME1":
        scaled = 1.0 - scaled
    spacing = getattr(ds, "ImagerPixelSpacing", None) or getattr(ds, "PixelSpacing", None) or (1.0, 1.0)
    return Image.from_array(scaled, spacing=(float(spacing[1]), float(spacing[0])),
                            metadata={"source": str(path), "modality": str(getattr(ds, "Modality", "")),
                                      "photometric": photometric})


def load_radiograph(path: Path) -> Image:
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
    modality = image.metadata.get("modality", "")
    if modality and modality.upper() not in ("DX", "CR", "DR", "RG", "OT", "SC", "PX"):
        raise InputError(path, f"modality is {modality}, not a radiograph (DX/CR)")
    if min(image.shape) < 64:
        raise InputError(path, f"is only {image.shape[1]}x{image.shape[0]} pixels; a chest radiograph needs more")
    return image
