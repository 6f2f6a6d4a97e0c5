"""Pneumonia quantification on a tiny hand-built volume whose answers are computed by hand.

Grid 20 x 20 x 10 voxels (i, j, k), spacing 1 x 1 x 2 mm (2 mm^3 = 0.002 ml per voxel), identity direction:
i runs to the patient's left, j posterior, k superior. Right lung i < 10, left lung i >= 10 (2000 voxels = 4 ml
each). Lobes: upper k >= 5, lower k < 5. Lesions:

* A ground glass (-500 HU), right lung, k 2..5, j 2..5, i 2..5: 64 voxels (k 5 in the upper lobe, 16 voxels)
* B consolidation (0 HU), left lung, k 6..7, j 10..12, i 12..14: 18 voxels
* D consolidation (-100 HU), left lung, k 0..3, j 0..9, i 10..19: 400 voxels
* C one ground-glass voxel at (i 0, j 19, k 9), -1024 HU: below any minimum size
Everything else is lung at -850 HU.
"""

from __future__ import annotations

import numpy as np
import pytest

from lungai.image import Image
from lungai.pneumonia import (find_lesions, lung_histograms, measure_involvement, patient_call,
                              regions_from_labels, severity_points)
from lungai.pneumonia.regions import PatientAxes

SHAPE = (10, 20, 20)  # k, j, i


@pytest.fixture(scope="module")
def case():
    ct = np.full(SHAPE, -850.0, dtype=np.float32)
    labels = np.zeros(SHAPE, dtype=np.uint8)
    lungs = np.zeros(SHAPE, dtype=np.uint8)
    lungs[:, :, :10] = 1
    lungs[:, :, 10:] = 2
    lobes = np.zeros(SHAPE, dtype=np.uint8)
    lobes[5:, :, :10], lobes[:5, :, :10], lobes[5:, :, 10:], lobes[:5, :, 10:] = 1, 3, 4, 5
    labels[2:6, 2:6, 2:6], ct[2:6, 2:6, 2:6] = 1, -500     # A
    labels[6:8, 10:13, 12:15], ct[6:8, 10:13, 12:15] = 2, 0  # B
    labels[0:4, 0:10, 10:20], ct[0:4, 0:10, 10:20] = 2, -100  # D
    labels[9, 19, 0], ct[9, 19, 0] = 1, -1024               # C
    image = Image.from_array(ct, spacing=(1.0, 1.0, 2.0))
    regions = regions_from_labels(image, lungs, zones=np.where(lungs > 0, lungs, 0), lobes=lobes, fill=False)
    return image, labels, regions


def test_lesion_instances_and_measurements(case):
    image, labels, regions = case
    lesions, instances, kept = find_lesions(image, labels, regions, min_size_mm=2.0)
    assert [les.voxels for les in lesions] == [400, 64, 18]
    d, a, b = lesions
    assert d.volume_ml == pytest.approx(0.8) and a.volume_ml == pytest.approx(0.128) and b.volume_ml == pytest.approx(0.036)
    assert (d.type, d.side, d.lobe) == ("consolidation", "left", "left_lower_lobe")
    assert (a.type, a.side, a.lobe) == ("ground_glass", "right", "right_lower_lobe")  # 48 of 64 voxels lower lobe
    assert d.mean_hu == pytest.approx(-100.0) and a.mean_hu == pytest.approx(-500.0)
    assert d.largest_diameter_mm == pytest.approx(np.sqrt(6 ** 2 + 9 ** 2 + 9 ** 2), abs=1e-6)
    assert d.centroid_ijk == pytest.approx((14.5, 4.5, 1.5))
    assert d.equivalent_diameter_mm == pytest.approx((6 * 800 / np.pi) ** (1 / 3))
    # the one-voxel lesion C (equivalent diameter 1.56 mm) is gone from the label map, the others stay
    assert kept[9, 19, 0] == 0 and np.count_nonzero(kept) == 482
    assert set(np.unique(instances).tolist()) == {0, 1, 2, 3} and np.count_nonzero(instances == 2) == 64
    with_c, _, _ = find_lesions(image, labels, regions, min_size_mm=0.0)
    assert len(with_c) == 4


def test_involvement_and_lobar_severity(case):
    image, labels, regions = case
    _, _, kept = find_lesions(image, labels, regions, min_size_mm=2.0)
    inv = measure_involvement(kept, regions, image.voxel_volume_ml)
    both, right, left = inv.lungs
    assert both.volume_ml == pytest.approx(8.0) and right.volume_ml == pytest.approx(4.0)
    assert right.percent_ground_glass == pytest.approx(3.2) and right.percent_consolidation == 0
    assert left.percent_consolidation == pytest.approx(20.9)
    assert inv.percent_opacity == pytest.approx(12.05) and inv.percent_high_opacity == pytest.approx(10.45)
    assert inv.severity_basis == "lobes"
    assert inv.severity_scores == {"right_upper_lobe": 1, "right_lower_lobe": 1, "left_upper_lobe": 1,
                                   "left_lower_lobe": 3}
    assert inv.severity_total == 6 and inv.severity_max == 25
    lobes = {r.region: r for r in inv.lobes}
    assert lobes["left_lower_lobe"].percent_involved == pytest.approx(40.0)


def test_zone_based_severity_without_lobes(case):
    image, labels, regions = case
    no_lobes = regions_from_labels(image, regions.lungs, fill=False)
    inv = measure_involvement(np.where(labels > 0, labels, 0), no_lobes, image.voxel_volume_ml)
    assert inv.severity_basis == "zones" and inv.severity_max == 30 and len(inv.severity_scores) == 6
    assert inv.to_dict()["severity"]["basis"] == "zones"


@pytest.mark.parametrize("percent,points", [(0, 0), (0.01, 1), (4.99, 1), (5, 2), (24.9, 2), (25, 3), (49.9, 3),
                                            (50, 4), (74.9, 4), (75, 5), (100, 5)])
def test_severity_bands(percent, points):
    assert severity_points(percent) == points


def test_density_histograms_and_indices(case):
    image, _, regions = case
    hist = lung_histograms(image.array, regions, image.voxel_volume_ml)
    assert len(hist.edges) == 121 and hist.edges[0] == -1000 and hist.edges[-1] == 200
    right = hist.counts["right lung"]
    assert right.sum() == 2000 and right[0] == 1 and right[15] == 1935 and right[50] == 64
    left = hist.counts["left lung"]
    assert left[100] == 18 and left[90] == 400 and left[15] == 1582
    assert hist.percent("right lung")[15] == pytest.approx(96.75)
    idx = hist.indices["right lung"]
    assert idx["laa950"] == pytest.approx(0.05) and idx["perc15"] == pytest.approx(-850.0)
    assert idx["mld"] == pytest.approx((-1024 - 64 * 500 - 1935 * 850) / 2000)
    assert hist.indices["both lungs"]["voxels"] == 4000
    rows = hist.rows()
    assert rows[15]["hu_from"] == -850 and rows[15]["right_lung_count"] == 1935


def test_patient_call_by_quadrant(case):
    image, labels, regions = case
    _, _, kept = find_lesions(image, labels, regions, min_size_mm=2.0)
    axes = PatientAxes.of(image)
    call = patient_call(kept, regions, axes, consecutive=3)
    assert call.positive
    assert call.involved["right anterior"] == [2, 3, 4, 5]
    assert call.involved["left posterior"] == [6, 7]
    assert call.involved["left anterior"] == [0, 1, 2, 3]
    assert [(r.quadrant, r.first_slice, r.last_slice) for r in call.deciding_runs] == [
        ("left anterior", 0, 3), ("right anterior", 2, 5)]
    assert not patient_call(kept, regions, axes, consecutive=5).positive
    assert not patient_call(np.zeros_like(kept), regions, axes).positive


def test_flipped_axes_give_the_same_answers(case):
    """The same patient stored with k running feet-to-head reversed and j anterior-to-posterior reversed."""
    image, labels, regions = case
    flip = (slice(None, None, -1), slice(None, None, -1), slice(None))
    direction = np.diag([1.0, -1.0, -1.0])
    flipped = Image(image.array[flip], image.spacing, (0.0, 19.0, 18.0), direction)
    lungs = regions.lungs[flip]
    reg2 = regions_from_labels(flipped, lungs, zones=regions.zones[flip], lobes=regions.lobes[flip], fill=False)
    _, _, kept = find_lesions(flipped, labels[flip], reg2, min_size_mm=2.0)
    call = patient_call(kept, reg2, PatientAxes.of(flipped), consecutive=3)
    assert sorted(r.quadrant for r in call.deciding_runs) == ["left anterior", "right anterior"]
    inv = measure_involvement(kept, reg2, flipped.voxel_volume_ml)
    assert inv.severity_total == 6


def test_patient_call_ignores_slices_where_a_lesion_only_grazes(case):
    """A (1 mm x 1 mm pixels): 16 mm^2 per slice; at least 16 mm^2 counts, 17 mm^2 does not."""
    image, labels, regions = case
    _, _, kept = find_lesions(image, labels, regions, min_size_mm=2.0)
    axes = PatientAxes.of(image)
    spacing = tuple(reversed(image.spacing))
    assert patient_call(kept, regions, axes, 3, min_area_mm2=16.0, spacing_kji=spacing).involved[
        "right anterior"] == [2, 3, 4, 5]
    assert patient_call(kept, regions, axes, 3, min_area_mm2=17.0, spacing_kji=spacing).involved[
        "right anterior"] == []
