"""Dense lung bridged across slices: a consolidation lying between aerated lung above and below it.

A consolidation against the mediastinum or the spine over several slices has no aerated edge in those slices from
which the chest-wall rays could measure, and is too wide for the enclosure test. Along the cranio-caudal axis,
though, the same columns are aerated lung above and below it. Fat-free, bone-free tissue filling a column between
this lung's voxels over at most MAX_GAP_MM is lung, when it forms a piece of at least MIN_PIECE_MM2 in its slice
(partial-volume rims along the heart and the dome are thin lines, not pieces) and lies outside the hilar zone
(the hilar vessels have lung above and below them too).
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from lungai.arrays import bounding_box
from lungai.labels import LEFT_LUNG, RIGHT_LUNG
from lungai.lung.dome import soft_tissue
from lungai.lung.morphology import large_pieces

MAX_GAP_MM = 70.0      # longest column of dense tissue bridged between aerated lung above and below
MIN_PIECE_MM2 = 80.0   # smallest bridged piece kept in a slice


def _reached(lung: np.ndarray, passable: np.ndarray) -> np.ndarray:
    """Length of the passable run each voxel lies in, counted from lung below it (0 where lung is not reached
    from below through passable voxels only)."""
    run = np.zeros(lung.shape, dtype=np.int16)
    for z in range(1, lung.shape[0]):
        reach = passable[z] & (lung[z - 1] | (run[z - 1] > 0))
        run[z] = np.where(reach, run[z - 1] + 1, 0)
    return run


def bridge_across_slices(labels: np.ndarray, hu: np.ndarray, body: np.ndarray, spacing: Tuple[float, float, float],
                         hilum: Optional[np.ndarray] = None) -> np.ndarray:
    """Labels ([S, P, L], index 0 inferior) with dense tissue between a lung's slices added (module docstring)."""
    out = labels.copy()
    max_gap = int(MAX_GAP_MM // spacing[0])
    if max_gap < 1 or not (labels > 0).any():
        return out
    box = bounding_box((labels == RIGHT_LUNG) | (labels == LEFT_LUNG), margin=1)
    sub, sub_hu = out[box], hu[box]
    passable = soft_tissue(sub_hu) & body[box] & (sub == 0)
    if hilum is not None:
        passable &= ~hilum[box]
    area = spacing[1] * spacing[2]
    for side in (RIGHT_LUNG, LEFT_LUNG):
        lung = sub == side
        if not lung.any():
            continue
        free = passable & (sub == 0)
        from_below = _reached(lung, free)
        from_above = _reached(lung[::-1], free[::-1])[::-1]
        gap = (from_below > 0) & (from_above > 0) & (from_below + from_above - 1 <= max_gap)
        for z in np.flatnonzero(gap.any(axis=(1, 2))):
            sub[z][large_pieces(gap[z], area, MIN_PIECE_MM2)] = side
    return out
