"""Consolidation in the right paravertebral gutter, measured from the spine against the slices above and below.

The posterior-medial lung lies against the vertebral body and the rib heads. Consolidation there has no aerated
edge towards the chest wall, and the chest-wall rays stop short of the gutter. Seen from the vertebral body, though,
the aerated lung in a healthy slice begins a fixed distance away in each direction (only pleura, or the azygos vein
and oesophagus, which run the length of the chest). Rays from the centre of the vertebral body find, in every slice,
the distance from the last bone (vertebral body, rib head) to this lung; where that distance exceeds the one seen in
the slices above *and* below (the larger of the two, so that a structure present on one side only still counts) by
more than MIN_EXCESS_MM, the fat-free, bone-free tissue beyond the usual distance is lung that lost its air.

Only the right gutter is treated: on the left the descending aorta runs beside the spine and curves away from it
along the chest, so its distance from the spine is not the same in neighbouring slices (on healthy phantoms the left
gutter rays took 3-9 ml of aorta).
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from scipy import ndimage

from lungai.arrays import bounding_box
from lungai.labels import RIGHT_LUNG
from lungai.lung.dome import BONE_HU, FAT_HU, soft_tissue
from lungai.lung.morphology import fill_holes_slices, large_pieces, pieces_holding

SPINE_HALF_WIDTH_MM = 25.0   # the vertebral body lies this close to the midline between the lungs
MIN_SPINE_RADIUS_MM = 6.0    # thickest bone of a slice's spine region (a disc slice has none)
RAY_FROM_DEG = 20.0          # rays from the vertebral body, in degrees from anterior towards the right
RAY_TO_DEG = 150.0           # (20: beside the oesophagus, 90: lateral, 150: along the posterior ribs)
RAY_STEP_DEG = 3.0
MAX_REACH_MM = 70.0          # rays end here (farther out lie the superior vena cava and the hilum)
REFERENCE_MM = 60.0          # the usual distance is taken from the slices within this above and below
MIN_EXCESS_MM = 5.0          # a gap this much wider than the usual distance holds consolidated lung
MAX_FAT_FRACTION = 0.15      # gaps with more fat than this are mediastinum
MIN_PIECE_MM2 = 80.0         # smallest piece kept in a slice
AORTA_REACH_MM = 60.0        # the descending aorta lies within this of the vertebral body centre ...
AORTA_SECTOR_DEG = 70.0      # ... between straight ahead and this angle towards the left


def vertebral_centres(hu: np.ndarray, body: np.ndarray, lungs: np.ndarray,
                      spacing: Tuple[float, float, float]) -> np.ndarray:
    """(row, column) of the vertebral body centre per slice ([S, P, L]; NaN where the slice has no lung): the
    thickest bone near the midline between the lungs and behind their centre, interpolated through slices
    without it (intervertebral discs)."""
    nz = hu.shape[0]
    centres = np.full((nz, 2), np.nan)
    radius = np.zeros(nz)
    if not lungs.any():
        return centres
    half = int(np.ceil(SPINE_HALF_WIDTH_MM / spacing[2]))
    columns = lungs.any(axis=1)
    rows = lungs.sum(axis=2)
    with_lung = np.flatnonzero(columns.any(axis=1))
    first = np.argmax(columns[with_lung], axis=1)
    last = columns.shape[1] - 1 - np.argmax(columns[with_lung, ::-1], axis=1)
    mid = np.rint(0.5 * (first + last)).astype(int)
    back = (rows[with_lung] @ np.arange(rows.shape[1]) / rows[with_lung].sum(axis=1)).astype(int)
    # one box for all slices, each slice limited to its own spine region: behind the lungs' centre, near the
    # midline
    ys = slice(int(back.min()), hu.shape[1])
    xs = slice(max(0, int(mid.min()) - half), min(hu.shape[2], int(mid.max()) + half + 1))
    yy, xx = np.ogrid[ys, xs]
    region = ((yy[None] >= back[:, None, None]) & (np.abs(xx[None] - mid[:, None, None]) <= half))
    bone = fill_holes_slices(region & (hu[with_lung, ys, xs] >= BONE_HU) & body[with_lung, ys, xs])
    for i, z in enumerate(with_lung):
        if bone[i].any():
            box = bounding_box(bone[i])
            depth = ndimage.distance_transform_edt(np.pad(bone[i][box], 1), sampling=spacing[1:])
            at = np.unravel_index(np.argmax(depth), depth.shape)
            radius[z] = depth[at]
            centres[z] = (at[0] - 1 + box[0].start + ys.start, at[1] - 1 + box[1].start + xs.start)
    with_lung = columns.any(axis=1)
    found = radius >= max(MIN_SPINE_RADIUS_MM, 0.6 * np.median(radius[with_lung]))
    if not found.any():
        return np.full((nz, 2), np.nan)
    k = np.arange(nz)
    for axis in (0, 1):
        centres[:, axis] = np.interp(k, k[found], centres[found, axis])
    centres[~with_lung] = np.nan
    return centres


def _gaps(side_lung: np.ndarray, occupied: np.ndarray, hu: np.ndarray, body: np.ndarray, centre: np.ndarray,
          directions: np.ndarray, radii: np.ndarray, spacing: Tuple[float, float]) -> Tuple[np.ndarray, np.ndarray]:
    """Per ray: where the tissue beyond the last bone begins and where this lung begins (radius indices; -1 where
    the ray leaves the body or meets other structures first)."""
    sy, sx = spacing
    yy = np.rint(centre[0] + np.outer(directions[:, 0], radii) / sy).astype(int)
    xx = np.rint(centre[1] + np.outer(directions[:, 1], radii) / sx).astype(int)
    inside = (yy >= 0) & (yy < hu.shape[0]) & (xx >= 0) & (xx < hu.shape[1])
    yc, xc = np.clip(yy, 0, hu.shape[0] - 1), np.clip(xx, 0, hu.shape[1] - 1)
    mine = side_lung[yc, xc] & inside
    stop = ~(body[yc, xc] & inside) | (occupied[yc, xc] & ~mine)
    m = radii.size
    first = np.where(mine.any(axis=1), np.argmax(mine, axis=1), m)
    first_stop = np.where(stop.any(axis=1), np.argmax(stop, axis=1), m)
    bone = (hu[yc, xc] >= BONE_HU) & (np.arange(m)[None, :] < first[:, None])
    last_bone = np.where(bone.any(axis=1), m - 1 - np.argmax(bone[:, ::-1], axis=1), -1)
    ok = (first < m) & (first < first_stop) & (last_bone >= 0)
    return np.where(ok, last_bone + 1, -1), np.where(ok, first, -1)


def beside_the_aorta(centres: np.ndarray, shape: Tuple[int, int, int],
                     spacing: Tuple[float, float, float]) -> np.ndarray:
    """Where the descending aorta lies ([S, P, L]): within AORTA_REACH_MM of the vertebral body centre, between
    straight ahead and AORTA_SECTOR_DEG towards the left. The chest-wall rays of the left lung do not take dense
    tissue there (on healthy phantoms they took 5-10 ml of aorta through rays ending on the rib heads behind it)."""
    out = np.zeros(shape, dtype=bool)
    reach_y, reach_x = (int(np.ceil(AORTA_REACH_MM / s)) for s in spacing[1:])
    for z in np.flatnonzero(np.isfinite(centres[:, 0])):
        cy, cx = int(round(centres[z, 0])), int(round(centres[z, 1]))
        ys = slice(max(0, cy - reach_y), min(shape[1], cy + 1))
        xs = slice(max(0, cx), min(shape[2], cx + reach_x + 1))
        yy, xx = np.ogrid[ys, xs]
        dy, dx = (yy - centres[z, 0]) * spacing[1], (xx - centres[z, 1]) * spacing[2]
        angle = np.degrees(np.arctan2(dx, -dy))  # 0 anterior, 90 left
        out[z, ys, xs] = (np.hypot(dy, dx) < AORTA_REACH_MM) & (angle > 0) & (angle < AORTA_SECTOR_DEG)
    return out


def right_gutter(labels: np.ndarray, hu: np.ndarray, body: np.ndarray, spacing: Tuple[float, float, float],
                 hilum: Optional[np.ndarray] = None, centres: Optional[np.ndarray] = None) -> np.ndarray:
    """Labels ([S, P, L]) with consolidated lung in the right paravertebral gutter added (module docstring);
    ``centres`` from :func:`vertebral_centres` (found here when not given)."""
    lung = labels == RIGHT_LUNG
    if not lung.any():
        return labels
    sz, sy, sx = spacing
    if centres is None:
        centres = vertebral_centres(hu, body, labels > 0, spacing)
    step = min(sy, sx)
    radii = np.arange(0.0, MAX_REACH_MM, step)
    phi = np.radians(np.arange(RAY_FROM_DEG, RAY_TO_DEG + 1e-6, RAY_STEP_DEG))
    directions = np.stack([-np.cos(phi), -np.sin(phi)], axis=1)  # (row, column): anterior is -row, right -column
    nz, nr = labels.shape[0], phi.size
    start = np.full((nz, nr), -1)
    end = np.full((nz, nr), -1)
    for z in np.flatnonzero(lung.any(axis=(1, 2)) & np.isfinite(centres[:, 0])):
        start[z], end[z] = _gaps(lung[z], labels[z] > 0, hu[z], body[z], centres[z], directions, radii, (sy, sx))
    gap = np.where(end >= 0, (end - start) * step, np.nan)
    usual = _usual_gap(gap, int(round(REFERENCE_MM / sz)))
    out = labels.copy()
    with np.errstate(invalid="ignore"):
        wide = gap > usual + MIN_EXCESS_MM
    for z in np.flatnonzero(wide.any(axis=1)):
        window, add = _rasterise(wide[z], (start[z] * step + usual[z]), (end[z] - 0.5) * step, centres[z], phi,
                                 hu[z], (sy, sx))
        here = lung[z][window]
        add &= body[z][window] & (out[z][window] == 0) & soft_tissue(hu[z][window])
        if hilum is not None:
            add &= ~hilum[z][window]
        if not add.any():
            continue
        pieces, n = ndimage.label(add | here, np.ones((3, 3), dtype=bool))
        add &= pieces_holding(pieces, n, here)
        out[z][window][large_pieces(add, sy * sx, MIN_PIECE_MM2)] = RIGHT_LUNG
    return out


def _usual_gap(gap: np.ndarray, reach: int) -> np.ndarray:
    """Per slice and ray, the larger of the smallest gaps in the slices within ``reach`` below and above (NaN
    where either side has none)."""
    nz = gap.shape[0]
    filled = np.where(np.isnan(gap), np.inf, gap)
    below = np.full_like(filled, np.inf)
    above = np.full_like(filled, np.inf)
    for z in range(nz):
        if z > 0:
            below[z] = filled[max(0, z - reach):z].min(axis=0)
        if z < nz - 1:
            above[z] = filled[z + 1:z + 1 + reach].min(axis=0)
    usual = np.maximum(below, above)
    return np.where(np.isfinite(usual), usual, np.nan)


def _rasterise(rays: np.ndarray, r0: np.ndarray, r1: np.ndarray, centre: np.ndarray, phi: np.ndarray,
               hu: np.ndarray, spacing: Tuple[float, float]) -> Tuple[Tuple[slice, slice], np.ndarray]:
    """The window the rays reach, and in it the pixels between r0 and r1 (mm) from the centre along the chosen
    rays (each pixel takes the nearest ray); rays whose stretch is more than MAX_FAT_FRACTION fat are left out."""
    sy, sx = spacing
    reach = float(np.max(np.where(rays, r1, 0.0)))
    reach_y, reach_x = int(np.ceil(reach / sy)) + 1, int(np.ceil(reach / sx)) + 1
    cy, cx = int(round(centre[0])), int(round(centre[1]))
    y0, y1 = max(0, cy - reach_y), min(hu.shape[0], cy + reach_y + 1)
    x0, x1 = max(0, cx - reach_x), min(hu.shape[1], cx + 2)  # the rays run to the right (smaller columns)
    py, px = np.mgrid[y0:y1, x0:x1]
    dy, dx = (py - centre[0]) * sy, (px - centre[1]) * sx
    angle = np.degrees(np.arctan2(-dx, -dy))
    k = np.rint((angle - np.degrees(phi[0])) / RAY_STEP_DEG).astype(int)
    valid = (k >= 0) & (k < phi.size)
    k = np.clip(k, 0, phi.size - 1)
    r = np.hypot(dy, dx)
    stretch = valid & rays[k] & (r >= r0[k]) & (r <= r1[k])
    window = hu[y0:y1, x0:x1]
    fat = stretch & (window > FAT_HU[0]) & (window < FAT_HU[1])
    fatty = np.bincount(k[fat], minlength=phi.size) > MAX_FAT_FRACTION * np.maximum(
        np.bincount(k[stretch], minlength=phi.size), 1)
    return (slice(y0, y1), slice(x0, x1)), stretch & ~fatty[k]
