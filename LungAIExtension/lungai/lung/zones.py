"""Lung zones: each lung cut into upper/middle/lower thirds of its own cranio-caudal extent, and each third
into a ventral and a dorsal half (split at the middle of that lung's front-to-back extent in every slice)."""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from lungai.image import Image
from lungai.io.segmentation import Segment
from lungai.labels import LEFT_LUNG, RIGHT_LUNG
from lungai.lung.orientation import Reorientation
from lungai.terminology import ZONE_NAMES, structure

ZONE_TABLE: Dict[int, str] = {value: name for value, name in enumerate(ZONE_NAMES, start=1)}


def zone_value(side: int, level: int, dorsal: int) -> int:
    """Zone label of a side (1 right, 2 left), level (0 upper, 1 middle, 2 lower) and half (0 ventral, 1 dorsal)."""
    return 1 + (side - 1) * 6 + level * 2 + dorsal


def compute_zones(labels: Image, planar: bool = False) -> Image:
    """Zone label map (values of :data:`ZONE_TABLE`) on the grid of a lungs label map.

    ``planar``: a thin slab has no cranio-caudal extent to cut in thirds; all of it is called "middle".
    """
    reo = Reorientation.of(labels)
    lab = reo.to_canonical(labels.array)
    out = np.zeros(lab.shape, dtype=np.uint8)
    nz, ny, _ = lab.shape
    for side in (RIGHT_LUNG, LEFT_LUNG):
        mask = lab == side
        per_slice = mask.any(axis=2)  # (z, y)
        rows = np.flatnonzero(per_slice.any(axis=1))
        if rows.size == 0:
            continue
        if planar:
            level = np.ones(nz, dtype=np.int64)
        else:
            bottom, top = rows[0], rows[-1]
            depth = (top + 1 - np.arange(nz)) / float(top - bottom + 1)  # 0 at the apex .. 1 at the base
            level = np.clip((depth * 3).astype(np.int64), 0, 2)
        ys = np.arange(ny)[None, :]
        first = np.where(per_slice.any(axis=1), np.argmax(per_slice, axis=1), 0)
        last = np.where(per_slice.any(axis=1), ny - 1 - np.argmax(per_slice[:, ::-1], axis=1), 0)
        dorsal = (ys >= 0.5 * (first + last + 1)[:, None]).astype(np.int64)  # canonical y grows posterior
        value = zone_value(side, level[:, None], dorsal).astype(np.uint8)  # (z, y)
        out[mask] = np.broadcast_to(value[:, :, None], lab.shape)[mask]
    return labels.like(reo.from_canonical(out))


def zone_segments() -> List[Segment]:
    """Segments for the zone label map, coloured as a lighter (upper) to darker (lower) shade of each lung."""
    segments = []
    for value, name in ZONE_TABLE.items():
        side = "right_lung" if name.startswith("right") else "left_lung"
        base = np.asarray(structure(side).color)
        level = (value - 1) % 6 // 2
        shade = 1.25 - 0.25 * level - (0.08 if name.endswith("dorsal") else 0.0)
        color = tuple(float(c) for c in np.clip(base * shade, 0, 1))
        segments.append(Segment(value, name, color, structure(side).terminology(), {"zone": name}))
    return segments
