"""Consolidated slices outlined by the lung of the neighbouring slice and by the lung around them in the slice.

A lobe consolidated over much of its height leaves slices in which the lung recovered so far (the aerated
remnant, the mirrored outline, the dome and bridging steps) covers only part of the hemithorax: the tissue between
that part and the fissure, the heart or the chest wall has no aerated edge in the slice. The lung's outline changes
little from one slice to the next, though. Going through a lung's slices downwards and then upwards, in a slice
that is mostly consolidated (less than MAX_AERATED_FRACTION of it aerated and at least MIN_DENSE_MM2 of dense lung)
fat-free, bone-free tissue joined in the slice to this lung is lung where it lies inside the lung of the slice just
done, shrunk by the slope a lung border can have between two slices (downwards only above the dome fitted from
both lungs: the lung above covers the top of the liver and spleen), or where this lung lies within
ENCLOSED_REACH_MM on both sides of it along most in-plane axes (the lobe between an aerated lobe and the
consolidation recovered behind it). Aerated slices are left alone: healthy lungs and lungs with patchy disease
have an aerated edge there for the other steps.

On the left only tissue behind the lung's centre in the slice is taken: the heart lies against the lingula and
the left lower lobe over much of their height, with lung in front of and behind it, so both the outline of the
slice above and the in-slice enclosure reach into it (used in full on the left, held-out phantoms with a
consolidated left lobe took 21-31 ml more soft tissue outside the lungs per case for 17-32 ml of lobe).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
from scipy import ndimage

from lungai.arrays import bounding_box
from lungai.labels import LEFT_LUNG, RIGHT_LUNG
from lungai.lung.dome import AERATED_HU, DENSE_HU, joint_domes, soft_tissue
from lungai.lung.morphology import or_shifted, pieces_holding

MAX_AERATED_FRACTION = 0.7   # a slice with less of this lung's area aerated is consolidated
MIN_DENSE_MM2 = 1000.0       # ... and holds at least this much dense lung
SLOPE = 0.5                  # the lung border moves at most this many mm in-plane per mm between slices
ENCLOSED_REACH_MM = 40.0     # tissue with this lung within this distance on both sides ...
ENCLOSED_MIN_AXES = 3        # ... along this many of the 4 in-plane axes is lung (a consolidated slice only)
AXES = np.array(((0, 1), (1, 0), (1, 1), (1, -1)))
LOST_AREA_FRACTION = 0.5     # the left lung is mostly lost in a slice where it covers less than this of the right
                             # lung's area (and less than MAX_AERATED_FRACTION of it is aerated)
BASE_MM = 20.0               # the left base: the left lung's slices within this height of its lowest one


def enclosed_in_slice(lung: np.ndarray, spacing: Tuple[float, float]) -> np.ndarray:
    """Pixels of a slice with ``lung`` within ENCLOSED_REACH_MM on both sides along at least ENCLOSED_MIN_AXES
    of the 4 in-plane axes: the consolidated lobe between an aerated lobe and the consolidation recovered behind
    it (across a fissure). The heart and the liver beside a lung have it on one side along most axes."""
    if not lung.any():
        return np.zeros_like(lung)
    box = bounding_box(lung)
    sub = lung[box]
    score = np.zeros(sub.shape, dtype=np.uint8)
    for axis in AXES:
        steps = int(ENCLOSED_REACH_MM // float(np.hypot(axis[0] * spacing[0], axis[1] * spacing[1])))
        forward, backward = np.zeros_like(sub), np.zeros_like(sub)
        for t in range(1, steps + 1):
            or_shifted(forward, sub, t * axis)
            or_shifted(backward, sub, -t * axis)
        score += forward & backward
    out = np.zeros_like(lung)
    out[box] = score >= ENCLOSED_MIN_AXES
    return out


def consolidated_slices(lung: np.ndarray, hu: np.ndarray, pixel_mm2: float) -> np.ndarray:
    """Per slice: whether this lung is mostly consolidated there (module docstring)."""
    area = lung.sum(axis=(1, 2))
    aerated = (lung & (hu < AERATED_HU)).sum(axis=(1, 2))
    dense = (lung & (hu > DENSE_HU)).sum(axis=(1, 2))
    return (area > 0) & (aerated < MAX_AERATED_FRACTION * area) & (dense * pixel_mm2 >= MIN_DENSE_MM2)


def left_lung_lost(labels: np.ndarray, hu: np.ndarray) -> np.ndarray:
    """Per slice: the left lung covers less than LOST_AREA_FRACTION of the right lung's area and less than
    MAX_AERATED_FRACTION of it is aerated, as in a consolidated slice (a lobe consolidated down to its air
    bronchograms)."""
    left = labels == LEFT_LUNG
    area = left.sum(axis=(1, 2))
    aerated = (left & (hu < AERATED_HU)).sum(axis=(1, 2))
    right = (labels == RIGHT_LUNG).sum(axis=(1, 2))
    return (area > 0) & (aerated < MAX_AERATED_FRACTION * area) & (area < LOST_AREA_FRACTION * right)


def left_base_consolidated(labels: np.ndarray, hu: np.ndarray, spacing: Tuple[float, float, float]) -> bool:
    """Whether the left lung is consolidated (:func:`consolidated_slices`) or mostly lost (:func:`left_lung_lost`)
    in one of its slices within BASE_MM of its lowest one: its aerated bottoms then rest on the consolidation and
    the heart, not on the dome."""
    present = np.flatnonzero((labels == LEFT_LUNG).any(axis=(1, 2)))
    if not present.size:
        return False
    base = present[present <= present[0] + int(round(BASE_MM / spacing[0]))]
    slices = consolidated_slices(labels == LEFT_LUNG, hu, spacing[1] * spacing[2]) | left_lung_lost(labels, hu)
    return bool(slices[base].any())


def propagate_outline(labels: np.ndarray, hu: np.ndarray, body: np.ndarray,
                      spacing: Tuple[float, float, float]) -> np.ndarray:
    """Labels ([S, P, L]) with each lung's consolidated slices filled out from the neighbouring slice's lung and
    between its parts in the slice (the left lung behind its centre only; module docstring)."""
    out = labels.copy()
    if not out.any():
        return out
    box = bounding_box(out > 0, margin=1)
    sub, hu, body = out[box], hu[box], body[box]  # views: filling ``sub`` fills ``out``
    pixel = spacing[1] * spacing[2]
    shrink = max(1, int(round(SLOPE * spacing[0] / min(spacing[1:]))))
    domes = None
    for side in (RIGHT_LUNG, LEFT_LUNG):
        slices = np.flatnonzero(consolidated_slices(sub == side, hu, pixel))
        if not slices.size:
            continue
        if domes is None:
            domes = joint_domes(labels[box], hu, spacing)
        for step in (-1, 1):
            for z in slices[::-1] if step == -1 else slices:
                source = z - step
                outline = enclosed_in_slice(sub[z] == side, spacing[1:])
                if 0 <= source < sub.shape[0]:
                    from_source = ndimage.binary_erosion(sub[source] == side, iterations=shrink)
                    if step == -1:
                        # downwards only above the dome: the lung above covers the top of the liver or spleen
                        from_source &= (z >= domes[side]) if domes is not None else np.zeros_like(from_source)
                    outline |= from_source
                add = outline & (sub[z] == 0) & body[z] & soft_tissue(hu[z])
                if side == LEFT_LUNG:
                    # the heart lies in front of the left lung's centre: only behind it
                    add[:int(np.rint(np.nonzero(sub[z] == side)[0].mean()))] = False
                if not add.any():
                    continue
                own = sub[z] == side
                pieces, n = ndimage.label(add | own)
                sub[z][add & pieces_holding(pieces, n, own)] = side
    return out
