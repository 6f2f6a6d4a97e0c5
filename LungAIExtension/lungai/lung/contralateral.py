"""Lobar consolidation: a hemithorax whose lung lost its air, outlined by the mirrored contralateral lung.

A whole consolidated lobe leaves slices in which one side holds little or no aerated lung (only air bronchograms),
so neither the chest-wall rays (no aerated edge to measure from) nor the enclosure test (no lung around it) see
it. The two hemithoraces are nearly mirror images, though: in such a slice the left lung, mirrored at the midline,
outlines where the right lung lies. Fat-free, bone-free soft tissue inside that outline, towards the lateral and
posterior chest wall (never its mediastinal side), above the right dome and joined to the right lung, is the
consolidated lobe. The left lung is outlined this way only behind the outline's centre and farther than
LEFT_SPINE_CLEARANCE_MM from the centre of the vertebral body: the heart fills the anterior and medial left
hemithorax and the descending aorta lies beside the spine, both inside the mirrored right lung (used in full, the
mirrored right lung took 180 ml of heart on a phantom with a consolidated left lower lobe).
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from scipy import ndimage

from lungai.labels import LEFT_LUNG, RIGHT_LUNG
from lungai.lung.dome import joint_domes, recess_columns, soft_tissue
from lungai.lung.morphology import label, pieces_holding
from lungai.lung.paravertebral import vertebral_centres
from lungai.lung.propagation import left_base_consolidated

MAX_OWN_FRACTION = 0.5       # the right lung is consolidated in a slice when it covers less than this of the mirror
MIN_MIRROR_MM2 = 600.0       # the mirrored lung must be this large in the slice
MARGIN_MM = 2.5              # the mirrored outline is shrunk by this (the hemithoraces are not exact mirrors)
ANTERIOR_LIMIT_DEG = 90.0    # columns within these angles from the lateral direction, seen from the mirrored
POSTERIOR_LIMIT_DEG = 135.0  # outline's centre, are taken (never the mediastinal side)
LEFT_ANTERIOR_LIMIT_DEG = 0.0  # the left lung: only behind the outline's centre (the heart lies in front) ...
LEFT_SPINE_CLEARANCE_MM = 60.0  # ... and farther than this from the vertebral body (the descending aorta)


def mirrored_consolidation(labels: np.ndarray, hu: np.ndarray, body: np.ndarray,
                           spacing: Tuple[float, float, float], centres: Optional[np.ndarray] = None) -> np.ndarray:
    """Labels ([S, P, L]) with consolidated right, then left lung inside the mirrored other lung added (module
    docstring); ``centres``: the vertebral body centres (found when not given)."""
    out = mirrored_side(labels, hu, body, spacing, RIGHT_LUNG)
    return mirrored_side(out, hu, body, spacing, LEFT_LUNG, LEFT_ANTERIOR_LIMIT_DEG, POSTERIOR_LIMIT_DEG,
                         LEFT_SPINE_CLEARANCE_MM, centres)


def mirrored_side(labels: np.ndarray, hu: np.ndarray, body: np.ndarray, spacing: Tuple[float, float, float],
                  side: int, anterior_limit_deg: float = ANTERIOR_LIMIT_DEG,
                  posterior_limit_deg: float = POSTERIOR_LIMIT_DEG, spine_clearance_mm: float = 0.0,
                  centres: Optional[np.ndarray] = None) -> np.ndarray:
    """Labels ([S, P, L]) with consolidated lung of ``side`` inside the mirrored other lung added (module
    docstring), within the given angles from the lateral direction (seen from the outline's centre) and farther
    than ``spine_clearance_mm`` from the centre of the vertebral body."""
    other = LEFT_LUNG if side == RIGHT_LUNG else RIGHT_LUNG
    this, that = labels == side, labels == other
    if not this.any() or not that.any():
        return labels
    columns = np.arange(labels.shape[2])
    right_cols = columns[(labels == RIGHT_LUNG).any(axis=(0, 1))]
    left_cols = columns[(labels == LEFT_LUNG).any(axis=(0, 1))]
    midline = 0.5 * (right_cols.min() + left_cols.max())
    source = np.rint(2 * midline - columns).astype(int)
    valid = (source >= 0) & (source < labels.shape[2])
    area = spacing[1] * spacing[2]
    margin = max(1, int(round(MARGIN_MM / min(spacing[1:]))))
    add = np.zeros_like(this)
    for z in range(labels.shape[0]):
        mirror = np.zeros_like(this[z])
        mirror[:, valid] = that[z][:, source[valid]]
        mirror_area = mirror.sum() * area
        if mirror_area < MIN_MIRROR_MM2 or this[z].sum() * area >= MAX_OWN_FRACTION * mirror_area:
            continue
        mirror = ndimage.binary_erosion(mirror, iterations=margin)
        if mirror.any():
            toward_chest_wall = recess_columns(mirror, side, spacing[1:], anterior_limit_deg, posterior_limit_deg)
            add[z] = mirror & toward_chest_wall & soft_tissue(hu[z]) & body[z] & (labels[z] == 0)
    if not add.any():
        return labels
    lowered = side == LEFT_LUNG and left_base_consolidated(labels, hu, spacing)
    domes = joint_domes(labels, hu, spacing, lowered)
    if domes is None:
        return labels
    add &= np.arange(labels.shape[0])[:, None, None] >= domes[side][None]
    if spine_clearance_mm > 0:
        if centres is None:
            centres = vertebral_centres(hu, body, labels > 0, spacing)
        yy, xx = np.indices(labels.shape[1:])
        for z in np.flatnonzero(add.any(axis=(1, 2))):
            if np.isfinite(centres[z, 0]):
                distance = np.hypot((yy - centres[z, 0]) * spacing[1], (xx - centres[z, 1]) * spacing[2])
                add[z] &= distance > spine_clearance_mm
    pieces, n = label(add | this)
    out = labels.copy()
    out[add & pieces_holding(pieces, n, this)] = side
    return out
