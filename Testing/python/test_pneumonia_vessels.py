"""Vessel tree rebuilding (tube zone, axis continuation, block averages) and organ tops left out of the lung fill,
on hand-made arrays with answers counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

from lungai.image import Image
from lungai.pneumonia import regions_from_labels
from lungai.pneumonia.vessels import bin_average, continues_along_axis, tube_zone


def _points_within(shape, centre, reach_mm, spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij"), axis=-1)
    return np.linalg.norm(grid - np.asarray(centre, float) * np.asarray(spacing), axis=-1) <= reach_mm + 1e-9


def test_tube_zone_is_a_ball_of_radius_plus_shell_per_centre():
    shape = (21, 21, 41)
    centres = np.zeros(shape, dtype=bool)
    radius = np.zeros(shape, dtype=np.float32)
    centres[10, 10, 10], radius[10, 10, 10] = True, 2.0   # reach 2 * 1.5 + 1 = 4 mm
    centres[10, 10, 30], radius[10, 10, 30] = True, 5.0   # other radius group: reach 5 * 1.5 + 1 = 8.5 mm
    zone = tube_zone(centres, radius, (1.0, 1.0, 1.0), shell_fraction=0.5, margin_mm=1.0, bin_edges_mm=(3.0,))
    expected = _points_within(shape, (10, 10, 10), 4.0) | _points_within(shape, (10, 10, 30), 8.5)
    assert np.array_equal(zone, expected)
    # 257 lattice points lie within 4 of a lattice point (hand count of x^2 + y^2 + z^2 <= 16)
    assert np.count_nonzero(_points_within(shape, (10, 10, 10), 4.0)) == 257


def test_a_rod_goes_on_along_its_axis_a_ball_does_not():
    dense = np.zeros((15, 15, 40), dtype=bool)
    k, j, i = np.mgrid[0:15, 0:15, 0:40]
    dense |= ((k - 7) ** 2 + (j - 7) ** 2 <= 4) & (i < 20)  # rod of radius 2 along i, ending at i = 19
    dense |= (k - 7) ** 2 + (j - 7) ** 2 + (i - 31) ** 2 <= 9  # ball of radius 3
    centres = np.zeros_like(dense)
    centres[7, 7, 10] = centres[7, 7, 18] = centres[7, 7, 31] = True
    axes = np.zeros(dense.shape + (3,), dtype=np.float32)
    axes[..., 2] = 1.0
    radius = np.where(centres, 2.0, 0.0).astype(np.float32)
    radius[7, 7, 31] = 3.0
    kept = continues_along_axis(centres, axes, radius, dense, (1.0, 1.0, 1.0))
    # 1.5 radii + 1 voxel along the axis: from i = 10 both sides are rod; from i = 18 (the rod's end) one side is;
    # from the ball's centre both points (i = 25.5 and 36.5 -> 26 and 36) lie outside the ball
    assert kept[7, 7, 10] and kept[7, 7, 18] and not kept[7, 7, 31]


def test_bin_average_of_masks_and_values():
    mask = np.zeros((4, 6, 5), dtype=bool)
    mask[:2, :3, :2] = True
    coarse = bin_average(mask, (2, 3, 2))
    assert coarse.shape == (2, 2, 3)
    assert coarse[0, 0, 0] == 1.0 and coarse[1, 1, 1] == 0.0
    # the last block along i is padded by repeating the edge column (i = 4): mean of a 2x3x2 block of zeros
    values = np.arange(4 * 6 * 5, dtype=np.float32).reshape(4, 6, 5)
    assert bin_average(values, (2, 3, 2))[0, 0, 0] == pytest.approx(np.mean(values[:2, :3, :2]))
    assert bin_average(values, (2, 3, 2))[0, 0, 2] == pytest.approx(np.mean(values[:2, :3, 4]))


def _dome_ct(dome_hu: float):
    """A lung (-860 HU) over a tissue dome (40 HU) whose apex, on slice 5, is a hole of ``dome_hu`` in the lung
    mask; a vessel hole on slice 12 lies over lung. Axial slices along k, k up is superior."""
    shape = (20, 40, 40)
    ct = np.full(shape, -860.0, dtype=np.float32)
    lungs = np.ones(shape, dtype=np.uint8)
    ct[:5], lungs[:5] = 40.0, 0  # liver below slice 5
    _, j, i = np.mgrid[0:20, 0:40, 0:40]
    apex = ((j - 20) ** 2 + (i - 20) ** 2 <= 36)[0]  # 113 pixels of 1 mm^2
    ct[5][apex], lungs[5][apex] = dome_hu, 0
    vessel = ((j - 20) ** 2 + (i - 20) ** 2 <= 4)[0]
    ct[12][vessel], lungs[12][vessel] = 40.0, 0
    lungs[:, :2] = lungs[:, -2:] = lungs[:, :, :2] = lungs[:, :, -2:] = 0  # chest wall around the lung
    return Image.from_array(ct, spacing=(1.0, 1.0, 2.0)), lungs, apex, vessel


def test_partial_volume_organ_top_is_not_filled_into_the_lung():
    image, lungs, apex, vessel = _dome_ct(-450.0)
    regions = regions_from_labels(image, lungs, zones=lungs.copy())
    assert np.array_equal(regions.organ_tops[5], apex)
    assert not regions.lung_mask[5][apex].any()
    assert regions.lung_mask[12][vessel].all()  # a vessel over lung is filled as before


def test_dense_hole_on_tissue_is_filled_as_consolidation():
    image, lungs, apex, _ = _dome_ct(20.0)
    regions = regions_from_labels(image, lungs, zones=lungs.copy())
    assert not regions.organ_tops.any()
    assert regions.lung_mask[5][apex].all()
