"""Bilateral lung density histograms and the standard densitometry indices.

Bins are ``bin_hu`` wide from ``low_hu`` up to ``high_hu``; bin ``n`` counts voxels with
``low_hu + n*bin_hu <= HU < low_hu + (n+1)*bin_hu``; values below ``low_hu`` are counted in the first bin and
values at or above ``high_hu`` in the last, so every lung voxel is counted once. Indices per lung and for both:
``laa950`` (% of voxels below -950 HU, low attenuation area), ``perc15`` (15th percentile HU, linear
interpolation), ``mld`` (mean lung density, HU), ``voxels`` and ``volume_ml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from lungai.pneumonia.regions import SIDES, LungRegions


@dataclass
class DensityHistogram:
    """Histogram counts and percentages per lung, bin edges and indices."""

    edges: np.ndarray
    counts: Dict[str, np.ndarray]
    indices: Dict[str, Dict[str, float]]

    def percent(self, name: str) -> np.ndarray:
        total = self.counts[name].sum()
        return 100.0 * self.counts[name] / total if total else np.zeros(len(self.counts[name]))

    def rows(self) -> List[Dict[str, object]]:
        """One CSV row per bin: lower and upper edge, counts and % of right, left and both lungs."""
        out = []
        names = list(self.counts)
        pct = {name: self.percent(name) for name in names}
        for n in range(len(self.edges) - 1):
            row: Dict[str, object] = {"hu_from": float(self.edges[n]), "hu_to": float(self.edges[n + 1])}
            for name in names:
                key = name.replace(" ", "_")
                row[f"{key}_count"] = int(self.counts[name][n])
                row[f"{key}_percent"] = round(float(pct[name][n]), 4)
            out.append(row)
        return out

    def to_dict(self) -> Dict[str, object]:
        return {"edges_hu": self.edges.tolist(), "counts": {k: v.tolist() for k, v in self.counts.items()},
                "indices": self.indices}


def density_indices(values: np.ndarray, voxel_ml: float) -> Dict[str, Optional[float]]:
    if values.size == 0:
        return {"voxels": 0, "volume_ml": 0.0, "laa950": 0.0, "perc15": None, "mld": None}
    return {"voxels": int(values.size), "volume_ml": float(values.size * voxel_ml),
            "laa950": float(100.0 * np.count_nonzero(values < -950) / values.size),
            "perc15": float(np.percentile(values, 15)), "mld": float(values.mean())}


def lung_histograms(hu: np.ndarray, regions: LungRegions, voxel_ml: float, low_hu: float = -1000.0,
                    high_hu: float = 200.0, bin_hu: float = 10.0) -> DensityHistogram:
    """Density histograms of the right lung, left lung and both lungs (see module docstring)."""
    edges = np.arange(low_hu, high_hu + bin_hu / 2, bin_hu, dtype=float)
    nbins = len(edges) - 1
    counts: Dict[str, np.ndarray] = {}
    indices: Dict[str, Dict[str, float]] = {}
    for value, side in SIDES.items():
        values = hu[regions.lungs == value].astype(np.float64)
        index = np.clip(np.floor((values - low_hu) / bin_hu).astype(np.int64), 0, nbins - 1)
        counts[f"{side} lung"] = np.bincount(index, minlength=nbins)
        indices[f"{side} lung"] = density_indices(values, voxel_ml)
    counts["both lungs"] = sum(counts[f"{s} lung"] for s in SIDES.values())
    indices["both lungs"] = density_indices(hu[regions.lung_mask].astype(np.float64), voxel_ml)
    return DensityHistogram(edges, counts, indices)
