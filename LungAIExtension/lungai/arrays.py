"""Array helpers shared by the lung, pneumonia and embolism pipelines."""

from __future__ import annotations

from typing import Tuple

import numpy as np


def bounding_box(mask: np.ndarray, margin: int = 0) -> Tuple[slice, ...]:
    """Slices of the smallest box holding ``mask`` grown by ``margin`` voxels and clipped to the grid (any number
    of dimensions); the whole grid when ``mask`` is empty."""
    if not mask.any():
        return tuple(slice(0, n) for n in mask.shape)
    box = []
    for axis, n in enumerate(mask.shape):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(0, int(present[0]) - margin), min(n, int(present[-1]) + 1 + margin)))
    return tuple(box)


def nearest_along(mask: np.ndarray, axis: int) -> Tuple[np.ndarray, np.ndarray]:
    """Per voxel, the index along ``axis`` of the nearest ``mask`` voxel at or before it (-1 where none) and at or
    after it (the axis length where none)."""
    n = mask.shape[axis]
    index = np.arange(n).reshape([-1 if a == axis else 1 for a in range(mask.ndim)])
    before = np.maximum.accumulate(np.where(mask, index, -1), axis=axis)
    after = np.flip(np.minimum.accumulate(np.flip(np.where(mask, index, n), axis=axis), axis=axis), axis=axis)
    return before, after
