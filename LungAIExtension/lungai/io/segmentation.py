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


def _segment_entry(seg: Segment, extent: List[int]) -> Dict[str, object]:
    if not all(0.0 <= float(c) <= 1.0 for c in seg.color) or len(seg.color) != 3:
        raise ValueError(f"segment {seg.name!r}: colour {seg.color} must be three values in 0..1")
    entry: Dict[str, object] = {"id": f"Segment_{seg.label}", "labelValue": int(seg.label), "layer": 0,
                                "name": seg.name, "color": [float(c) for c in seg.color], "extent": extent,
                                "status": "completed"}
    if seg.terminology:
        entry["terminology"] = seg.terminology
    if seg.tags:
        entry["tags"] = dict(seg.tags)
    return entry


def write_segmentation(labelmap: Image, segments: Sequence[Segment], path: PathLike,
                       metadata: Optional[Dict[str, str]] = None) -> Path:
    """Write a 3D integer label map as a Slicer ``.seg.nrrd`` with one segment per entry of ``segments``.

    Each segment keeps its label value, name, colour and terminology. Label values present in the map but not
    described by a segment are refused with ``ValueError`` (Slicer would drop them silently).
    """
    import slicerio

    path = Path(path)
    if labelmap.ndim != 3:
        raise ValueError("a segmentation needs a 3D label map")
    values = np.asarray(labelmap.array)
    if not (np.issubdtype(values.dtype, np.integer) or values.dtype == np.bool_):
        if not np.all(np.mod(values, 1) == 0):
            raise ValueError(f"label map of type {values.dtype} holds non-integer values")
    labels = [int(s.label) for s in segments]
    if any(label < 1 or label > 65535 for label in labels):
        raise ValueError(f"segment label values {labels} must be 1..65535 (0 is background)")
    if len(set(labels)) != len(labels):
        raise ValueError(f"two segments share a label value ({labels})")
    present = set(np.unique(values).astype(np.int64).tolist()) - {0}
    if present - set(labels):
        raise ValueError(f"label values {sorted(present - set(labels))} have no segment description")
    dtype = np.uint8 if max(labels + [0]) < 256 else np.uint16
    extent = [0, labelmap.size[0] - 1, 0, labelmap.size[1] - 1, 0, labelmap.size[2] - 1]
    seg_dict = {"voxels": values.astype(dtype).transpose(2, 1, 0),  # slicerio's default order is [i, j, k]
                "ijkToLPS": labelmap.index_to_lps_matrix(), "encoding": "gzip",
                "containedRepresentationNames": ["Binary labelmap"], "masterRepresentation": "Binary labelmap",
                "referenceImageExtentOffset": [0, 0, 0],
                "segments": [_segment_entry(seg, extent) for seg in segments]}
    for key, value in (metadata or {}).items():
        seg_dict[f"lungai_{key}"] = str(value)
    with atomic_output(path) as tmp:
        slicerio.write_segmentation(str(tmp), seg_dict, compression_level=6)
    return path


def labels_on_grid(labels: Image, reference: Image) -> Image:
    """``labels`` placed on ``reference``'s grid: label maps Slicer saved cropped to the painted region (or on a
    larger grid) are padded or cropped voxel for voxel when the grids align; other grids are resampled with
    nearest-neighbour interpolation. Voxels outside the reference are dropped."""
    if labels.same_grid(reference):
        return labels
    aligned = (np.allclose(labels.spacing, reference.spacing, rtol=1e-5, atol=1e-6)
               and np.allclose(labels.direction, reference.direction, atol=1e-6))
    offset = reference.lps_to_index(labels.origin)
    if aligned and np.allclose(offset, np.round(offset), atol=1e-3):
        out = np.zeros(reference.shape, labels.array.dtype)
        start = np.round(offset[::-1]).astype(int)  # (k, j, i) position of labels[0, 0, 0] in the reference
        src = tuple(slice(max(0, -a), max(0, min(n, m - a))) for a, n, m in zip(start, labels.shape, reference.shape))
        dst = tuple(slice(a + s.start, a + s.stop) for a, s in zip(start, src))
        out[dst] = labels.array[src]
        return reference.like(out, **labels.metadata)
    import SimpleITK as sitk

    resampled = sitk.Resample(labels.to_sitk(), reference.to_sitk(), sitk.Transform(), sitk.sitkNearestNeighbor,
                              0, labels.to_sitk().GetPixelID())
    return reference.like(sitk.GetArrayFromImage(resampled), **labels.metadata)


def read_segmentation(path: PathLike, reference: Optional[Image] = None) -> Tuple[Image, List[Segment]]:
    """Read a ``.seg.nrrd`` (single layer) back into a label map and its segment list.

    Overlapping segments (several layers) are merged into one label map in segment order. With ``reference``
    the label map is put on that image's grid (see :func:`labels_on_grid`).
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
    segments_info = seg.get("segments", [])
    if voxels.ndim not in (3, 4):
        raise InputError(path, f"holds a {voxels.ndim}D array; a segmentation is 3D (or 3D with layers)")

    def segment(label: int, info: Dict[str, object]) -> Segment:
        return Segment(label, str(info.get("name", f"Segment {label}")),
                       tuple(float(c) for c in info.get("color", (0.5, 0.5, 0.5))), info.get("terminology"),
                       dict(info.get("tags", {})))

    if voxels.ndim == 3:  # one layer: keep the stored label values
        label_map = voxels.astype(np.uint16)
        segments = [segment(int(info.get("labelValue", 1)), info) for info in segments_info]
    else:  # overlapping segments in layers [layer, i, j, k]: merge, numbering segments 1..N in file order
        label_map = np.zeros(voxels.shape[1:], dtype=np.uint16)
        segments = []
        for new_label, info in enumerate(segments_info, start=1):
            label_map[voxels[int(info.get("layer", 0))] == int(info.get("labelValue", 1))] = new_label
            segments.append(segment(new_label, info))
    ijk_to_lps = np.asarray(seg["ijkToLPS"], dtype=float)
    spacing = np.linalg.norm(ijk_to_lps[:3, :3], axis=0)
    # slicerio returns voxels indexed [i, j, k]; lungai arrays are [k, j, i]
    image = Image(label_map.transpose(2, 1, 0), tuple(spacing), tuple(ijk_to_lps[:3, 3]),
                  ijk_to_lps[:3, :3] / spacing, {"source": str(path)})
    return (image if reference is None else labels_on_grid(image, reference)), segments
