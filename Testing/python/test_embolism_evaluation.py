"""Evaluation metrics and the Qanadli index against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from lungai.embolism.evaluation import (CaseTable, average_precision, case_table, dice, froc, froc_interval,
                                        operating_point, roc_auc, summary)
from lungai.embolism.qanadli import qanadli_index


def _table(scores, hit, truth_levels, iou=None, iou_id=None, voxels=None, inside=None, truth_voxels=0):
    n = len(scores)
    return CaseTable("c", np.asarray(scores, float), np.asarray(hit, int),
                     np.asarray(iou if iou is not None else [0.0] * n), np.asarray(iou_id or [0] * n, int),
                     np.asarray(voxels or [1] * n), np.asarray(inside or [0] * n), truth_levels, truth_voxels)


def test_case_table_matches_by_overlap_with_one_voxel_tolerance():
    truth = np.zeros((5, 10, 10), np.uint8)
    truth[2, 2:4, 2:4] = 1          # 4 voxels
    truth[2, 7, 7] = 2              # 1 voxel
    cands = np.zeros_like(truth, dtype=np.int32)
    cands[2, 2:4, 2:3] = 1          # 2 voxels inside embolus 1: IoU 0.5
    cands[2, 7, 8] = 2              # touches embolus 2 only through the tolerance
    cands[0, 0, 0] = 3              # false positive
    t = case_table("x", cands, np.array([0.9, 0.8, 0.7]), truth,
                   [{"id": 1, "level": "lobar"}, {"id": 2, "level": "subsegmental"}])
    assert t.hit.tolist() == [1, 2, 0]
    assert t.iou[0] == pytest.approx(0.5)
    assert t.iou_id[0] == 1 and t.iou[1] == 0.0
    assert t.inside_truth.tolist() == [2, 0, 0]
    assert t.truth_voxels == 5
    assert t.covers.tolist() == [[True, False], [False, True], [False, False]]


def test_one_candidate_reaching_two_emboli_detects_both():
    """A main-artery clot that continues into a lobar occlusion is one candidate: it finds both emboli."""
    truth = np.zeros((5, 12, 12), np.uint8)
    truth[2, 2:5, 2:5] = 1          # 9 voxels (main)
    truth[2, 5:9, 2:5] = 2          # 12 voxels, touching embolus 1 (lobar)
    cands = np.zeros_like(truth, dtype=np.int32)
    cands[2, 3:8, 3] = 1            # reaches both, more of embolus 2
    cands[0, 0, 0] = 2              # false positive
    records = [{"id": 1, "level": "main"}, {"id": 2, "level": "lobar"}]
    t = case_table("x", cands, np.array([0.9, 0.4]), truth, records)
    assert t.hit.tolist() == [2, 0]  # the primary match (training label) is the larger overlap
    f = froc([t], rates=(1,))
    assert f["sensitivity_at_1fp"] == pytest.approx(1.0) and f["emboli"] == 2
    assert froc([t], rates=(1,), level="main")["sensitivity_at_1fp"] == pytest.approx(1.0)
    assert operating_point([t], 0.5) == {"threshold": 0.5, "sensitivity": 1.0, "fp_per_scan": 0.0}


def test_touching_emboli_each_keep_their_one_voxel_margin():
    """Two touching emboli: a candidate where the grown margins of both overlap reaches both (a label-max
    dilation would give that voxel to the higher-numbered embolus only)."""
    truth = np.zeros((3, 8, 8), np.uint8)
    truth[1, 2, 2:6] = 1
    truth[1, 3, 2:6] = 2
    cands = np.zeros_like(truth, dtype=np.int32)
    cands[0, 2, 3] = 1              # the slice above embolus 1, diagonal to embolus 2: within one voxel of both
    cands[1, 1, 4] = 2              # beside embolus 1 only
    t = case_table("x", cands, np.array([0.9, 0.8]), truth, [{"id": 1, "level": "segmental"},
                                                              {"id": 2, "level": "segmental"}])
    assert t.covers.tolist() == [[True, True], [True, False]]
    assert t.hit.tolist() == [1, 1]


def test_froc_counts_duplicates_once_and_reads_sensitivity_at_fp_rates():
    # scan 1: embolus 1 found at 0.9 (and again at 0.3), embolus 2 at 0.5; FPs at 0.8 and 0.2
    a = _table([0.9, 0.3, 0.5, 0.8, 0.2], [1, 1, 2, 0, 0], {1: "lobar", 2: "segmental"})
    # scan 2 (negative): FPs at 0.6 and 0.1
    b = _table([0.6, 0.1], [0, 0], {})
    f = froc([a, b], rates=(0.5, 1, 2))
    # 1 FP allowed over 2 scans: threshold above 0.6 -> only embolus 1 (0.9)
    assert f["sensitivity_at_0.5fp"] == pytest.approx(0.5)
    # 2 FPs allowed: above 0.2 (third FP) -> 0.9 and 0.5 both count
    assert f["sensitivity_at_1fp"] == pytest.approx(1.0)
    assert f["sensitivity_at_2fp"] == pytest.approx(1.0)
    assert froc([a, b], rates=(1,), level="segmental")["sensitivity_at_1fp"] == pytest.approx(1.0)
    assert froc([a, b], rates=(0.5,), level="segmental")["sensitivity_at_0.5fp"] == pytest.approx(0.0)
    op = operating_point([a, b], 0.55)
    assert op["sensitivity"] == pytest.approx(0.5) and op["fp_per_scan"] == pytest.approx(1.0)


def test_missed_embolus_never_counts_as_found():
    a = _table([], [], {1: "main"})
    assert froc([a], rates=(4,))["sensitivity_at_4fp"] == 0.0


def test_froc_interval_bootstraps_scans_and_keeps_the_negative_scans():
    """Scan A finds its main embolus, scan B's subsegmental embolus has no candidate, the negative scan holds one
    false positive above everything. Replicates draw {A, A}, {A, B} or {B, B} with the negative scan: overall
    sensitivity 1, 0.5 or 0 (a quarter of the replicates each at the ends), main always 1, subsegmental always 0;
    the one false positive of the negative scan never exceeds the allowance of 1 per scan."""
    a = _table([0.3], [1], {1: "main"})
    b = _table([], [], {1: "subsegmental"})
    negative = _table([0.95], [0], {})
    interval = froc_interval([a, b, negative], rates=(1,), replicates=400)
    assert interval["overall"]["sensitivity_at_1fp"] == [0.0, 1.0]
    assert interval["main"]["sensitivity_at_1fp"] == [1.0, 1.0]
    assert interval["subsegmental"]["sensitivity_at_1fp"] == [0.0, 0.0]
    assert interval["lobar"] == {}  # no lobar embolus in any replicate
    # identical positive scans: no spread; at 0.5 FP/scan one false positive is allowed over 3 scans, so the one
    # at 0.95 sets no threshold and the embolus at 0.3 counts
    tight = froc_interval([a, a, negative], rates=(0.5,), replicates=50)
    assert tight["overall"]["sensitivity_at_0.5fp"] == [1.0, 1.0]


def test_roc_auc_hand_values():
    assert roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.3, 0.1]) == 1.0
    assert roc_auc([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1]) == pytest.approx(0.75)
    assert roc_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)


def test_average_precision_and_dice():
    # two emboli; detections by score: TP (IoU .8), FP, TP (IoU .6)
    t = _table([0.9, 0.8, 0.7], [1, 0, 2], {1: "lobar", 2: "segmental"}, iou=[0.8, 0.0, 0.6], iou_id=[1, 0, 2],
               voxels=[10, 4, 6], inside=[8, 0, 4], truth_voxels=20)
    # precision envelope: recall .5 at precision 1, recall 1 at precision 2/3
    expected = (51 * 1.0 + 50 * (2 / 3)) / 101
    assert average_precision([t], 0.5) == pytest.approx(expected)
    assert average_precision([t], 0.75) == pytest.approx(51 / 101)
    d = dice([t], 0.85)  # accepted: first candidate only
    assert d["dice_mean_positive_scans"] == pytest.approx(2 * 8 / (10 + 20), abs=1e-4)
    s = summary([t, _table([0.2], [0], {})], 0.5)
    assert s["scan_auc"] == 1.0 and s["positive_scans"] == 1


def test_qanadli_hand_values():
    bif = [0.0, 0.0, 0.0]
    saddle = qanadli_index([dict(level="main", side="right", occlusive=False, position_lps=[2, 0, 0])], bif)
    assert saddle["index_percent"] == 50.0 and saddle["obstructed_segmental_arteries"] == 20
    lobar = qanadli_index([dict(level="lobar", side="left", occlusive=True, position_lps=[60, 10, -50])], bif)
    assert lobar["score"] == 10 and lobar["per_lobe"]["left_lower"] == 10 and lobar["index_percent"] == 25.0
    two = qanadli_index([dict(level="segmental", side="right", occlusive=True, position_lps=[-60, 20, -60]),
                         dict(level="subsegmental", side="right", occlusive=True, position_lps=[-60, 20, -60])],
                        bif)
    assert two["score"] == 3  # occluded segmental (2) + subsegmental as partial segmental (1)
    right_middle = qanadli_index([dict(level="lobar", side="right", occlusive=False,
                                       position_lps=[-50, -30, -40])], bif)
    assert right_middle["per_lobe"]["right_middle"] == 2
    assert qanadli_index([], bif)["index_percent"] == 0.0
