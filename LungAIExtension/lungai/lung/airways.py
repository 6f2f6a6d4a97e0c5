"""Trachea and main bronchi: found from the top as a round air tube, grown with leak control."""

from __future__ import annotations

from typing import Optional, Tuple

import cc3d
import numpy as np
from scipy import ndimage

from lungai.arrays import bounding_box
from lungai.lung.morphology import FACES, fill_holes_slices, label

TRACHEA_AREA_MM2 = (60.0, 900.0)   # cross-section of the trachea lumen from the neck to the carina
TRACHEA_MAX_OFFSET_MM = 45.0       # from the body's left-right centre
TRACHEA_SEARCH_FRACTION = 0.5      # search the upper half of the slices that hold lung-sized air
GROW_START_HU, GROW_STEP_HU, GROW_STOP_HU = -975.0, 40.0, -700.0
LEAK_RATIO = 1.8                   # volume jump between threshold steps that means leakage into lung ...
LEAK_MIN_ML = 100.0                # ... once the tree is larger than a trachea and main bronchi can be
INTRAPULMONARY_MAX_AREA_MM2 = 20.0  # bronchi inside the lung up to this cross-section count as lung


def find_trachea(hu: np.ndarray, candidates: np.ndarray, body: np.ndarray, spacing: Tuple[float, float, float],
                 lungs_air: np.ndarray) -> Optional[np.ndarray]:
    """Mask of the trachea cross-section in the highest slice where a round, central air tube is seen.

    ``lungs_air`` is the big 3D air component(s); the tube must belong to it (the trachea connects to the lungs).
    Returns ``None`` when no such tube exists (scan starting below the carina, or no airway visible).
    """
    slices = np.flatnonzero(lungs_air.any(axis=(1, 2)))
    if slices.size == 0:
        return None
    top, bottom = slices[-1], slices[0]
    stop = top - int(TRACHEA_SEARCH_FRACTION * (top - bottom + 1))
    pixel_mm2 = spacing[1] * spacing[2]
    for z in range(top, stop, -1):
        cols = np.flatnonzero(body[z].any(axis=0))
        if cols.size == 0:
            continue
        centre_x = 0.5 * (cols[0] + cols[-1])
        labels, n = ndimage.label(candidates[z] & lungs_air[z])
        best, best_area = None, 0.0
        for region in range(1, n + 1):
            comp = labels == region
            area = comp.sum() * pixel_mm2
            if not TRACHEA_AREA_MM2[0] <= area <= TRACHEA_AREA_MM2[1]:
                continue
            ys, xs = np.nonzero(comp)
            if abs(xs.mean() - centre_x) * spacing[2] > TRACHEA_MAX_OFFSET_MM:
                continue
            h, w = (np.ptp(ys) + 1) * spacing[1], (np.ptp(xs) + 1) * spacing[2]
            if max(h, w) > 2.2 * min(h, w) or area < 0.5 * h * w:  # round-ish tube cross-section
                continue
            if hu[z][comp].min() > -900:
                continue
            if area > best_area:
                best, best_area = comp, area
        if best is not None:
            seed = np.zeros_like(candidates)
            seed[z] = best
            return seed
    return None


def grow_airways(hu: np.ndarray, seed: np.ndarray, air: np.ndarray, voxel_ml: float) -> np.ndarray:
    """Airway lumen connected to ``seed``: the darkest threshold region grown until it would leak into lung.

    Thresholds rise from :data:`GROW_START_HU` in steps; the last region before the volume jumps by
    :data:`LEAK_RATIO` is kept, then widened by one voxel into air to take in partial-volume lumen edges.
    """
    box = bounding_box(air | seed, margin=1)
    sub_hu, sub_seed, sub_air = hu[box], seed[box], air[box]
    seed_voxels = tuple(a[0] for a in np.nonzero(sub_seed))
    best = None
    previous = None
    threshold = GROW_START_HU
    while threshold <= GROW_STOP_HU:
        mask = (sub_hu < threshold) | sub_seed
        labels = cc3d.connected_components(mask.astype(np.uint8), connectivity=6)
        region = labels == labels[seed_voxels]
        volume = int(region.sum())
        if previous is not None and volume > LEAK_RATIO * previous and volume * voxel_ml > LEAK_MIN_ML:
            break
        best, previous = region, volume
        threshold += GROW_STEP_HU
    if best is None:
        best = sub_seed
    best = best | (ndimage.binary_dilation(best, FACES) & sub_air)
    out = np.zeros_like(seed)
    out[box] = best
    return out


def remove_intrapulmonary(airways: np.ndarray, lungs: np.ndarray, pixel_mm2: float) -> np.ndarray:
    """Airway voxels without the small bronchi wrapped by lung in their axial slice.

    Trachea, main and lobar bronchi stay airways; segmental and smaller bronchi surrounded by parenchyma belong
    to the lung mask, as radiologists and reference masks count them.
    """
    if not airways.any():
        return airways
    box = bounding_box(airways, margin=1)
    sub_airways, sub_lungs = airways[box], lungs[box]
    wrapped = fill_holes_slices(sub_lungs) & ~sub_lungs
    labels, n = label(sub_airways, planar=True)
    inside = np.bincount(labels[sub_airways], weights=wrapped[sub_airways], minlength=n + 1)
    total = np.bincount(labels[sub_airways], minlength=n + 1)
    keep = (inside < 0.5 * np.maximum(total, 1)) | (total * pixel_mm2 > INTRAPULMONARY_MAX_AREA_MM2)
    keep[0] = False
    out = np.zeros_like(airways)
    out[box] = keep[labels]
    return out
