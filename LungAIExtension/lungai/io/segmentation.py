"""Segmentations as Slicer ``.seg.nrrd`` (segment names, colours, terminology) through slicerio."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from lungai.errors import InputError
from lungai.image import Image
from lungai.io.atomic import atomic_output
from lungai.terminology import StructureDef, structure

PathLike = Union[str, Path]


@dataclass
class Segment:
    """One segment of a label map: its label value, display name, colour and optional terminology."""

    label: int
    name: str
    color: Tuple[float, float, float]
    terminology: Optional[Dict[str, object]] = None
    tags: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_structure(cls, label: int, key: Union[str, StructureDef], name: Optional[str] = None) -> "Segment":
        """A segment for a standard structure of :mod:`lungai.terminology` (e.g. ``"right_lung"``)."""
        sdef = structure(key) if isinstance(key, str) else key
        return cls(label, name or sdef.name, sdef.color, sdef.terminology())


def write_segmentation(labelmap: Image, segments: Sequence[Segment], path: PathLike,
                       metadata: Optional[Dict[str, str]] = None) -> Path:
    """Write a 3D integer label map as a Slicer ``.seg.nrrd`` with one segment per entry of ``segments``.

    Labels not listed in ``segments`` are an error (they would be lost silently in Slicer).
    """
    import slicerio

    path = Path(path)
    if labelmap.ndim != 3:
        raise ValueError("a segmentation needs a 3D label map")
    values = np.asarray(labelmap.array)
    present = set(np.unique(values).tolist()) - {0}
    described = {s.label for s in segments}
    if present - described:
        raise ValueError(f"label values {sorted(present - described)} have no segment description")
    if len(described) != len(segments):
        raise ValueError("two segments share a label value")
    dtype = np.uint8 if max(described | {0}) < 256 else np.uint16
    entries = []
    for index, seg in enumerate(segments):
        entry = {"id": f"Segment_{seg.label}", "labelValue": int(seg.label), "layer": 0, "name": seg.name,
                 "color": [float(c) for c in seg.color], "status": "completed"}
        if seg.terminology:
            entry["terminology"] = seg.terminology
        if seg.tags:
            entry["tags"] = dict(seg.tags)
        entries.append(entry)
    seg_dict = {"voxels": values.astype(dtype), "ijkToLPS": labelmap.index_to_lps_matrix(),
                "encoding": "gzip", "containedRepresentationNames": ["Binary labelmap"],
                "masterRepresentation": "Binary labelmap", "referenceImageExtentOffset": [0, 0, 0],
                "segments": entries}
    for key, value in (metadata or {}).items():
        seg_dict[f"lungai_{key}"] = value
    with atomic_output(path) as tmp:
        slicerio.write_segmentation(str(tmp), seg_dict, index_order="C")
    return path


def read_segmentation(path: PathLike) -> Tuple[Image, List[Segment]]:
    """Read a ``.seg.nrrd`` (single layer) back into a label map and its segment list.

    Overlapping segments (several layers) are merged into one label map in segment order.
    """
    import slicerio

    path = Path(path)
    if not path.exists():
        raise InputError(path, "does not exist")
    try:
        seg = slicerio.read_segmentation(str(path))
    except Exception as exc:  # slicerio/pynrrd raise many kinds for a corrupt file
        raise InputError(path, f"cannot be read as a segmentation ({exc})") from None
    voxels = np.asarray(seg["voxels"])
    segments_info = seg["segments"]
    if voxels.ndim == 3:  # one layer: keep the stored label values
        label_map = voxels.astype(np.uint16)
        segments = [Segment(int(info["labelValue"]), info.get("name", f"Segment {info['labelValue']}"),
                            tuple(info.get("color", (0.5, 0.5, 0.5))), info.get("terminology"))
                    for info in segments_info]
    else:  # overlapping segments in layers: merge, numbering segments 1..N in file order
        label_map = np.zeros(voxels.shape[1:], dtype=np.uint16)
        segments = []
        for new_label, info in enumerate(segments_info, start=1):
            label_map[voxels[int(info.get("layer", 0))] == int(info["labelValue"])] = new_label
            segments.append(Segment(new_label, info.get("name", f"Segment {new_label}"),
                                    tuple(info.get("color", (0.5, 0.5, 0.5))), info.get("terminology")))
    ijk_to_lps = np.asarray(seg["ijkToLPS"], dtype=float)
    spacing = np.linalg.norm(ijk_to_lps[:3, :3], axis=0)
    # slicerio returns voxels indexed [i, j, k]; lungai arrays are [k, j, i]
    image = Image(label_map.transpose(2, 1, 0), tuple(spacing), tuple(ijk_to_lps[:3, 3]),
                  ijk_to_lps[:3, :3] / spacing, {"source": str(path)})
    return image, segments
