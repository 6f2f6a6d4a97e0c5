"""Shared array helpers: bounding boxes and nearest mask voxels against hand-computed answers."""

import numpy as np

from lungai.arrays import bounding_box, nearest_along


def test_box_of_a_3d_mask_with_margin_clipped_to_the_grid():
    mask = np.zeros((5, 6, 7), dtype=bool)
    mask[1, 2, 3] = mask[2, 4, 6] = True
    assert bounding_box(mask) == (slice(1, 3), slice(2, 5), slice(3, 7))
    # margin 2: the first axis grows to 0..5, the last is clipped at 7
    assert bounding_box(mask, margin=2) == (slice(0, 5), slice(0, 6), slice(1, 7))


def test_box_of_a_slice_and_of_an_empty_mask():
    mask = np.zeros((4, 4), dtype=bool)
    assert bounding_box(mask, margin=1) == (slice(0, 4), slice(0, 4))  # empty: the whole grid
    mask[3, 0] = True
    assert bounding_box(mask, margin=1) == (slice(2, 4), slice(0, 2))


def test_nearest_along_hand_values():
    mask = np.array([[0, 1, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0]], dtype=bool)
    before, after = nearest_along(mask, axis=1)
    assert before[0].tolist() == [-1, 1, 1, 1, 4, 4] and after[0].tolist() == [1, 1, 4, 4, 4, 6]
    assert before[1].tolist() == [-1] * 6 and after[1].tolist() == [6] * 6
    before, after = nearest_along(mask, axis=0)
    assert before[:, 1].tolist() == [0, 0] and after[:, 1].tolist() == [0, 2]
