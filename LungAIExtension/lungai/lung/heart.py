"""The heart outlined from its visible border, and the consolidated left lung around it.

A consolidated left lower lobe wraps around the heart's lateral and posterior wall and reaches the anterior chest
wall in front of it; unenhanced, the two have the same density, so no slice tells them apart. The heart is a
compact, roughly ellipsoidal organ, though, and wherever aerated lung touches it (the right heart border, the
lingula and upper lobe above the consolidation, the lung in front of and behind it) its surface is the boundary
between aerated lung and mediastinal tissue. An ellipsoid fitted robustly to that boundary (below the carina,
above the diaphragm dome, away from the spine and the descending aorta, between the lungs) outlines the whole
heart, its hidden lateral wall included.

In the left lung's consolidated slices (chosen by the caller) from the left dome up to the heart's middle,
fat-free, bone-free tissue inside the rib cage (closed across the costal margin by the ribs above), above the
left dome (below the heart's lowest point BELOW_HEART_DOME_MM above it), left of the spine, away from the
descending aorta (outside the aorta tracked down from the slices where aerated lung outlines it,
``lungai.lung.aorta``, and away from the vertebral body; without a track, AORTA_CLEARANCE_MM from the vertebral
body centre) and outside that ellipsoid grown by HEART_MARGIN_MM, joined in the slice to the left lung, is
lung. Nothing changes in other slices or when no
plausible heart is found (semi-axes HEART_RADII_MM, MIN_INLIER_FRACTION of the border on it, centre in front of
and not right of the spine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image

from lungai.arrays import bounding_box, nearest_along
from lungai.labels import LEFT_LUNG, RIGHT_LUNG
from lungai.lung.aorta import AortaTrack, aorta_track
from lungai.lung.dome import AERATED_HU, BONE_HU, soft_tissue
from lungai.lung.morphology import pieces_holding

HEART_RADII_MM = (35.0, 90.0)  # a plausible heart (with its pericardial fat): every semi-axis in this range
SPINE_CLEARANCE_MM = 50.0      # border points this close to the vertebral body centre are aorta, oesophagus, spine
DOME_CLEARANCE_MM = 10.0       # ... and points this close above the dome are its top (liver, spleen), not heart;
MIN_GAP_MM = 50.0              # ... border points lie between lungs this far apart (narrower: junction lines,
                               # oesophagus, the vessels behind the heart)
MIN_POINTS = 150               # fewest border points to fit
MAX_POINTS = 4000              # the fit uses at most this many (evenly thinned)
RANSAC_TRIALS = 300
RANSAC_SAMPLE = 12
INLIER_MM = 4.0                # a border point this close to the ellipsoid supports it
MIN_INLIER_FRACTION = 0.6      # ... and at least this share of the points must (a rougher fit is no outline)
HEART_MARGIN_MM = 4.0          # tissue this close outside the fitted heart is still heart (or its wall)
CAGE_DEPTH_MM = 6.0            # lung is taken only this deep inside the rib cage (not intercostal or chest wall),
CLOSED_CAGE_MM = 40.0          # ... or this deep inside the cage closed by the bone of the slices up to
CLOSED_CAGE_DEPTH_MM = 10.0    # CLOSED_CAGE_MM above (the costal margin: the low ribs and cartilages leave the
                               # slice's own cage open in front),
ABOVE_SHARE = 0.5              # ... in the slices up to this share of the heart's half-height above its centre,
BELOW_HEART_DOME_MM = 7.0      # ... below the heart's lowest point only this far above the left dome (lowered
                               # under a consolidated base, it lies up to two slices below the true one in front:
                               # the stomach wall and the spleen's top),
AORTA_CLEARANCE_MM = 60.0      # ... farther than this from the vertebral body centre (descending aorta, oesophagus)
MIDLINE_CLEARANCE_MM = 10.0    # ... and this far left of it;
AORTA_MARGIN_MM = 8.0          # with a tracked descending aorta (lungai.lung.aorta) instead farther than this from
VERTEBRA_MARGIN_MM = 12.0      # its outline and this from the vertebral body's bone (within VERTEBRA_REACH_MM of
VERTEBRA_REACH_MM = 30.0       # the centre, in the slices within VERTEBRA_REACH_MM above and below: the discs)


@dataclass(frozen=True)
class Ellipsoid:
    """``(p - centre)^T matrix (p - centre) = 1`` on the surface; points (z, y, x) in mm."""

    centre: np.ndarray
    matrix: np.ndarray

    @property
    def radii(self) -> np.ndarray:
        """Semi-axes (mm), longest first."""
        return 1.0 / np.sqrt(np.linalg.eigvalsh(self.matrix))

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Signed distance (mm) of points from the surface along the ray from the centre (> 0 outside)."""
        d = np.asarray(points, dtype=float) - self.centre
        r = np.linalg.norm(d, axis=-1)
        s = np.sqrt(np.maximum(np.einsum("...i,ij,...j->...", d, self.matrix, d), 1e-12))
        return r * (1.0 - 1.0 / s)


def _algebraic_fit(p: np.ndarray) -> Optional[Ellipsoid]:
    """Least-squares quadric ``a y^2 + b x^2 + c xy + d z^2 + e y + f x + g z = 1`` (axes in the axial plane
    rotated, the third along z) through points ``p`` (z, y, x), as an ellipsoid; None when the quadric is not one.
    The points must surround the origin's side of the surface (the origin inside), as centred points do."""
    z, y, x = p.T
    design = np.column_stack([y * y, x * x, x * y, z * z, y, x, z])
    coef, *_ = np.linalg.lstsq(design, np.ones(len(p)), rcond=None)
    a, b, c, d, e, f, g = coef
    matrix = np.array([[d, 0.0, 0.0], [0.0, a, c / 2], [0.0, c / 2, b]])
    if np.linalg.det(matrix) <= 0 or np.any(np.linalg.eigvalsh(matrix) <= 0):
        return None
    centre = np.linalg.solve(2.0 * matrix, -np.array([g, e, f]))
    k = 1.0 + centre @ matrix @ centre
    if k <= 0:
        return None
    return Ellipsoid(centre, matrix / k)


def fit_ellipsoid(points: np.ndarray, radii_mm: Tuple[float, float] = HEART_RADII_MM,
                  inlier_mm: float = INLIER_MM, seed: int = 0) -> Optional[Ellipsoid]:
    """Ellipsoid (axes: two in the axial plane, one along z) through surface points (z, y, x in mm) covering
    part of it: RANSAC over samples of RANSAC_SAMPLE points, keeping only ellipsoids with every semi-axis within
    ``radii_mm``, then least squares on the supporting points (within ``inlier_mm``) until they no longer change.
    None when no plausible ellipsoid is supported by MIN_INLIER_FRACTION of the points."""
    points = np.asarray(points, dtype=float)
    if len(points) < RANSAC_SAMPLE:
        return None
    mean, scale = points.mean(axis=0), 50.0
    p = (points - mean) / scale
    rng = np.random.default_rng(seed)

    def in_mm(fit: Optional[Ellipsoid]) -> Optional[Ellipsoid]:
        if fit is None:
            return None
        e = Ellipsoid(fit.centre * scale + mean, fit.matrix / scale ** 2)
        r = e.radii
        return e if radii_mm[0] <= r.min() and r.max() <= radii_mm[1] else None

    best, best_support = None, None
    for _ in range(RANSAC_TRIALS):
        e = in_mm(_algebraic_fit(p[rng.choice(len(p), RANSAC_SAMPLE, replace=False)]))
        if e is None:
            continue
        support = np.abs(e.distance(points)) <= inlier_mm
        if best_support is None or support.sum() > best_support.sum():
            best, best_support = e, support
    if best is None:
        return None
    for _ in range(10):
        e = in_mm(_algebraic_fit(p[best_support]))
        if e is None:
            break
        support = np.abs(e.distance(points)) <= inlier_mm
        if support.sum() < best_support.sum():
            break
        best, settled = e, np.array_equal(support, best_support)
        best_support = support
        if settled:
            break
    return best if best_support.mean() >= MIN_INLIER_FRACTION else None


def _gap_mm(lungs: np.ndarray, axis: int, step_mm: float) -> np.ndarray:
    """Per pixel, the length (mm) of the run of non-lung pixels holding it along ``axis`` (1 rows of a slice
    front to back, 2 left to right) when lung ends it on both sides; 0 where lung lies on one side only."""
    last, following = nearest_along(lungs, axis)
    both = (last >= 0) & (following < lungs.shape[axis])
    return np.where(both, (following - last - 1) * step_mm, 0.0)


def _bronchi_split(hilum: np.ndarray) -> int:
    """The highest slice where the hilar zone (around the central airways) is in two pieces, the main bronchi
    apart below the carina: above it the mediastinum holds the great vessels, not the heart (0 when none)."""
    box = bounding_box(hilum)
    for z in range(box[0].stop - 1, box[0].start - 1, -1):
        if ndimage.label(hilum[z, box[1], box[2]], np.ones((3, 3), dtype=bool))[1] >= 2:
            return z
    return 0


def border_points(labels: np.ndarray, hu: np.ndarray, spacing: Tuple[float, float, float],
                  centres: np.ndarray, hilum: np.ndarray, domes: dict) -> np.ndarray:
    """(z, y, x) mm of the mediastinal tissue voxels touching aerated lung in their slice: below the carina
    (:func:`_bronchi_split`), outside the hilar zone, more
    than DOME_CLEARANCE_MM above the dome of that lung, in front of the vertebral body and more than
    SPINE_CLEARANCE_MM from its centre, and between the lungs: along the axis on which it touches the lung, lung
    lies on both sides of it, at least MIN_GAP_MM apart (the chest wall has lung on one side only; the oesophagus,
    the junction lines and the column of vessels behind the heart are narrower)."""
    lungs = (labels == RIGHT_LUNG) | (labels == LEFT_LUNG)
    top = _bronchi_split(hilum)
    if top < 2:
        return np.zeros((0, 3))
    box = (slice(0, top),) + bounding_box(lungs[:top])[1:]
    lab, h = labels[box], hu[box]
    tissue = (lab == 0) & (h > AERATED_HU)
    wide = [_gap_mm(lungs[box], axis, spacing[axis]) >= MIN_GAP_MM for axis in (1, 2)]
    points = np.zeros_like(tissue)
    for side in (RIGHT_LUNG, LEFT_LUNG):
        aerated = (lab == side) & (h < AERATED_HU)
        touching = np.zeros_like(tissue)
        touching[:, 1:] |= aerated[:, :-1]
        touching[:, :-1] |= aerated[:, 1:]
        touching &= wide[0]
        across = np.zeros_like(tissue)
        across[:, :, 1:] |= aerated[:, :, :-1]
        across[:, :, :-1] |= aerated[:, :, 1:]
        touching |= across & wide[1]
        dome = domes[side][box[1:]]
        points |= touching & tissue & (np.arange(top)[:, None, None] * spacing[0]
                                       > dome[None] * spacing[0] + DOME_CLEARANCE_MM)
    points &= ~hilum[box]
    zz, yy, xx = np.nonzero(points)
    yy, xx = yy + box[1].start, xx + box[2].start
    cy, cx = centres[zz, 0], centres[zz, 1]
    away = np.isfinite(cy) & (yy < cy) & (np.hypot((yy - cy) * spacing[1], (xx - cx) * spacing[2])
                                          > SPINE_CLEARANCE_MM)
    return np.column_stack([zz[away], yy[away], xx[away]]) * np.asarray(spacing)


def fit_heart(labels: np.ndarray, hu: np.ndarray, spacing: Tuple[float, float, float], centres: np.ndarray,
              hilum: Optional[np.ndarray], domes: Optional[dict]) -> Optional[Ellipsoid]:
    """The heart (with its pericardial fat) as an ellipsoid fitted to its border with the aerated lungs
    (:func:`border_points`); None without a hilum or domes, with too few points, or when the fit is not a
    plausible heart (centre in front of the spine, not right of it)."""
    if hilum is None or not hilum.any() or domes is None:
        return None
    points = border_points(labels, hu, spacing, centres, hilum, domes)
    if len(points) < MIN_POINTS:
        return None
    points = points[:: int(np.ceil(len(points) / MAX_POINTS))]
    heart = fit_ellipsoid(points)
    if heart is None:
        return None
    k = int(np.clip(np.rint(heart.centre[0] / spacing[0]), 0, labels.shape[0] - 1))
    cy, cx = centres[k] * np.asarray(spacing[1:]) if np.isfinite(centres[k]).all() else (np.nan, np.nan)
    if not (heart.centre[1] < cy and heart.centre[2] >= cx):
        return None
    return heart


def _deep_inside(bone: np.ndarray, spacing: Tuple[float, float], depth_mm: float) -> np.ndarray:
    """Pixels of a slice inside the convex hull of ``bone`` and deeper than ``depth_mm`` from the hull and from
    bone."""
    if bone.sum() < 3:
        return np.zeros_like(bone)
    hull = convex_hull_image(bone)
    return ndimage.distance_transform_edt(hull & ~bone, sampling=spacing) > depth_mm


def _inside_cage(cage: np.ndarray, spacing: Tuple[float, float]) -> np.ndarray:
    """Pixels of the first slice of ``cage`` (rib-cage bone of that slice and of the slices above it, up to
    CLOSED_CAGE_MM) deeper than CAGE_DEPTH_MM inside its own cage, or deeper than CLOSED_CAGE_DEPTH_MM inside the
    cage closed by the bone of all of them. Below the sternum the low ribs and costal cartilages leave a slice's
    cage open in front, and the consolidated lobe between the chest wall and the heart or stomach lies outside
    its hull; the ribs and sternum above outline the chest there (they lie in the chest-wall muscle of the
    slices below them, hence the deeper limit)."""
    return _deep_inside(cage[0], spacing, CAGE_DEPTH_MM) | _deep_inside(cage.any(axis=0), spacing,
                                                                       CLOSED_CAGE_DEPTH_MM)


def around_the_heart(labels: np.ndarray, hu: np.ndarray, body: np.ndarray, spacing: Tuple[float, float, float],
                     cage: np.ndarray, centres: np.ndarray, hilum: Optional[np.ndarray], domes: Optional[dict],
                     slices: np.ndarray) -> np.ndarray:
    """Labels ([S, P, L]) with the consolidated left lung around the heart fitted from its border
    (:func:`fit_heart`) added in ``slices`` (module docstring); unchanged when no plausible heart is found."""
    if not slices.any() or domes is None:
        return labels
    heart = fit_heart(labels, hu, spacing, centres, hilum, domes)
    if heart is None:
        return labels
    aorta = aorta_track(labels, hu, spacing, centres, (labels == LEFT_LUNG).any(axis=(1, 2)), slices)
    return beside_heart(labels, hu, body, spacing, cage, centres, domes[LEFT_LUNG], slices, heart, aorta)


def _vertebra_clear(hu: np.ndarray, centres: np.ndarray, z: int, spacing: Tuple[float, float, float]) -> np.ndarray:
    """Pixels of slice ``z`` farther than VERTEBRA_MARGIN_MM from the vertebral body's bone: bone within
    VERTEBRA_REACH_MM of the centre in the slices within VERTEBRA_REACH_MM (so that a disc slice has its body)."""
    reach = int(round(VERTEBRA_REACH_MM / spacing[0]))
    yy, xx = np.indices(hu.shape[1:])
    near = np.hypot((yy - centres[z, 0]) * spacing[1], (xx - centres[z, 1]) * spacing[2]) <= VERTEBRA_REACH_MM
    bone = (hu[max(0, z - reach):z + reach + 1] >= BONE_HU).any(axis=0) & near
    if not bone.any():
        return ~near
    return ndimage.distance_transform_edt(~bone, sampling=spacing[1:]) > VERTEBRA_MARGIN_MM


def beside_heart(labels: np.ndarray, hu: np.ndarray, body: np.ndarray, spacing: Tuple[float, float, float],
                 cage: np.ndarray, centres: np.ndarray, left_dome: np.ndarray, slices: np.ndarray,
                 heart: Ellipsoid, aorta: Optional[AortaTrack] = None) -> np.ndarray:
    """Labels ([S, P, L]) with fat-free, bone-free tissue added to the left lung in those of ``slices`` beside
    and below ``heart`` (up to ABOVE_SHARE of its half-height above its centre: above it the aorta and pulmonary
    trunk leave it, which the ellipsoid does not outline) where it lies outside the heart grown by
    HEART_MARGIN_MM, deeper than CAGE_DEPTH_MM inside the rib cage (``cage``, bone in front of the vertebral
    body) or CLOSED_CAGE_DEPTH_MM inside the cage closed by the slices above (:func:`_inside_cage`), at or above
    ``left_dome`` (slices per column; below the heart's lowest point at least BELOW_HEART_DOME_MM above it, and
    only in the run of ``slices`` reaching up to the heart: in front, under the lobe, lie the stomach fundus and
    the spleen), in front of the vertebral body centre (``centres``), more than
    MIDLINE_CLEARANCE_MM left of it and AORTA_CLEARANCE_MM from it (with a tracked ``aorta``: AORTA_MARGIN_MM
    outside it and VERTEBRA_MARGIN_MM from the vertebral body's bone instead), and joined in the slice to the
    left lung."""
    out = labels.copy()
    half_height = 1.0 / np.sqrt(heart.matrix[0, 0])
    z_mm = np.arange(labels.shape[0]) * spacing[0] - heart.centre[0]
    slices = slices & (z_mm < ABOVE_SHARE * half_height)
    below = z_mm <= -half_height
    # below the heart only the consolidation running down from it (not an isolated partial-volume lung bottom)
    slices[below] &= np.flip(np.logical_and.accumulate(np.flip(slices[below])))
    yy, xx = np.indices(labels.shape[1:])
    above = int(round(CLOSED_CAGE_MM / spacing[0]))
    for z in np.flatnonzero(slices):
        if not np.isfinite(centres[z]).all():
            continue
        lift = BELOW_HEART_DOME_MM / spacing[0] if below[z] else 0.0
        add = (out[z] == 0) & body[z] & soft_tissue(hu[z]) & (z >= left_dome + lift)
        dy, dx = (yy - centres[z, 0]) * spacing[1], (xx - centres[z, 1]) * spacing[2]
        add &= dx > MIDLINE_CLEARANCE_MM
        if aorta is None:
            add &= np.hypot(dy, dx) > AORTA_CLEARANCE_MM
        else:
            ay, ax = aorta.centre(z)
            add &= np.hypot((yy - ay) * spacing[1], (xx - ax) * spacing[2]) > aorta.radius_mm + AORTA_MARGIN_MM
            add &= _vertebra_clear(hu, centres, z, spacing)
        front = int(np.floor(centres[z, 0]))
        add[front:] = False  # behind the spine: the gutters, the back and the table under it
        if not add.any():
            continue
        points = np.stack([np.full(yy.shape, z * spacing[0]), yy * spacing[1], xx * spacing[2]], axis=-1)
        add &= heart.distance(points) > HEART_MARGIN_MM
        bone = cage[z:z + above + 1].copy()
        bone[:, front + 1:] = False
        add &= _inside_cage(bone, spacing[1:])
        own = out[z] == LEFT_LUNG
        pieces, n = ndimage.label(add | own, np.ones((3, 3), dtype=bool))
        out[z][add & pieces_holding(pieces, n, own)] = LEFT_LUNG
    return out
