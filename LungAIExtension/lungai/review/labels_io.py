"""Reading a correction saved from Slicer (``.seg.nrrd`` with named segments, or a label map) into store labels."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np

from lungai.errors import InputError
from lungai.image import Image
from lungai.io import read_image, read_segmentation
from lungai.io.segmentation import labels_on_grid
from lungai.terminology import STRUCTURES


def _key_for(name: str) -> str:
    wanted = name.strip().lower().replace("-", " ").replace("_", " ")
    for key, sdef in STRUCTURES.items():
        if wanted in (key.replace("_", " "), sdef.name.lower().replace("-", " ")):
            return key
    return ""


def read_correction(path: Union[str, Path], labels: Dict[int, str], reference: Optional[Image] = None) -> Image:
    """A label map with the store's values: ``.seg.nrrd`` segments are matched by name (e.g. "right lung" ->
    ``right_lung``), other files are read as label maps whose values must already be the store's.

    With ``reference`` (the case image) a segmentation Slicer saved cropped to the painted region is put back
    on the image grid."""
    path = Path(path)
    if not path.name.lower().endswith(".seg.nrrd"):
        image = read_image(path, check="none", min_slices=1)
        return labels_on_grid(image, reference) if reference is not None else image
    image, segments = read_segmentation(path, reference=reference)
    by_key = {key: value for value, key in labels.items()}
    out = np.zeros(image.shape, np.uint8 if max(labels) < 256 else np.uint16)
    for seg in segments:
        key = _key_for(seg.name)
        if key not in by_key:
            raise InputError(path, f"segment {seg.name!r} matches none of the store's labels "
                                   f"({', '.join(STRUCTURES[k].name if k in STRUCTURES else k for k in labels.values())})")
        out[image.array == seg.label] = by_key[key]
    return image.like(out)
