"""Lobar consolidation: a hemithorax whose lung lost its air, outlined by the mirrored contralateral lung.

A whole consolidated lobe leaves slices in which one side holds little or no aerated lung (only air bronchograms),
so neither the chest-wall rays (no aerated edge to measure from) nor the enclosure test (no lung around it) see
it. The two hemithoraces are nearly mirror images, though: in such a slice the left lung, mirrored at the midline,
outlines where the right lung lies. Fat-free, bone-free soft tissue inside that outline, towards the lateral and
posterior chest wall (never its mediastinal side), above the right dome and joined to the right lung, is the
consolidated lobe. The left lung is not outlined this way: the heart fills the medial left hemithorax, which the
mirrored right lung covers.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
from scipy import ndimage

from lungai.labels import LEFT_LUNG, RIGHT_LUNG
from lungai.lung.dome import joint_domes, recess_columns, soft_tissue
from lungai.lung.morphology import label

MAX_OWN_FRACTION = 0.5       # the right lung is consolidated in a slice when it covers less than this of the mirror
MIN_MIRROR_MM2 = 600.0       # the mirrored lung must be this large in the slice
MARGIN_MM = 2.5              # the mirrored outline is shrunk by this (the hemithoraces are not exact mirrors)
ANTERIOR_LIMIT_DEG = 90.0    # columns within these angles from the lateral direction, seen from the mirrored
POSTERIOR_LIMIT_DEG = 135.0  # outline's centre, are taken (never the mediastinal side)


def mirrored_consolidation(labels: np.ndarray, hu: np.ndarray, body: np.ndarray,
                           spacing: Tuple[float, float, float]) -> np.ndarray:
    """Labels ([S, P, L]) with consolidated right lung inside the mirrored left lung added (module docstring)."""
    right, left = labels == RIGHT_LUNG, labels == LEFT_LUNG
    if not right.any() or not left.any():
        return labels
    columns = np.arange(labels.shape[2])
    midline = 0.5 * (columns[right.any(axis=(0, 1))].min() + columns[left.any(axis=(0, 1))].max())
    source = np.rint(2 * midline - columns).astype(int)
    valid = (source >= 0) & (source < labels.shape[2])
    area = spacing[1] * spacing[2]
    margin = max(1, int(round(MARGIN_MM / min(spacing[1:]))))
    add = np.zeros_like(right)
    for z in range(labels.shape[0]):
        mirror = np.zeros_like(right[z])
        mirror[:, valid] = left[z][:, source[valid]]
        mirror_area = mirror.sum() * area
        if mirror_area < MIN_MIRROR_MM2 or right[z].sum() * area >= MAX_OWN_FRACTION * mirror_area:
            continue
        mirror = ndimage.binary_erosion(mirror, iterations=margin)
        if mirror.any():
            toward_chest_wall = recess_columns(mirror, RIGHT_LUNG, spacing[1:], ANTERIOR_LIMIT_DEG,
                                               POSTERIOR_LIMIT_DEG)
            add[z] = mirror & toward_chest_wall & soft_tissue(hu[z]) & body[z] & (labels[z] == 0)
    if not add.any():
        return labels
    domes = joint_domes(labels, hu, spacing)
    if domes is None:
        return labels
    add &= np.arange(labels.shape[0])[:, None, None] >= domes[RIGHT_LUNG][None]
    pieces, n = label(add | right)
    joined = np.zeros(n + 1, dtype=bool)
    joined[np.unique(pieces[right])] = True
    joined[0] = False
    out = labels.copy()
    out[add & joined[pieces]] = RIGHT_LUNG
    return out
