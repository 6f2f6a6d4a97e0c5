"""Involvement: how much of each lung, zone and lobe the lesions occupy, and the CT severity score.

Percentages are lesion volume over region volume x 100, per class (ground glass, consolidation) and in total.
``percent_opacity`` is all lesion voxels over both lungs; ``percent_high_opacity`` counts consolidation only.

Severity score (per lobe, 0 to 5; total 0 to 25), from the lobe's percentage involved:
0 none, 1 below 5 %, 2 5 to below 25 %, 3 25 to below 50 %, 4 50 to below 75 %, 5 75 % or more.
Without lobes, the same scale is applied to 6 zones (upper, middle and lower third of each lung; total 0 to 30)
and the result says ``basis: "zones"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, List

import numpy as np

from lungai.labels import CONSOLIDATION, GROUND_GLASS, LOBE_LABELS
from lungai.pneumonia.regions import LEVELS, SIDES, LungRegions

SEVERITY_BANDS = (5.0, 25.0, 50.0, 75.0)


def severity_points(percent: float) -> int:
    """0..5 points for a region's involvement percentage (see module docstring)."""
    if percent <= 0:
        return 0
    return 1 + int(np.searchsorted(SEVERITY_BANDS, percent, side="right"))


@dataclass
class RegionInvolvement:
    """Involvement of one region."""

    region: str
    volume_ml: float
    ground_glass_ml: float
    consolidation_ml: float
    lesion_ml: float
    percent_ground_glass: float
    percent_consolidation: float
    percent_involved: float

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


@dataclass
class Involvement:
    """Involvement of both lungs, each lung, zone and lobe, with the severity score."""

    lungs: List[RegionInvolvement]
    zones: List[RegionInvolvement]
    lobes: List[RegionInvolvement]
    percent_opacity: float
    percent_high_opacity: float
    severity_basis: str
    severity_scores: Dict[str, int] = field(default_factory=dict)
    severity_total: int = 0
    severity_max: int = 25

    def to_dict(self) -> Dict[str, object]:
        return {"lungs": [r.to_dict() for r in self.lungs], "zones": [r.to_dict() for r in self.zones],
                "lobes": [r.to_dict() for r in self.lobes], "percent_opacity": self.percent_opacity,
                "percent_high_opacity": self.percent_high_opacity, "severity": {
                    "basis": self.severity_basis, "scores": dict(self.severity_scores),
                    "total": self.severity_total, "max": self.severity_max,
                    "definition": "per region 0 none, 1 <5%, 2 5-<25%, 3 25-<50%, 4 50-<75%, 5 >=75% involved"}}

    def rows(self) -> List[Dict[str, object]]:
        """Flat table rows (lungs, zones, lobes) for CSV."""
        out = []
        for kind, items in (("lung", self.lungs), ("zone", self.zones), ("lobe", self.lobes)):
            out += [{"kind": kind, **r.to_dict()} for r in items]
        return out


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else 0.0


def _involvement(name: str, counts: np.ndarray, voxel_ml: float) -> RegionInvolvement:
    """Involvement of a region from its voxel counts per class (none, ground glass, consolidation)."""
    volume = int(counts.sum()) * voxel_ml
    ggo = float(counts[GROUND_GLASS]) * voxel_ml
    cons = float(counts[CONSOLIDATION]) * voxel_ml
    return RegionInvolvement(name, volume, ggo, cons, ggo + cons, _pct(ggo, volume), _pct(cons, volume),
                             _pct(ggo + cons, volume))


def _class_counts(region_values: np.ndarray, classes: np.ndarray, largest: int) -> np.ndarray:
    """Voxel counts per region value (rows 0 to at least ``largest``) and lesion class (columns: none, ground
    glass, consolidation)."""
    n = max(largest, int(region_values.max(initial=0))) + 1
    return np.bincount(region_values.astype(np.int64) * 3 + classes, minlength=3 * n).reshape(n, 3)


def measure_involvement(labels: np.ndarray, regions: LungRegions, voxel_ml: float) -> Involvement:
    """Involvement of the lesion class map ``labels`` in the regions (see the module docstring).

    Counted in one pass over the voxels of the lungs, zones and lobes (per-region masks of a 512x512x300 grid
    would cost a second)."""
    labels = np.asarray(labels)
    keep = regions.lungs > 0
    keep |= regions.zones > 0
    if regions.has_lobes:
        keep |= regions.lobes > 0
    where = np.flatnonzero(keep)
    found = labels.ravel()[where]
    classes = np.where(found == GROUND_GLASS, GROUND_GLASS, np.where(found == CONSOLIDATION, CONSOLIDATION, 0))
    sides = _class_counts(regions.lungs.ravel()[where], classes, max(SIDES))
    lungs = [_involvement("both lungs", sides[list(SIDES)].sum(axis=0), voxel_ml)]
    lungs += [_involvement(f"{name} lung", sides[value], voxel_ml) for value, name in SIDES.items()]
    zone_counts = _class_counts(regions.zones.ravel()[where], classes, len(regions.zone_names))
    zones = [_involvement(name, zone_counts[value], voxel_ml)
             for value, name in enumerate(regions.zone_names, start=1) if zone_counts[value].any()]
    lobes = []
    if regions.has_lobes:
        lobe_counts = _class_counts(regions.lobes.ravel()[where], classes, max(LOBE_LABELS))
        lobes = [_involvement(name, lobe_counts[value], voxel_ml)
                 for value, name in LOBE_LABELS.items() if lobe_counts[value].any()]
    both = lungs[0]
    result = Involvement(lungs=lungs, zones=zones, lobes=lobes, percent_opacity=both.percent_involved,
                         percent_high_opacity=both.percent_consolidation,
                         severity_basis="lobes" if regions.has_lobes else "zones")
    if regions.has_lobes:
        result.severity_scores = {r.region: severity_points(r.percent_involved) for r in lobes}
        result.severity_max = 25
    else:
        for side_index, side in enumerate(SIDES.values()):
            for level_index, level in enumerate(LEVELS):
                values = [1 + side_index * 6 + level_index * 2 + part for part in (0, 1)]
                zone = _involvement(f"{side} {level} zone", zone_counts[values].sum(axis=0), voxel_ml)
                result.severity_scores[zone.region] = severity_points(zone.percent_involved)
        result.severity_max = 30
    result.severity_total = int(sum(result.severity_scores.values()))
    return result
