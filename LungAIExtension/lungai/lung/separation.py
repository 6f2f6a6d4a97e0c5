"""Right/left lung separation, also where the lungs touch at the anterior or posterior junction line."""

from __future__ import annotations

from typing import Tuple

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from lungai.arrays import bounding_box
from lungai.labels import LEFT_LUNG, RIGHT_LUNG
from lungai.lung.morphology import label

MAX_SPLIT_DEPTH_MM = 24.0
MIN_PART_FRACTION = 0.08


def side_of(x_index: float, midline_x: float) -> int:
    """Canonical x grows towards the patient's left, so the right lung lies at smaller x."""
    return RIGHT_LUNG if x_index < midline_x else LEFT_LUNG


def _split_joined(component: np.ndarray, hu: np.ndarray, spacing: Tuple[float, ...], midline_x: float,
                  planar: bool) -> np.ndarray:
    """Split one air component spanning both sides into right and left labels.

    The component is eroded (distance-map thresholds, deeper each step) until it falls apart into parts on both
    sides of the midline; those parts seed a watershed on the HU image, whose ridges follow the dense junction
    line between the lungs. Without such a split (one fused mass) the midline plane divides it.
    """
    box = bounding_box(component, margin=1)
    comp = component[box]
    sampling = spacing[1:] if planar else spacing
    if planar:
        depth = np.stack([ndimage.distance_transform_edt(s, sampling=sampling) for s in comp])
    else:
        depth = ndimage.distance_transform_edt(comp, sampling=sampling)
    x0 = box[2].start
    markers = None
    step = min(spacing[1:]) if planar else min(spacing)
    d = step
    while d <= MAX_SPLIT_DEPTH_MM:
        parts, n = label(depth > d, planar)
        if n >= 2:
            counts = np.bincount(parts.ravel(), minlength=n + 1)
            xs = ndimage.center_of_mass(np.ones_like(parts), parts, range(1, n + 1))
            sides = [side_of(c[2] + x0, midline_x) for c in xs]
            remaining = counts[1:].sum()
            big_sides = {sides[i] for i in range(n) if counts[i + 1] >= MIN_PART_FRACTION * remaining}
            if big_sides == {RIGHT_LUNG, LEFT_LUNG}:
                lut = np.zeros(n + 1, dtype=np.uint8)
                for i in range(n):
                    lut[i + 1] = sides[i]
                markers = lut[parts]
                break
        d += step
    if markers is None:
        xs = np.arange(comp.shape[2])[None, None, :] + x0
        out = np.where(comp, np.where(xs < midline_x, RIGHT_LUNG, LEFT_LUNG), 0).astype(np.uint8)
    else:
        out = watershed(hu[box], markers, mask=comp).astype(np.uint8)
    full = np.zeros(component.shape, dtype=np.uint8)
    full[box] = out
    return full


def separate(lungs: np.ndarray, hu: np.ndarray, spacing: Tuple[float, ...], midline_x: float,
             planar: bool = False) -> np.ndarray:
    """Label map 1 right / 2 left from a binary lung mask; components crossing the midline are split."""
    labels, n = label(lungs, planar)
    out = np.zeros(lungs.shape, dtype=np.uint8)
    if n == 0:
        return out
    objects = ndimage.find_objects(labels)
    for index, sl in enumerate(objects, start=1):
        comp = labels[sl] == index
        columns = comp.sum(axis=(0, 1))
        xs = np.arange(columns.size) + sl[2].start
        right_part, left_part = columns[xs < midline_x].sum(), columns[xs >= midline_x].sum()
        occupied = xs[columns > 0]
        crosses = (min(right_part, left_part) > 0.15 * (right_part + left_part)
                   and (occupied[-1] - occupied[0]) * spacing[2] > 60.0)
        if crosses:
            full = np.zeros(lungs.shape, dtype=bool)
            full[sl] = comp
            split = _split_joined(full, hu, spacing, midline_x, planar)
            out[split > 0] = split[split > 0]
        else:
            centre = ndimage.center_of_mass(comp)[2] + sl[2].start
            out[sl][comp] = side_of(centre, midline_x)
    return out
