"""Qanadli obstruction index (Qanadli et al., AJR 2001) from accepted emboli.

Each lung has 10 segmental arteries (right: upper lobe 3, middle lobe 2, lower lobe 5; left: upper lobe 5,
lower lobe 5). Every embolus scores the segmental arteries at and beyond it, weighted 1 for partial and 2 for
total occlusion; a subsegmental embolus counts as a partially occluded segmental artery. The index is the sum
over the 20 segmental arteries (each counted once, with its worst weight) divided by the maximum of 40, in
percent. Without a lobe segmentation the lobe of a lobar embolus comes from its position relative to the
pulmonary artery bifurcation (upper lobe above it; right middle lobe in front of it below).
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

SEGMENTS = {"right": {"upper": 3, "middle": 2, "lower": 5}, "left": {"upper": 5, "lower": 5}}
UPPER_MARGIN_MM = 15.0


def _lobe(side: str, lps: Sequence[float], bifurcation_lps: Sequence[float]) -> str:
    if lps[2] >= bifurcation_lps[2] - UPPER_MARGIN_MM:
        return "upper"
    if side == "right" and lps[1] < bifurcation_lps[1]:
        return "middle"
    return "lower"


def qanadli_index(emboli: List[Dict], bifurcation_lps: Sequence[float]) -> Dict[str, object]:
    """Index (percent) and the per-lobe scores of the segmental arteries; ``emboli`` need ``level``, ``side``,
    ``occlusive`` and ``position_lps``."""
    # score of each segmental artery, keyed (side, lobe, n)
    arteries: Dict[tuple, int] = {}
    next_free = {(s, lobe): 0 for s, lobes in SEGMENTS.items() for lobe in lobes}

    def mark(side: str, lobe: str, count: int, weight: int) -> None:
        total = SEGMENTS[side][lobe]
        start = next_free[(side, lobe)] if count == 1 else 0
        for n in range(start, min(total, start + count)):
            arteries[(side, lobe, n)] = max(arteries.get((side, lobe, n), 0), weight)
        if count == 1:
            next_free[(side, lobe)] = min(total - 1, start + 1)

    for e in sorted(emboli, key=lambda e: ("main", "lobar", "segmental", "subsegmental").index(e["level"])):
        weight = 2 if e.get("occlusive") and e["level"] != "subsegmental" else 1
        side = e["side"]
        lps = e["position_lps"]
        if e["level"] == "main":
            sides = ["right", "left"] if abs(lps[0] - bifurcation_lps[0]) < 10.0 else [side]
            for s in sides:
                for lobe, count in SEGMENTS[s].items():
                    mark(s, lobe, count, weight)
        elif e["level"] == "lobar":
            lobe = _lobe(side, lps, bifurcation_lps)
            lobe = lobe if lobe in SEGMENTS[side] else "lower"
            mark(side, lobe, SEGMENTS[side][lobe], weight)
        else:
            lobe = _lobe(side, lps, bifurcation_lps)
            lobe = lobe if lobe in SEGMENTS[side] else "lower"
            mark(side, lobe, 1, weight)
    total = int(sum(arteries.values()))
    per_lobe = {f"{s}_{lobe}": int(sum(v for (ss, ll, _), v in arteries.items() if ss == s and ll == lobe))
                for s, lobes in SEGMENTS.items() for lobe in lobes}
    return {"index_percent": round(100.0 * total / 40.0, 1), "score": total, "max_score": 40,
            "per_lobe": per_lobe, "obstructed_segmental_arteries": int(np.count_nonzero(list(arteries.values())))}
