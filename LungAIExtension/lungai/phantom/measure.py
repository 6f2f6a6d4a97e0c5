"""Facts about a phantom's truth measured from the label maps themselves (volumes are voxel counts)."""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from lungai.image import Image
from lungai.labels import CONSOLIDATION, GROUND_GLASS, LEFT_LUNG, LESION_LABELS, LOBE_LABELS, RIGHT_LUNG

SIDES = {RIGHT_LUNG: "right", LEFT_LUNG: "left"}


def _per_label(labels: np.ndarray, n: int) -> Dict[str, np.ndarray]:
    """Voxel counts and index centroids (k, j, i) of labels 0..n (only labelled voxels are visited)."""
    nz = np.nonzero(labels)
    values = labels[nz].astype(np.int64)
    counts = np.bincount(values, minlength=n + 1)
    sums = [np.bincount(values, weights=c, minlength=n + 1) for c in nz]
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = np.stack(sums, -1) / counts[:, None]
    return {"counts": counts, "centroid_kji": centroid}


def _majority(labels: np.ndarray, region: np.ndarray, n: int) -> np.ndarray:
    """For each label 1..n the most frequent value of ``region`` under it."""
    sel = labels > 0
    pairs = labels[sel].astype(np.int64) * 256 + region[sel].astype(np.int64)
    table = np.bincount(pairs, minlength=(n + 1) * 256).reshape(n + 1, 256)
    return table.argmax(axis=1)


def equivalent_diameter_mm(volume_ml: float) -> float:
    """Diameter of the sphere with this volume."""
    return float((6.0 * volume_ml * 1000.0 / np.pi) ** (1.0 / 3.0))


def describe_lesions(truth: Dict[str, Image], records: List[Dict]) -> List[Dict]:
    ids = truth["lesions"]
    n = max([r["id"] for r in records], default=0)
    if n == 0:
        return []
    stats = _per_label(ids.array, n)
    side = _majority(ids.array, truth["lungs"].array, n)
    lobe = _majority(ids.array, truth["lobes"].array, n)
    cls = _majority(ids.array, truth["lesion_class"].array, n)
    out = []
    for rec in records:
        i = rec["id"]
        volume = float(stats["counts"][i] * ids.voxel_volume_ml)
        centroid = ids.index_to_lps(stats["centroid_kji"][i][::-1])
        out.append(dict(rec, volume_ml=round(volume, 4), voxels=int(stats["counts"][i]),
                        centroid_lps=[round(float(c), 2) for c in centroid], side=SIDES.get(int(side[i]), "unknown"),
                        lobe=LOBE_LABELS.get(int(lobe[i]), "unknown"), lesion_class=LESION_LABELS.get(int(cls[i])),
                        diameter_mm=round(equivalent_diameter_mm(volume), 2)))
    return out


def describe_emboli(truth: Dict[str, Image], records: List[Dict]) -> List[Dict]:
    ids = truth["emboli"]
    n = max([r["id"] for r in records], default=0)
    if n == 0:
        return []
    stats = _per_label(ids.array, n)
    out = []
    for rec in records:
        i = rec["id"]
        volume = float(stats["counts"][i] * ids.voxel_volume_ml)
        centroid = ids.index_to_lps(stats["centroid_kji"][i][::-1])
        diameter = rec["vessel_diameter_mm"] if rec["occlusive"] else min(rec["vessel_diameter_mm"],
                                                                          equivalent_diameter_mm(volume))
        out.append(dict(rec, volume_ml=round(volume, 5), voxels=int(stats["counts"][i]),
                        centroid_lps=[round(float(c), 2) for c in centroid], diameter_mm=round(diameter, 2)))
    return out


def involvement(truth: Dict[str, Image]) -> Dict[str, Dict[str, float]]:
    """Percentage of each lung (and both) covered by each lesion class and by any lesion."""
    lungs, cls = truth["lungs"].array, truth["lesion_class"].array
    out = {}
    for name, sel in (("right", lungs == RIGHT_LUNG), ("left", lungs == LEFT_LUNG),
                      ("total", (lungs == RIGHT_LUNG) | (lungs == LEFT_LUNG))):
        n = max(int(np.count_nonzero(sel)), 1)
        c = cls[sel]
        out[name] = {"ground_glass": round(100.0 * np.count_nonzero(c == GROUND_GLASS) / n, 3),
                     "consolidation": round(100.0 * np.count_nonzero(c == CONSOLIDATION) / n, 3),
                     "any": round(100.0 * np.count_nonzero(c > 0) / n, 3)}
    return out


def lobe_volumes(lobes: Image) -> Dict[str, float]:
    counts = np.bincount(lobes.array.ravel(), minlength=6)
    return {name: round(float(counts[v]) * lobes.voxel_volume_ml, 2) for v, name in LOBE_LABELS.items()}
