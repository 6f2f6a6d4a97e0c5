"""Merged marks: candidates within a few mm are one finding, counted once (hand-computed geometry)."""

from __future__ import annotations

import numpy as np

from lungai.embolism.candidates import FEATURES, Candidates
from lungai.embolism.evaluation import froc
from lungai.embolism.marks import candidate_gaps, merge_candidates, merge_groups
from lungai.embolism.training import merged_table

SPACING = (2.0, 1.6, 1.6)  # canonical [S, P, L] mm of the coarse working grid


def _labels() -> np.ndarray:
    """Three pieces in a row along L (gaps of 2 and 3 voxels: 3.2 and 4.8 mm) and one far away."""
    labels = np.zeros((10, 10, 30), np.int32)
    labels[4:6, 4:6, 2:4] = 1      # L 2..3
    labels[4:6, 4:6, 6:8] = 2      # L 6..7: 3 voxels after piece 1 -> 3 * 1.6 = 4.8 mm
    labels[4:6, 4:6, 10:11] = 3    # L 10: 3 voxels after piece 2 -> 4.8 mm
    labels[4, 4, 25] = 4           # 14 voxels away: 22.4 mm
    labels[8, 4, 7] = 5            # 3 slices under piece 2 (S 5 -> 8): 6.0 mm
    return labels


def test_gaps_are_the_distance_between_nearest_voxel_centres():
    gaps = {(int(i), int(j)): round(d, 3) for i, j, d in candidate_gaps(_labels(), SPACING, reach_mm=8.0)}
    assert gaps[(1, 2)] == 4.8 and gaps[(2, 3)] == 4.8 and gaps[(2, 5)] == 6.0
    assert (1, 4) not in gaps and (3, 4) not in gaps  # beyond the reach
    assert gaps[(3, 5)] == round(float(np.hypot(6.0, 3 * 1.6)), 3)


def test_groups_chain_pieces_within_the_merge_distance():
    gaps = candidate_gaps(_labels(), SPACING, reach_mm=8.0)
    assert list(merge_groups(5, gaps, 5.0)) == [0, 0, 0, 1, 2]
    assert list(merge_groups(5, gaps, 4.0)) == [0, 1, 2, 3, 4]
    assert list(merge_groups(5, gaps, 6.0)) == [0, 0, 0, 1, 0]


def test_merged_candidate_keeps_the_union_and_the_highest_confidence():
    labels = _labels()
    n = 5
    features = np.arange(n * len(FEATURES), dtype=np.float32).reshape(n, -1)
    cands = Candidates(labels=labels, features=features, centroid=np.zeros((n, 3)),
                       volume_mm3=np.bincount(labels.ravel())[1:] * 5.12, extent_mm=np.zeros(n),
                       level=["segmental", "lobar", "segmental", "subsegmental", "subsegmental"],
                       side=["left"] * n, occlusive=np.array([False, False, True, False, False]))
    probs = np.array([0.2, 0.7, 0.1, 0.05, 0.3])
    groups = merge_groups(n, candidate_gaps(labels, SPACING), 5.0)
    merged, conf = merge_candidates(cands, probs, groups, SPACING)
    assert merged.count == 3 and list(conf) == [0.7, 0.05, 0.3]
    assert merged.level[0] == "lobar" and np.array_equal(merged.features[0], features[1])  # its lead piece
    assert bool(merged.occlusive[0]) and not merged.occlusive[1]
    assert np.count_nonzero(merged.labels == 1) == 8 + 8 + 4
    assert merged.extent_mm[0] == 9 * 1.6  # L 2..10
    assert np.allclose(merged.centroid[2], [8, 4, 7])


def test_froc_counts_a_merged_mark_once():
    """Scan: embolus 1 reached by piece 2; pieces 1 and 3 are false and merge with it at 5 mm; piece 4 false."""
    n = 4
    labels = _labels()
    labels[labels == 5] = 0
    extracted = {"gaps": candidate_gaps(labels, SPACING), "covers": np.array([[False], [True], [False], [False]]),
                 "inter": np.array([[0], [8], [0], [0]]), "voxels": np.array([8, 8, 4, 1]),
                 "truth_sizes": np.array([10]), "truth_ids": np.array([1]), "truth_levels": np.array(["segmental"]),
                 "truth_voxels": 10}
    scores = np.array([0.9, 0.4, 0.8, 0.6])
    plain = merged_table("scan", extracted, scores, 0.0)   # no merging: 4 marks, 3 false
    merged = merged_table("scan", extracted, scores, 5.0)  # one mark of 0.9 hits the embolus, one false (0.6)
    assert len(plain.scores) == 4 and len(merged.scores) == 2
    assert list(merged.scores) == [0.9, 0.6] and merged.covers[:, 0].tolist() == [True, False]
    assert merged.iou[0] == 8 / (20 + 10 - 8) and merged.inside_truth[0] == 8
    strict = merged_table("scan", extracted, scores, 5.0, lead_only=True)  # the 0.9 piece itself is false
    assert list(strict.scores) == [0.9, 0.6] and not strict.covers.any()
    # at 1 FP per scan: unmerged the threshold is the 2nd false score (0.8) and the embolus (0.4) is missed
    assert froc([plain], rates=(1,))["sensitivity_at_1fp"] == 0.0
    assert froc([merged], rates=(1,))["sensitivity_at_1fp"] == 1.0
    negative = merged_table("healthy", {**extracted, "covers": np.zeros((n, 0), bool), "inter": np.zeros((n, 0)),
                                        "truth_sizes": np.zeros(0), "truth_ids": np.zeros(0, int),
                                        "truth_levels": np.zeros(0, "U16"), "truth_voxels": 0}, scores, 5.0)
    assert list(negative.scores) == [0.9, 0.6] and not negative.positive and not negative.hit.any()


def test_paired_difference_draws_the_same_scans_for_both():
    from lungai.embolism.evaluation import CaseTable, paired_difference

    def table(name, scores, covers, level="segmental"):
        covers = np.asarray(covers, bool).reshape(len(scores), -1)
        return CaseTable(name=name, scores=np.asarray(scores, float), hit=covers.any(axis=1).astype(int),
                         iou=np.zeros(len(scores)), iou_id=np.zeros(len(scores), int),
                         voxels=np.ones(len(scores), int), inside_truth=np.zeros(len(scores), int),
                         truth_levels={1: level} if covers.shape[1] else {}, covers=covers)

    negative = CaseTable(name="b", scores=np.array([0.85]), hit=np.zeros(1, int), iou=np.zeros(1),
                         iou_id=np.zeros(1, int), voxels=np.ones(1, int), inside_truth=np.zeros(1, int),
                         covers=np.zeros((1, 0), bool))
    better = [table("a", [0.9, 0.6], [[1], [0]]), negative]            # false: 0.6, 0.85 -> threshold -inf
    worse = [table("a", [0.9, 0.8, 0.4], [[0], [0], [1]]), negative]   # false: 0.9, 0.85, 0.8 -> threshold 0.8
    diff = paired_difference(better, worse, rates=(1,), replicates=50)
    # one positive scan (always drawn), one negative: found in every replicate with merged marks, never without
    assert diff["overall"]["sensitivity_at_1fp"] == [1.0, 1.0, 1.0]
    assert diff["segmental"]["sensitivity_at_1fp"][0] == 1.0 and diff["main"] == {}


def test_false_candidates_are_sorted_into_the_first_kind_that_fits():
    from lungai.embolism.false_kinds import false_kinds, report

    facts = {"scores": np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]),
             "covers": np.array([[True], [False], [False], [False], [False], [False], [False], [False]]),
             # candidate 2 lies 4 mm from the hit (1), 3 and 4 are 4.5 mm apart, the rest far from everything
             "gaps": np.array([[1, 2, 4.0], [3, 4, 4.5]]), "embolus_mm": np.array([0, 6, 20, 20, 20, 20, 20, 20.0]),
             "in_lung": np.array([1, 1, 1, 1, 0.2, 1, 1, 1.0]), "vein_shell": np.array([0, 0, 0, 0, 0, 0.5, 0, 0]),
             "fork_mm": np.array([9, 9, 9, 9, 9, 9, 1.5, 9.0]), "voxels": np.array([50, 9, 9, 9, 80, 9, 9, 3]),
             "levels": np.array(["segmental"] * 8), "truth_ids": np.array([1]), "truth_levels": np.array(["segmental"])}
    kinds = dict(false_kinds(facts))
    assert kinds == {1: "piece of a clot", 2: "piece of a false structure", 3: "piece of a false structure",
                     4: "outside the lungs", 5: "artery-vein contact", 6: "vessel fork",
                     7: "small dip in a thin vessel"}
    out = report({"scan": facts})
    # one scan: the 2 FP/scan threshold is the third false score (0.6); the embolus (0.9) is found
    assert out["threshold_2fp"] == 0.6 and out["froc"]["sensitivity_at_2fp"] == 1.0
    assert out["kinds"]["piece of a clot"]["above_threshold"] == 1
    assert out["kinds"]["piece of a false structure"]["above_threshold"] == 1  # 0.7 above, 0.6 not
    assert out["merged_marks_at_2fp"]["5 mm"]["marks_per_scan"] == 6.0
