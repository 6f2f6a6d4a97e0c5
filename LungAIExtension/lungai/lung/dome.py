"""Consolidated lung bases: the lung below a consolidation, down to the diaphragm dome.

A consolidated lower lobe fills the posterior and lateral costophrenic recesses with tissue as dense as the liver
and spleen under the diaphragm, so no slice on its own tells the two apart. The dome is smooth, though: wherever
the lung ends in aerated parenchyma it lies on the dome, and those columns give the dome's shape. Where the lung
instead ends in dense lung (a consolidation reaching down past the last aerated slice), it continues down to the
dome extrapolated from the aerated part, through fat-free, bone-free tissue only, in the columns towards the
posterior and lateral chest wall (never above the heart, the mediastinum or the anterior dome).
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from scipy import ndimage

from lungai.labels import LEFT_LUNG, RIGHT_LUNG

AERATED_HU = -400.0          # a lung bottom this dark lies on the dome
ORGAN_HU = -100.0            # ... when the voxel below it is tissue (diaphragm, liver, spleen)
DENSE_HU = -250.0            # a lung bottom this dense, two voxels deep, is a consolidation cut off above the dome
FAT_HU = (-150.0, -60.0)     # fat-dark voxels (extrapleural and chest-wall fat) are not lung
BONE_HU = 180.0              # ribs and vertebrae
MIN_DOME_COLUMNS = 40        # fewest aerated-bottom columns to fit a dome
DOME_TOLERANCE_MM = 6.0      # columns whose lung bottom lies higher above the fit (heart, hilum) are not dome
RAISED_AERATED_MM = 15.0     # an aerated bottom on tissue this far above the fit may rest on a consolidated recess
MAX_DEPTH_MM = 50.0          # deepest extension below a dense lung bottom
LOBAR_DEPTH_MM = 100.0       # ... down to the dome fitted from both lungs (a consolidated lower lobe)
DOME_REACH_MM = 10.0         # ... down to within this of the dome (fat under the dome's rim ends it early)
MIN_EXTENSION_ML = 3.0       # smallest extension kept (joined columns)
ANTERIOR_LIMIT_DEG = 45.0    # columns within these angles from the lateral direction (seen from the lung's
POSTERIOR_LIMIT_DEG = 135.0  # footprint centre) are recesses; the rest lie over the heart, the mediastinum and the
#                              anterior dome, which rises above a fit of the whole dome
LEFT_BELOW_RIGHT_MM = 10.0   # under a consolidated left base the left hemidiaphragm lies at least this far below the
#                              right one (normally 1-2 cm lower)


def _design(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(y), y, x, y * y, x * y, x * x], axis=1)


def fit_dome(y: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Quadratic surface ``z(y, x)`` (mm) through the lowest of the given lung-bottom points: points lying more
    than DOME_TOLERANCE_MM above the fit (lung resting on the heart) are dropped and the fit repeated."""
    return _robust_fit(_design(y, x), z)


def _robust_fit(design: np.ndarray, z: np.ndarray) -> np.ndarray:
    keep = np.ones(z.size, dtype=bool)
    coef = np.zeros(design.shape[1])
    for _ in range(6):
        coef = np.linalg.lstsq(design[keep], z[keep], rcond=None)[0]
        new = z - design @ coef <= DOME_TOLERANCE_MM
        if new.sum() < MIN_DOME_COLUMNS or np.array_equal(new, keep):
            break
        keep = new
    return coef


def soft_tissue(hu: np.ndarray) -> np.ndarray:
    """Denser than aerated lung, neither fat (chest wall, mediastinum) nor bone: what consolidated lung can be."""
    return (hu > AERATED_HU) & (hu < BONE_HU) & ~((hu > FAT_HU[0]) & (hu < FAT_HU[1]))


def recess_columns(footprint: np.ndarray, side: int, spacing: Tuple[float, float],
                   anterior_limit_deg: float = ANTERIOR_LIMIT_DEG,
                   posterior_limit_deg: float = POSTERIOR_LIMIT_DEG) -> np.ndarray:
    """Columns of the footprint lying towards the lateral or posterior chest wall from its centre: within the
    given angles from the lateral direction, anteriorly and posteriorly."""
    ys, xs = np.nonzero(footprint)
    dy, dx = (ys - ys.mean()) * spacing[0], (xs - xs.mean()) * spacing[1]
    lateral = -1.0 if side == RIGHT_LUNG else 1.0
    angle = np.degrees(np.arctan2(np.abs(dy), dx * lateral))
    allowed = np.where(dy > 0, angle <= posterior_limit_deg, angle <= anterior_limit_deg)
    out = np.zeros_like(footprint)
    out[ys[allowed], xs[allowed]] = True
    return out


def _dome_points(lung: np.ndarray, hu: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Footprint columns (ys, xs), their lung bottoms, and which bottoms are aerated lung resting on tissue."""
    ys, xs = np.nonzero(lung.any(axis=0))
    b = np.argmax(lung, axis=0)[ys, xs]
    at = hu[b, ys, xs]
    under = hu[np.maximum(b - 1, 0), ys, xs]
    return ys, xs, b, (at < AERATED_HU) & (b > 0) & (under > ORGAN_HU)


def _mirrored_design(y: np.ndarray, x: np.ndarray, this_side: np.ndarray) -> np.ndarray:
    """Quadratic in (y, distance from the midline) plus an offset for one hemidiaphragm."""
    return np.column_stack([_design(y, x), this_side.astype(float)])


def _joint_dome(points: dict, side: int, midline: float, ys: np.ndarray, xs: np.ndarray,
                spacing: Tuple[float, float, float], left_base_consolidated: bool = False) -> np.ndarray:
    """Dome height (working-grid slices) of ``side`` at columns (ys, xs) from the aerated lung bottoms of both
    lungs: one quadratic shape mirrored at the midline, each hemidiaphragm at its own height. With
    ``left_base_consolidated`` the left one lies at least LEFT_BELOW_RIGHT_MM below the right one: its aerated
    bottoms then rest on the consolidated lobe and the heart, above the dome, and give it no height."""
    sz, sy, sx = spacing
    py = np.concatenate([p[0][p[3]] for p in points.values()]) * sy
    px = np.abs(np.concatenate([p[1][p[3]] for p in points.values()]) - midline) * sx
    pz = np.concatenate([p[2][p[3]] for p in points.values()]) * sz
    mine = np.concatenate([np.full(int(p[3].sum()), s == side) for s, p in points.items()])
    joint = _robust_fit(_mirrored_design(py, px, mine), pz)
    if left_base_consolidated and side == LEFT_LUNG:
        joint[-1] = min(joint[-1], -LEFT_BELOW_RIGHT_MM)  # the offset of this side from the other one
    return _mirrored_design(ys * sy, np.abs(xs - midline) * sx, np.ones(ys.size, bool)) @ joint / sz


def _both_lungs_points(labels: np.ndarray, hu: np.ndarray) -> Tuple[dict, Optional[float]]:
    """Per lung its dome points (``_dome_points``), and the midline column when both lungs have enough aerated
    bottoms to fit the joint dome (else None)."""
    points = {side: _dome_points(labels == side, hu) for side in (RIGHT_LUNG, LEFT_LUNG)}
    if not all(p[0].size and p[3].sum() >= MIN_DOME_COLUMNS for p in points.values()):
        return points, None
    return points, 0.5 * (points[RIGHT_LUNG][1].min() + points[LEFT_LUNG][1].max())


def joint_domes(labels: np.ndarray, hu: np.ndarray, spacing: Tuple[float, float, float],
                left_base_consolidated: bool = False) -> Optional[dict]:
    """Per lung, the dome height (slices) of every column of the slice plane, from both lungs' aerated bottoms
    (the left one lowered under a consolidated left base, see :func:`_joint_dome`); None when either lung has too
    few of them."""
    points, midline = _both_lungs_points(labels, hu)
    if midline is None:
        return None
    ys, xs = np.indices(labels.shape[1:]).reshape(2, -1)
    return {side: _joint_dome(points, side, midline, ys, xs, spacing, left_base_consolidated).reshape(
        labels.shape[1:])
            for side in points}


def extend_to_dome(labels: np.ndarray, hu: np.ndarray, body: np.ndarray,
                   spacing: Tuple[float, float, float]) -> np.ndarray:
    """Labels ([S, P, L], index 0 inferior) with each lung's dense bottom continued down to its dome."""
    out = labels.copy()
    sz, sy, sx = spacing
    points, midline = _both_lungs_points(labels, hu)
    for side in (RIGHT_LUNG, LEFT_LUNG):
        lung = out == side
        footprint = lung.any(axis=0)
        if footprint.sum() < MIN_DOME_COLUMNS:
            continue
        ys, xs, b, on_dome = points[side]
        at = hu[b, ys, xs]
        over = hu[np.minimum(b + 1, hu.shape[0] - 1), ys, xs]
        if on_dome.sum() < MIN_DOME_COLUMNS:
            continue
        coef = fit_dome(ys[on_dome] * sy, xs[on_dome] * sx, b[on_dome] * sz)
        dome = _design(ys * sy, xs * sx) @ coef / sz
        dense = (at > DENSE_HU) & (over > DENSE_HU)
        # dense "lung" well below the dome is the liver or spleen that the chest-wall rays took beside a basal
        # crescent of lung
        for i in np.flatnonzero(dense & (dome - b > DOME_TOLERANCE_MM / sz)):
            below = slice(0, int(np.floor(dome[i] - DOME_TOLERANCE_MM / sz)) + 1)
            column = out[below, ys[i], xs[i]]
            column[(column == side) & (hu[below, ys[i], xs[i]] > AERATED_HU)] = 0
        # an aerated bottom resting on tissue is itself on the dome, unless far above the fit (a consolidated
        # recess below it)
        raised = (b - dome > DOME_TOLERANCE_MM / sz) & (~on_dome | (b - dome > RAISED_AERATED_MM / sz))
        max_steps = np.full(ys.size, int(MAX_DEPTH_MM // sz))
        if midline is not None:
            # both hemidiaphragms share one shape, mirrored at the midline, each at its own height: the
            # contralateral lung gives the dome under a lower lobe consolidated down to its recesses
            joint_dome = _joint_dome(points, side, midline, ys, xs, spacing)
            dome = np.where(dense, np.minimum(dome, joint_dome), dome)
            max_steps[dense] = int(LOBAR_DEPTH_MM // sz)
        target = np.ceil(dome - 0.5).astype(int)
        recess = recess_columns(footprint, side, (sy, sx))[ys, xs]
        chosen = (dense | raised) & recess & (target >= 0) & (b - target >= 1) & (b - target <= max_steps)
        if not chosen.any():
            continue
        ys, xs, b, target = ys[chosen], xs[chosen], b[chosen], target[chosen]
        # the column is taken only when fat-free, bone-free tissue runs down to the dome (to within
        # DOME_REACH_MM: fat under the dome's rim), and filled as far as that tissue runs
        depth = b - target
        run = np.zeros(ys.size, dtype=int)
        for step in range(1, int(depth.max()) + 1):
            z = np.maximum(b - step, 0)
            ok = body[z, ys, xs] & (out[z, ys, xs] == 0) & soft_tissue(hu[z, ys, xs])
            run += ok & (run == step - 1) & (step <= depth)
        reaches = (run > 0) & ((depth - run) * sz <= DOME_REACH_MM)
        # a few ml at the rim of the recess is the fit's error there, not a consolidation
        columns = np.zeros(footprint.shape, dtype=np.int32)
        columns[ys[reaches], xs[reaches]] = run[reaches]
        groups, n = ndimage.label(columns > 0, np.ones((3, 3), dtype=bool))
        volume_ml = np.bincount(groups.ravel(), weights=columns.ravel(), minlength=n + 1) * sz * sy * sx / 1000.0
        reaches &= volume_ml[groups[ys, xs]] >= MIN_EXTENSION_ML
        for step in range(1, int(run.max(initial=0)) + 1):
            take = reaches & (step <= run)
            out[b[take] - step, ys[take], xs[take]] = side
    return out
