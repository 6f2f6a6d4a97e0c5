"""Evaluation as CAD-PE papers report it: FROC, per-scan ROC AUC, mask AP/AP50/AP75 and Dice.

A candidate *hits* a true embolus when it overlaps the embolus grown by one voxel; several hits on one embolus
count once (the best score) and are not false positives, and one candidate that reaches several emboli (a
main-artery clot continuing into a lobar occlusion) detects each of them. FROC sensitivities are read at 1, 2 and 4 false
positives per scan, overall and per embolus level. AP follows the COCO convention on candidate masks (IoU
0.50:0.95 averaged; AP50 and AP75 at one IoU), Dice compares the accepted candidates with the truth mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np
from scipy import ndimage

LEVELS = ("main", "lobar", "segmental", "subsegmental")


@dataclass
class CaseTable:
    """Per-candidate facts of one evaluated case against its truth."""

    name: str
    scores: np.ndarray          # (n,)
    hit: np.ndarray             # (n,) truth embolus id the candidate hits, 0 none
    iou: np.ndarray             # (n,) IoU with the best-overlapping truth embolus
    iou_id: np.ndarray          # (n,) that embolus
    voxels: np.ndarray          # (n,) candidate size in voxels
    inside_truth: np.ndarray    # (n,) candidate voxels inside any truth embolus
    truth_levels: Dict[int, str] = field(default_factory=dict)
    truth_voxels: int = 0
    covers: Optional[np.ndarray] = None  # (n, max id) bool: candidate i reaches embolus j + 1 (None: ``hit`` only)

    @property
    def positive(self) -> bool:
        return bool(self.truth_levels)


def case_table(name: str, candidate_labels: np.ndarray, scores: np.ndarray, truth: np.ndarray,
               records: Sequence[Dict]) -> CaseTable:
    """Match candidates (label map 1..n) to the truth emboli label map (ids of ``records``) on one grid."""
    n = len(scores)
    hit = np.zeros(n, dtype=int)
    iou = np.zeros(n)
    iou_id = np.zeros(n, dtype=int)
    voxels = np.bincount(candidate_labels.ravel(), minlength=n + 1)[1:]
    inside = np.bincount(candidate_labels[truth > 0], minlength=n + 1)[1:] if n else np.zeros(0, int)
    truth_sizes = np.bincount(truth.ravel(), minlength=max([r["id"] for r in records], default=0) + 1)
    covers = np.zeros((n, truth_sizes.size - 1), dtype=bool)
    if n and records:
        m = int(truth_sizes.size)
        near = np.zeros((n, m), dtype=np.int64)  # candidate voxels within one voxel of each embolus
        for box, embolus in zip(ndimage.find_objects(truth), range(1, m)):
            if box is None:
                continue
            box = tuple(slice(max(0, b.start - 1), b.stop + 1) for b in box)
            grown = ndimage.binary_dilation(truth[box] == embolus, structure=np.ones((3, 3, 3), bool))
            near[:, embolus] = np.bincount(candidate_labels[box][grown], minlength=n + 1)[1:]
        hit = np.where(near.max(axis=1) > 0, near.argmax(axis=1), 0)
        covers = near[:, 1:] > 0
        sel = (candidate_labels > 0) & (truth > 0)
        inter = np.bincount(candidate_labels[sel].astype(np.int64) * m + truth[sel],
                            minlength=(n + 1) * m).reshape(n + 1, m)[1:]
        union = voxels[:, None] + truth_sizes[None, :] - inter
        ious = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        ious[:, 0] = 0
        iou_id = ious.argmax(axis=1)
        iou = ious.max(axis=1)
    return CaseTable(name=name, scores=np.asarray(scores, float), hit=hit, iou=iou, iou_id=iou_id,
                     voxels=voxels, inside_truth=inside, truth_levels={r["id"]: r["level"] for r in records},
                     truth_voxels=int(np.count_nonzero(truth)), covers=covers)


def _detections(tables: Sequence[CaseTable], level: str = "") -> tuple:
    """Best score per true embolus (-inf when no candidate hits it) and the scores of false positives."""
    best, fps = [], []
    for t in tables:
        targets = {i for i, lv in t.truth_levels.items() if not level or lv == level}
        per = {i: -np.inf for i in targets}
        covers = t.covers if t.covers is not None else t.hit[:, None] == np.arange(1, max(t.truth_levels, default=0) + 1)
        fps.extend(t.scores[~covers.any(axis=1)] if covers.size else t.scores)
        for i in per:
            reached = t.scores[covers[:, i - 1]] if i <= covers.shape[1] else []
            if len(reached):
                per[i] = float(np.max(reached))
        best.extend(per.values())
    return np.asarray(best), np.asarray(fps)


def froc_threshold(tables: Sequence[CaseTable], rate: float) -> float:
    """The score an embolus must exceed to count at ``rate`` false positives per scan (the (allowed + 1)-th
    highest false-positive score; -inf when there are no more false positives than allowed)."""
    return _threshold_at(_detections(tables)[1], len(tables), rate)


def _threshold_at(fps: np.ndarray, scans: int, rate: float) -> float:
    """The (allowed + 1)-th highest of the false-positive scores ``fps`` of ``scans`` scans at ``rate`` per scan."""
    fps = np.sort(fps)[::-1]
    allowed = int(np.floor(rate * max(scans, 1)))
    return float(fps[allowed]) if allowed < len(fps) else -np.inf


def _sensitivity(best: np.ndarray, threshold: float) -> float:
    """Share of emboli whose best candidate score exceeds ``threshold`` (no candidate: -inf, never found)."""
    return float(np.mean((best > threshold) & np.isfinite(best)))


def froc(tables: Sequence[CaseTable], rates: Sequence[float] = (1, 2, 4), level: str = "") -> Dict[str, float]:
    """Sensitivity at each false-positive rate per scan (the best threshold with at most that many)."""
    best, _ = _detections(tables, level)
    out = {}
    for r in rates:
        thr = froc_threshold(tables, r)  # false positives count at every level
        out[f"sensitivity_at_{r:g}fp"] = round(_sensitivity(best, thr) if len(best) else float("nan"), 4)
    out["emboli"] = int(len(best))
    return out


def froc_interval(tables: Sequence[CaseTable], rates: Sequence[float] = (1, 2, 4), replicates: int = 2000,
                  seed: int = 0, confidence: float = 0.95) -> Dict[str, Dict[str, list]]:
    """Percentile bootstrap interval of the FROC sensitivities, overall and per level, over scans.

    Each replicate draws the positive and the negative scans with replacement (separately, so that every
    replicate keeps the cohort's mix) and reads the sensitivities as ``froc`` does; emboli of a scan drawn
    twice count twice, as do its false positives.
    """
    per_scan = [(_detections([t]), [_detections([t], lv)[0] for lv in LEVELS]) for t in tables]
    groups = [np.flatnonzero([t.positive for t in tables]), np.flatnonzero([not t.positive for t in tables])]
    rng = np.random.default_rng(seed)
    names = [""] + list(LEVELS)
    values = {name: {r: [] for r in rates} for name in names}
    for _ in range(replicates):
        pick = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups if len(g)])
        fps = np.concatenate([per_scan[i][0][1] for i in pick])
        thresholds = {r: _threshold_at(fps, len(pick), r) for r in rates}
        for k, name in enumerate(names):
            best = np.concatenate([per_scan[i][0][0] if not name else per_scan[i][1][k - 1] for i in pick])
            if not len(best):
                continue
            for r in rates:
                values[name][r].append(_sensitivity(best, thresholds[r]))
    tail = 100.0 * (1.0 - confidence) / 2.0
    return {name or "overall": {f"sensitivity_at_{r:g}fp": [round(float(np.percentile(v, tail)), 4),
                                                             round(float(np.percentile(v, 100.0 - tail)), 4)]
                                for r, v in values[name].items() if v}
            for name in names}


def operating_point(tables: Sequence[CaseTable], threshold: float) -> Dict[str, float]:
    best, fps = _detections(tables)
    return {"threshold": threshold, "sensitivity": round(float(np.mean(best >= threshold)), 4) if len(best) else None,
            "fp_per_scan": round(float(np.sum(fps >= threshold)) / max(len(tables), 1), 3)}


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half)."""
    y, s = np.asarray(labels, bool), np.asarray(scores, float)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def average_precision(tables: Sequence[CaseTable], iou_threshold: float) -> float:
    """COCO-style AP (101-point interpolation) of candidate masks at one IoU threshold."""
    dets = []
    n_truth = 0
    for ci, t in enumerate(tables):
        n_truth += len(t.truth_levels)
        for s, i, j in zip(t.scores, t.iou, t.iou_id):
            dets.append((s, ci, int(j) if i >= iou_threshold else 0))
    if n_truth == 0:
        return float("nan")
    dets.sort(key=lambda d: -d[0])
    taken, tp = set(), []
    for s, ci, j in dets:
        ok = j > 0 and (ci, j) not in taken
        if ok:
            taken.add((ci, j))
        tp.append(ok)
    tp = np.asarray(tp, float)
    if len(tp) == 0:
        return 0.0
    ctp = np.cumsum(tp)
    recall = ctp / n_truth
    precision = ctp / np.arange(1, len(tp) + 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    grid = np.linspace(0, 1, 101)
    at = np.searchsorted(recall, grid, side="left")
    return float(np.mean([precision[a] if a < len(precision) else 0.0 for a in at]))


def ap_summary(tables: Sequence[CaseTable]) -> Dict[str, float]:
    aps = [average_precision(tables, t) for t in np.arange(0.5, 0.96, 0.05)]
    return {"AP": round(float(np.mean(aps)), 4), "AP50": round(aps[0], 4), "AP75": round(aps[5], 4)}


def dice(tables: Sequence[CaseTable], threshold: float) -> Dict[str, float]:
    """Mean Dice of accepted candidates vs truth over positive scans, and the pooled Dice."""
    per, inter_all, size_all = [], 0.0, 0.0
    for t in tables:
        acc = t.scores >= threshold
        inter = float(t.inside_truth[acc].sum())
        size = float(t.voxels[acc].sum()) + t.truth_voxels
        inter_all += inter
        size_all += size
        if t.positive:
            per.append(2 * inter / size if size else 0.0)
    return {"dice_mean_positive_scans": round(float(np.mean(per)), 4) if per else None,
            "dice_pooled": round(2 * inter_all / size_all, 4) if size_all else None}


def summary(tables: Sequence[CaseTable], threshold: float) -> Dict[str, object]:
    """Every figure of the evaluation for one set of cases."""
    scan_scores = [float(t.scores.max()) if len(t.scores) else 0.0 for t in tables]
    out: Dict[str, object] = {"scans": len(tables), "positive_scans": sum(t.positive for t in tables),
                              "froc": froc(tables),
                              "froc_per_level": {lv: froc(tables, level=lv) for lv in LEVELS},
                              "scan_auc": round(roc_auc([t.positive for t in tables], scan_scores), 4),
                              "operating_point": operating_point(tables, threshold)}
    out.update(ap_summary(tables))
    out.update(dice(tables, threshold))
    return out


def paired_difference(tables: Sequence[CaseTable], baseline: Sequence[CaseTable], rates: Sequence[float] = (1, 2, 4),
                      replicates: int = 1000, seed: int = 0, confidence: float = 0.95) -> Dict[str, Dict[str, list]]:
    """FROC sensitivity of ``tables`` minus that of ``baseline`` (the same scans, in the same order, scored or
    marked another way), overall and per level: ``[difference on all scans, low, high]`` of a percentile bootstrap
    interval, each replicate drawing the same scans for both (positives and negatives separately)."""
    if [t.name for t in tables] != [t.name for t in baseline]:
        raise ValueError("paired_difference needs the same scans in the same order")
    names = [""] + list(LEVELS)
    arms = [[(_detections([t])[1], [_detections([t], lv)[0] for lv in names]) for t in arm]
            for arm in (tables, baseline)]
    groups = [np.flatnonzero([t.positive for t in tables]), np.flatnonzero([not t.positive for t in tables])]
    rng = np.random.default_rng(seed)
    draws = [np.arange(len(tables))] + [np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups
                                                        if len(g)]) for _ in range(replicates)]
    values = {name: {r: [] for r in rates} for name in names}
    for pick in draws:
        found = []
        for per_scan in arms:
            fps = np.concatenate([per_scan[i][0] for i in pick])
            thresholds = {r: _threshold_at(fps, len(pick), r) for r in rates}
            best = [np.concatenate([per_scan[i][1][k] for i in pick]) for k in range(len(names))]
            found.append({(k, r): _sensitivity(best[k], thresholds[r]) for k in range(len(names)) if len(best[k])
                          for r in rates})
        for (k, r), value in found[0].items():
            values[names[k]][r].append(value - found[1][(k, r)])
    tail = 100.0 * (1.0 - confidence) / 2.0
    return {name or "overall": {f"sensitivity_at_{r:g}fp": [round(float(v[0]), 4),
                                                             round(float(np.percentile(v[1:], tail)), 4),
                                                             round(float(np.percentile(v[1:], 100.0 - tail)), 4)]
                                for r, v in values[name].items() if len(v) > 1}
            for name in names}
