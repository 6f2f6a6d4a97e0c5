"""Per-slice findings by quadrant and the per-patient call.

Each axial slice is split into four quadrants: right/left lung, each divided into anterior and posterior halves
at the antero-posterior midpoint of that lung on that slice. A quadrant of a slice is *involved* when its lesion
area on that slice (lesions that passed the minimum size) is at least ``min_area_mm2``; the analysis uses the
cross-section of the minimum lesion size (a disc of ``min_size_mm``), so a lesion only grazing a slice does not
count. The patient is called positive
when one quadrant is involved on at least ``consecutive`` adjacent slices; the runs that decided it are reported
as slice index ranges (array index along the cranio-caudal axis, inclusive).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from lungai.pneumonia.regions import SIDES, LungRegions, PatientAxes

QUADRANTS = ("right anterior", "right posterior", "left anterior", "left posterior")


@dataclass
class SliceRun:
    quadrant: str
    first_slice: int
    last_slice: int

    @property
    def length(self) -> int:
        return self.last_slice - self.first_slice + 1

    def to_dict(self) -> Dict[str, object]:
        return {"quadrant": self.quadrant, "first_slice": self.first_slice, "last_slice": self.last_slice,
                "slices": self.length}


@dataclass
class PatientCall:
    """Per-slice quadrant involvement and the resulting call."""

    positive: bool
    consecutive: int
    involved: Dict[str, List[int]]  # quadrant -> involved slice indices
    deciding_runs: List[SliceRun] = field(default_factory=list)
    slice_axis: int = 0

    def to_dict(self) -> Dict[str, object]:
        return {"positive": self.positive, "call": "positive" if self.positive else "negative",
                "rule": f"lesion on >= {self.consecutive} consecutive slices in the same quadrant",
                "consecutive": self.consecutive, "deciding_runs": [r.to_dict() for r in self.deciding_runs],
                "involved_slices": self.involved, "slice_axis": self.slice_axis}

    def rows(self) -> List[Dict[str, object]]:
        """One row per slice with any involvement: slice index and a 0/1 column per quadrant."""
        slices = sorted({s for v in self.involved.values() for s in v})
        sets = {q: set(v) for q, v in self.involved.items()}
        return [{"slice": s, **{q.replace(" ", "_"): int(s in sets[q]) for q in QUADRANTS}} for s in slices]


def _runs(indices: List[int]) -> List[tuple]:
    runs, start = [], None
    for n, value in enumerate(indices):
        if start is None:
            start = value
        if n + 1 == len(indices) or indices[n + 1] != value + 1:
            runs.append((start, value))
            start = None
    return runs


def quadrant_map(regions: LungRegions, axes: PatientAxes) -> np.ndarray:
    """Quadrant label per lung voxel: 1..4 in :data:`QUADRANTS` order, 0 outside the lungs."""
    lungs = np.moveaxis(regions.lungs, (axes.axial, axes.ap), (0, 1))
    out = np.zeros(lungs.shape, dtype=np.uint8)
    ap = np.arange(lungs.shape[1], dtype=float) + 0.5
    for side_index, value in enumerate(SIDES):
        mask = lungs == value
        present = mask.any(axis=2)  # slice x ap
        for k in np.flatnonzero(present.any(axis=1)):
            rows = np.flatnonzero(present[k])
            mid = 0.5 * (rows[0] + rows[-1] + 1)
            posterior = (ap > mid) if axes.posterior_sign > 0 else (ap < mid)
            values = np.broadcast_to((1 + 2 * side_index + posterior.astype(np.uint8))[:, None], mask[k].shape)
            out[k][mask[k]] = values[mask[k]]
    return np.moveaxis(out, (0, 1), (axes.axial, axes.ap))


def patient_call(labels: np.ndarray, regions: LungRegions, axes: PatientAxes, consecutive: int = 3,
                 min_area_mm2: float = 0.0, spacing_kji: Optional[Tuple[float, float, float]] = None) -> PatientCall:
    """Quadrant involvement per slice and the consecutive-slice rule (see module docstring)."""
    if consecutive < 1:
        raise ValueError("consecutive must be at least 1")
    pixel_mm2 = 1.0
    if spacing_kji is not None:
        pixel_mm2 = float(np.prod([s for axis, s in enumerate(spacing_kji) if axis != axes.axial]))
    min_voxels = max(1, int(np.ceil(min_area_mm2 / pixel_mm2 - 1e-9)))
    quadrants = quadrant_map(regions, axes)
    lesion = np.asarray(labels) > 0
    involved: Dict[str, List[int]] = {}
    deciding: List[SliceRun] = []
    other = tuple(a for a in range(3) if a != axes.axial)
    for value, name in enumerate(QUADRANTS, start=1):
        per_slice = np.count_nonzero(lesion & (quadrants == value), axis=other)
        slices = [int(s) for s in np.flatnonzero(per_slice >= min_voxels)]
        involved[name] = slices
        deciding += [SliceRun(name, a, b) for a, b in _runs(slices) if b - a + 1 >= consecutive]
    deciding.sort(key=lambda r: (-r.length, r.first_slice))
    return PatientCall(bool(deciding), consecutive, involved, deciding, axes.axial)
