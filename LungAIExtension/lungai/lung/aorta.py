"""The descending aorta beside the spine, found where aerated left lung outlines it and carried down through the
consolidated slices.

Beside the vertebral body, left of and in front of its centre, the descending aorta is a round soft-tissue disc
(18-30 mm across) that aerated left lung borders on its lateral and posterior side. In each slice where the left
lung is aerated there, a Hough circle (``skimage.transform.hough_circle``) on the lung's edge against tissue in a
small window beside the vertebral body finds it. The aorta runs nearly vertically down the posterior mediastinum,
so its centres lie on a straight line in z: a line fitted robustly (RANSAC over pairs of slices, then least
squares on the slices within TRACK_TOLERANCE_MM) to the circles is the track, carried to the consolidated slices
below, where consolidated lung hides the aorta's edge. No track (None) when too few slices agree, when the track
is far from vertical, or when it is carried farther than MAX_CARRY_MM beyond the slices that support it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from skimage.transform import hough_circle, hough_circle_peaks

from lungai.labels import LEFT_LUNG
from lungai.lung.dome import AERATED_HU, BONE_HU

AORTA_RADII_MM = (9.0, 15.0)     # plausible descending aorta radius
WINDOW_MM = ((-35.0, 5.0), (10.0, 45.0))  # (rows, columns) from the vertebral body centre: in front of it (rows
                                          # < 0) and left of it (columns > 0), where the aorta lies
MIN_ARC = 0.25                   # share of the circle's perimeter on the lung's edge (90 degrees)
MIN_TISSUE = 0.85                # share of the disc that is non-lung soft tissue (not a lung vessel or bone)
TRACK_TOLERANCE_MM = 3.0         # a slice's circle centre this close to the line supports it
MIN_TRACK_SLICES = 5             # fewest supporting slices ...
MIN_TRACK_SHARE = 0.5            # ... and share of the slices with a circle, within the supported z range
MAX_SLOPE = 0.3                  # mm in the plane per mm in z (near-vertical)
MAX_CARRY_MM = 120.0             # farthest the track is carried beyond its supporting slices


@dataclass(frozen=True)
class AortaTrack:
    """Centre (row, column, in voxels) as a line in the slice index, radius in mm, supporting slices."""

    row: Tuple[float, float]      # intercept, slope per slice
    column: Tuple[float, float]
    radius_mm: float
    slices: Tuple[int, int]       # lowest and highest supporting slice

    def centre(self, z: float) -> Tuple[float, float]:
        return self.row[0] + self.row[1] * z, self.column[0] + self.column[1] * z


def slice_circle(labels: np.ndarray, hu: np.ndarray, centre: np.ndarray,
                 spacing: Tuple[float, float]) -> Optional[Tuple[float, float, float]]:
    """(row, column, radius mm) of the aorta in one slice: the Hough circle best supported by the aerated left
    lung's edge against tissue in the window beside the vertebral body ``centre``; None when no circle has
    MIN_ARC of its perimeter on that edge and MIN_TISSUE of its disc non-lung soft tissue. Radii in pixels of the
    mean in-plane pixel size."""
    pix = float(np.mean(spacing))
    r0 = int(np.floor(centre[0] + WINDOW_MM[0][0] / spacing[0]))
    r1 = int(np.ceil(centre[0] + WINDOW_MM[0][1] / spacing[0]))
    c0 = int(np.floor(centre[1] + WINDOW_MM[1][0] / spacing[1]))
    c1 = int(np.ceil(centre[1] + WINDOW_MM[1][1] / spacing[1]))
    pad = int(np.ceil(AORTA_RADII_MM[1] / pix)) + 1
    box = (slice(max(0, r0 - pad), min(hu.shape[0], r1 + pad)), slice(max(0, c0 - pad), min(hu.shape[1], c1 + pad)))
    lab, h = labels[box], hu[box]
    aerated = (lab == LEFT_LUNG) & (h < AERATED_HU)
    tissue = (lab == 0) & (h > AERATED_HU) & (h < BONE_HU)
    near = np.zeros_like(aerated)
    near[1:] |= aerated[:-1]
    near[:-1] |= aerated[1:]
    near[:, 1:] |= aerated[:, :-1]
    near[:, :-1] |= aerated[:, 1:]
    edge = near & tissue
    if edge.sum() < 8:
        return None
    radii = np.arange(int(np.ceil(AORTA_RADII_MM[0] / pix)), int(np.floor(AORTA_RADII_MM[1] / pix)) + 1)
    acc = hough_circle(edge, radii, normalize=True)
    yy, xx = np.indices(edge.shape)
    inside_window = ((yy + box[0].start >= r0) & (yy + box[0].start <= r1)
                     & (xx + box[1].start >= c0) & (xx + box[1].start <= c1))
    acc *= inside_window[None]
    _, cols, rows, found = hough_circle_peaks(acc, radii, total_num_peaks=5)
    for y, x, r in zip(rows, cols, found):
        disc = np.hypot(yy - y, xx - x) <= r - 1
        if acc[list(radii).index(r), y, x] < MIN_ARC or not disc.any():
            continue
        if tissue[disc].mean() >= MIN_TISSUE:
            return float(y + box[0].start), float(x + box[1].start), float(r * pix)
    return None


def aorta_track(labels: np.ndarray, hu: np.ndarray, spacing: Tuple[float, float, float], centres: np.ndarray,
                search: np.ndarray, target: np.ndarray) -> Optional[AortaTrack]:
    """The descending aorta's track (module docstring) from the circles found in the ``search`` slices, for the
    ``target`` slices; None without a confident track reaching them."""
    found = []
    for z in np.flatnonzero(search & np.isfinite(centres).all(axis=1)):
        c = slice_circle(labels[z], hu[z], centres[z], spacing[1:])
        if c is not None:
            found.append((z,) + c)
    if len(found) < MIN_TRACK_SLICES:
        return None
    f = np.asarray(found)
    z, y, x = f[:, 0], f[:, 1] * spacing[1], f[:, 2] * spacing[2]
    best = None
    for i in range(len(f)):
        for j in range(i + 1, len(f)):
            dz = (z[j] - z[i]) * spacing[0]
            if dz < 2 * spacing[0]:
                continue
            sy, sx = (y[j] - y[i]) / dz, (x[j] - x[i]) / dz
            if np.hypot(sy, sx) > MAX_SLOPE:
                continue
            dzs = (z - z[i]) * spacing[0]
            ok = np.hypot(y - y[i] - sy * dzs, x - x[i] - sx * dzs) <= TRACK_TOLERANCE_MM
            if best is None or ok.sum() > best.sum():
                best = ok
    if best is None:
        return None
    for _ in range(5):
        py = np.polyfit(z[best], y[best], 1)
        px = np.polyfit(z[best], x[best], 1)
        ok = np.hypot(y - np.polyval(py, z), x - np.polyval(px, z)) <= TRACK_TOLERANCE_MM
        if np.array_equal(ok, best) or ok.sum() < 2:
            break
        best = ok
    lo, hi = int(z[best].min()), int(z[best].max())
    spanned = np.count_nonzero((z >= lo) & (z <= hi))
    if best.sum() < MIN_TRACK_SLICES or best.sum() < MIN_TRACK_SHARE * spanned:
        return None
    if np.hypot(py[0], px[0]) / spacing[0] > MAX_SLOPE:
        return None
    wanted = np.flatnonzero(target)
    if wanted.size == 0:
        return None
    carry = max(lo - wanted.min(), wanted.max() - hi, 0) * spacing[0]
    if carry > MAX_CARRY_MM:
        return None
    return AortaTrack((py[1] / spacing[1], py[0] / spacing[1]), (px[1] / spacing[2], px[0] / spacing[2]),
                      float(np.median(f[best, 3])), (lo, hi))
