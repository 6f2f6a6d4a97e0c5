"""Accepted embolism candidates -> a label map for the review loop (pure Python: lungai core, no Slicer).

A reader accepts or rejects each candidate in Slicer; the accepted ones become the labels of a corrected case:
the connected emboli components that hold (or lie nearest to, within ``max_distance_mm``) each accepted
candidate's centroid, written as ``accepted-emboli.seg.nrrd`` with the decisions in ``embolism-review.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from LungAICommonLib.results import centroid_ras, confidence

STATUSES = ("pending", "accepted", "rejected")


def candidate_id(row: Mapping[str, Any], index: int) -> str:
    for key in ("id", "candidate", "candidate_id", "label"):
        if key in row and str(row[key]) != "":
            return str(row[key])
    return str(index + 1)


def _components(mask: np.ndarray) -> np.ndarray:
    import cc3d

    return cc3d.connected_components(mask.astype(np.uint8), connectivity=26)


def accepted_mask(emboli, rows: Sequence[Mapping[str, Any]], accepted: Sequence[str],
                  max_distance_mm: float = 5.0) -> Tuple[np.ndarray, List[str]]:
    """Boolean mask (on the emboli grid) of the components belonging to the accepted candidates, and the ids
    of accepted candidates that have no component (scored below the CLI's threshold, so never segmented)."""
    components = _components(np.asarray(emboli.array) > 0)
    keep = np.zeros(components.shape, bool)
    without: List[str] = []
    wanted = set(accepted)
    for index, row in enumerate(rows):
        if candidate_id(row, index) not in wanted:
            continue
        ras = centroid_ras(row)
        if ras is None:
            raise ValueError(f"candidate {candidate_id(row, index)} has no centroid to match to the emboli mask")
        lps = [-ras[0], -ras[1], ras[2]]
        ijk = np.rint(emboli.lps_to_index(lps)).astype(int)
        kji = tuple(int(v) for v in ijk[::-1])
        inside = all(0 <= v < n for v, n in zip(kji, components.shape))
        component = int(components[kji]) if inside else 0
        if component == 0:
            component = _nearest_component(emboli, components, lps, max_distance_mm)
        if component:
            keep |= components == component
        else:
            without.append(candidate_id(row, index))
    return keep, without


def _nearest_component(emboli, components: np.ndarray, lps: Sequence[float], max_distance_mm: float) -> int:
    points = np.argwhere(components > 0)  # k, j, i
    if len(points) == 0:
        return 0
    matrix = emboli.index_to_lps_matrix()
    xyz = points[:, ::-1] @ matrix[:3, :3].T + matrix[:3, 3]
    distances = np.linalg.norm(xyz - np.asarray(lps, float), axis=1)
    nearest = int(np.argmin(distances))
    if distances[nearest] > max_distance_mm:
        return 0
    return int(components[tuple(points[nearest])])


def save_accepted(emboli_path: Path, rows: Sequence[Mapping[str, Any]], statuses: Mapping[str, str],
                  folder: Path, reviewer: str = "", max_distance_mm: float = 5.0) -> Dict[str, Any]:
    """Write ``accepted-emboli.seg.nrrd`` and ``embolism-review.json`` into ``folder``; returns their paths
    (``accepted_emboli``, ``review``) and the accepted ids without a mask (``without_mask``)."""
    from lungai.io import Segment, read_segmentation, write_json, write_segmentation

    unknown = {s for s in statuses.values() if s not in STATUSES}
    if unknown:
        raise ValueError(f"unknown review status {sorted(unknown)}; use {STATUSES}")
    emboli, _ = read_segmentation(emboli_path)
    accepted = [cid for cid, status in statuses.items() if status == "accepted"]
    mask, without = accepted_mask(emboli, rows, accepted, max_distance_mm)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    labels = emboli.like(mask.astype(np.uint8))
    seg_path = write_segmentation(labels, [Segment.from_structure(1, "embolus")], folder / "accepted-emboli.seg.nrrd")
    decisions: List[Dict[str, Any]] = []
    for index, row in enumerate(rows):
        cid = candidate_id(row, index)
        value = confidence(row)
        decisions.append({"id": cid, "status": statuses.get(cid, "pending"),
                          "confidence": None if np.isnan(value) else value, "centroid_ras": centroid_ras(row)})
    review = {"source": str(emboli_path), "reviewer": reviewer, "accepted": len(accepted),
              "accepted_volume_ml": float(mask.sum() * emboli.voxel_volume_ml), "accepted_without_mask": without,
              "candidates": decisions}
    json_path = write_json(review, folder / "embolism-review.json")
    return {"accepted_emboli": seg_path, "review": json_path, "without_mask": without}


def load_statuses(review_json: Path) -> Optional[Dict[str, str]]:
    """Decisions saved earlier for this case (to resume a review), or None."""
    if not Path(review_json).is_file():
        return None
    data = json.loads(Path(review_json).read_text(encoding="utf-8"))
    return {str(c["id"]): str(c.get("status", "pending")) for c in data.get("candidates", [])}
