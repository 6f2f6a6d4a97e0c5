"""One mark per structure: candidates lying within a few mm of each other are merged into one.

A filling defect can break into several candidates (pieces of one clot, one partial-volume dip split by the
vessel wall, one patch of mediastinal tissue in fragments); a reader sees them as one finding. Merging keeps the
union of the pieces with the highest confidence among them, and the FROC counts the merged mark once.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lungai.embolism.candidates import Candidates

GAP_REACH_MM = 8.0  # candidate pairs farther apart than this are never merged (and not stored in caches)


def candidate_gaps(labels: np.ndarray, spacing: Sequence[float], reach_mm: float = GAP_REACH_MM) -> np.ndarray:
    """(k, 3) float rows ``(i, j, mm)``: candidates ``i < j`` (label values) whose nearest voxel centres lie
    ``mm`` apart, for every pair within ``reach_mm``."""
    spacing = np.asarray(spacing, float)
    margin = np.ceil(reach_mm / spacing).astype(int)
    rows = []
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        grown = tuple(slice(max(0, b.start - m), min(n, b.stop + m)) for b, m, n in zip(box, margin, labels.shape))
        sub = labels[grown]
        dist = ndimage.distance_transform_edt(sub != i, sampling=spacing)
        near = (sub > i) & (dist <= reach_mm)
        if not near.any():
            continue
        others = sub[near]
        best = np.full(int(others.max()) + 1, np.inf)
        np.minimum.at(best, others, dist[near])
        for j in np.flatnonzero(np.isfinite(best)):
            rows.append((i, j, best[j]))
    return np.asarray(rows, dtype=float).reshape(-1, 3)


def merge_groups(count: int, gaps: np.ndarray, merge_mm: float) -> np.ndarray:
    """Group index (0..g-1) of each of ``count`` candidates, joining those ``merge_mm`` or less apart (chains
    join: pieces along one vessel become one mark); groups are numbered by their first candidate."""
    if count == 0:
        return np.zeros(0, dtype=int)
    close = gaps[gaps[:, 2] <= merge_mm] if len(gaps) else gaps
    i = close[:, 0].astype(int) - 1 if len(close) else np.zeros(0, int)
    j = close[:, 1].astype(int) - 1 if len(close) else np.zeros(0, int)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(count, count))
    _, raw = connected_components(graph, directed=False)
    first = {}
    return np.asarray([first.setdefault(g, len(first)) for g in raw], dtype=int)


def merge_candidates(cands: Candidates, probs: np.ndarray, groups: np.ndarray,
                     spacing: Sequence[float]) -> Tuple[Candidates, np.ndarray]:
    """The merged candidates (label map renumbered by group) and their confidences (the highest of each group);
    features, level and side come from the group's most confident piece, sizes from the union."""
    if cands.count == 0:
        return cands, probs
    n = int(groups.max()) + 1
    lead = np.zeros(n, dtype=int)
    best = np.full(n, -np.inf)
    for k, (g, p) in enumerate(zip(groups, probs)):
        if p > best[g]:
            best[g], lead[g] = p, k
    remap = np.concatenate([[0], groups + 1]).astype(np.int32)
    labels = remap[cands.labels]
    idx = np.arange(1, n + 1)
    volume = np.bincount(groups, weights=cands.volume_mm3, minlength=n)
    centroid = np.asarray(ndimage.center_of_mass(np.ones(labels.shape, np.float32), labels, idx), float).reshape(n, 3)
    extent = np.asarray([max((sl.stop - sl.start) * s for sl, s in zip(o, spacing))
                         for o in ndimage.find_objects(labels, max_label=n)])
    occlusive = np.bincount(groups, weights=cands.occlusive.astype(float), minlength=n) > 0
    merged = Candidates(labels=labels, features=cands.features[lead], centroid=centroid, volume_mm3=volume,
                        extent_mm=extent, level=[cands.level[k] for k in lead], side=[cands.side[k] for k in lead],
                        occlusive=occlusive)
    return merged, best
