"""Writers for volumes (NIfTI, NRRD, MHA) and JSON, always through a temporary file then rename."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import SimpleITK as sitk

from lungai.image import Image
from lungai.io.atomic import atomic_output

PathLike = Union[str, Path]
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def _metadata_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def write_image(image: Image, path: PathLike, *, metadata: Optional[Dict[str, Any]] = None,
                compress: bool = True) -> Path:
    """Write ``image`` to NIfTI (.nii/.nii.gz), NRRD (.nrrd) or MetaImage (.mha) with its geometry.

    NRRD and MHA keep spacing, origin and direction exactly (doubles); NIfTI stores them as float32 (about
    1e-6 mm). Boolean masks are written as uint8. ``metadata`` (e.g. provenance) goes into the header as
    ``lungai_<key>`` fields (NRRD and MHA keep them; NIfTI has no place for them).
    """
    path = Path(path)
    if not path.name.lower().endswith(IMAGE_SUFFIXES):
        raise ValueError(f"{path}: write images as {', '.join(IMAGE_SUFFIXES)}")
    array = np.asarray(image.array)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    elif array.dtype == np.float16:
        array = array.astype(np.float32)
    itk = image.like(array).to_sitk() if array is not image.array else image.to_sitk()
    for key, value in (metadata or {}).items():
        itk.SetMetaData(f"lungai_{key}", _metadata_value(value))
    with atomic_output(path) as tmp:
        sitk.WriteImage(itk, str(tmp), useCompression=compress)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def to_json_text(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default, allow_nan=False)


def write_json(data: Any, path: PathLike) -> Path:
    """Write ``data`` as indented JSON (numpy values converted), atomically."""
    path = Path(path)
    text = to_json_text(data)
    with atomic_output(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return path
