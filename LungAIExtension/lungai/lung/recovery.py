"""Recovery of dense lung (consolidation, dense ground-glass, effusion) that a threshold mask loses.

Aerated lung ends where consolidation begins, so diseased lung at the pleura and around the hilum drops out of an
air mask. These steps put it back:

* chest-wall rays: in each axial slice, rays from the centre of each lung find the outer edge of the aerated lung
  and the first rib beyond it. In healthy directions the gap is only pleura and the thin inner chest wall, a margin
  measured on the same slice; where the gap is wider and fat-free, the tissue in between is lung that lost its air.
  Rays towards the mediastinum are not used, bones off the interpolated rib cage (clavicle, scapula) are
  ignored, and pieces smaller than MIN_LAYER_MM2 in a slice are dropped (chest wall between the pleura and a rib
  set farther out), which keeps heart, great vessels, chest-wall muscle, breast and abdomen out; the left lung's
  rays take nothing in the descending aorta's sector beside the spine (``paravertebral.beside_the_aorta``);
* enclosure: dense tissue with this lung on both sides along most axes through it (consolidation against the heart
  or spine, which the rays do not see); near the central airways nearly all axes (hilar vessels and soft tissue);
* consolidated bases (``dome``), the mirrored other lung (``contralateral``), the right paravertebral gutter
  (``paravertebral``), dense tissue bridged between aerated slices (``bridging``) and consolidated slices
  filled out from the neighbouring slice's lung and between parts of the lung in the slice (``propagation``);
* enclosure once more, beside the lung these steps added only: they put lung on the far side of consolidation that
  had lung on one side only (against the mediastinum, in the gutters);
* the consolidated left lung around the heart (``heart``): in the left lung's consolidated slices, tissue outside
  an ellipsoid fitted to the heart's border with the aerated lungs;
* slice completion: a voxel that is lung in the slices above and below.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from scipy import ndimage

from lungai.arrays import bounding_box
from lungai.labels import LEFT_LUNG, RIGHT_LUNG
from lungai.lung.bridging import bridge_across_slices
from lungai.lung.contralateral import mirrored_consolidation
from lungai.lung.dome import BONE_HU, FAT_HU, extend_to_dome, joint_domes
from lungai.lung.heart import around_the_heart
from lungai.lung.morphology import fill_holes_slices, large_pieces, or_shifted, pieces_holding
from lungai.lung.paravertebral import beside_the_aorta, right_gutter, vertebral_centres
from lungai.lung.propagation import (consolidated_slices, left_base_consolidated, left_lung_lost,
                                     propagate_outline)

N_RAYS = 120
MIN_VALID_RAYS = 8          # fewest rays meeting the cage (and healthy rays) for a slice to be judged
MAX_GAP_MM = 80.0           # deepest dense layer recovered between aerated lung and rib
MIN_EXCESS_MM = 4.0         # gap beyond the healthy margin that counts as dense lung
MAX_SPAN_RAYS = 30          # the rib cage is interpolated between healthy rays at most 90 degrees apart
RIB_TOLERANCE_MM = 10.0     # a rib hit this far from the interpolated cage is another bone (clavicle, scapula)
BRIDGE_RAYS = 8             # rays between ribs are used this close (24 degrees) to a rib-confirmed dense ray
BRIDGE_DEPTH_FACTOR = 1.5   # ... and to at most this times its depth (plus BRIDGE_DEPTH_SLACK_MM)
BRIDGE_DEPTH_SLACK_MM = 4.0
ENCLOSED_REACH_MM = 25.0    # dense tissue with this lung within this distance on both sides ...
ENCLOSED_MIN_AXES = 7       # ... along this many of the 13 axes is lung
MAX_FAT_FRACTION = 0.15     # a gap with more fat-dark samples than this is chest wall, not dense lung
ANTERIOR_LIMIT_DEG = 100.0  # allowed ray angles from the lateral direction, towards the front
POSTERIOR_LIMIT_DEG = 120.0  # ... and towards the back (not the left paravertebral gutter: descending aorta)
POSTERIOR_LIMIT_RIGHT_DEG = 140.0  # the right gutter holds only the azygos vein and oesophagus beside the spine
MIN_LUNG_AREA_MM2 = 150.0
MIN_LAYER_MM2 = 80.0         # smallest dense layer a slice's rays recover (smaller pieces are chest wall)
HILUM_MM = 10.0              # near the central airways (hilum) the enclosure test is stricter:
HILUM_MIN_AXES = 10          # ... lung on both sides along this many of the 13 axes
CAGE_REACH_MM = 6.0          # ribs of the slices this close above and below complete the cage of a slice
CONSOLIDATED_ANTERIOR_LIMIT_DEG = 85.0  # rays once more in the left lung's consolidated slices: up to here in front
CONSOLIDATED_RAY_PASSES = 2  # ... cast from the lung grown by the pass before


def _circular_runs(missing: np.ndarray) -> np.ndarray:
    """Length of the run of consecutive ``True`` (wrapping around) each element belongs to; 0 where False."""
    n = missing.size
    if missing.all():
        return np.full(n, n)
    start = int(np.argmin(missing))  # begin at a False so runs do not wrap
    rolled = np.roll(missing, -start)
    out = np.zeros(n, dtype=int)
    i = 0
    while i < n:
        if rolled[i]:
            j = i
            while j < n and rolled[j]:
                j += 1
            out[i:j] = j - i
            i = j
        else:
            i += 1
    return np.roll(out, start)


def _recover_slice(lung: np.ndarray, side: int, hu: np.ndarray, occupied: np.ndarray, body: np.ndarray,
                   spacing: Tuple[float, float], cage: np.ndarray,
                   anterior_limit_deg: float = ANTERIOR_LIMIT_DEG,
                   reference_margin: Optional[float] = None) -> Tuple[np.ndarray, Optional[float]]:
    """Dense layer between this lung and its rib cage in one slice, and the healthy lung-to-rib margin measured
    on the slice (None when the slice's own rays do not judge it). With ``reference_margin`` (the other lung's
    margin in the slice), a lung with no aerated edge against its ribs (too few healthy rays, or a margin more
    than MIN_EXCESS_MM wider) is measured against it, the cage being where its rays meet bone."""
    sy, sx = spacing
    nothing = np.zeros_like(lung), None
    if lung.sum() * sy * sx < MIN_LUNG_AREA_MM2:
        return nothing
    cy, cx = ndimage.center_of_mass(lung)
    step = min(sy, sx)
    radii = np.arange(0.0, 250.0, step)
    theta = np.arange(N_RAYS) * (2 * np.pi / N_RAYS)
    yy = np.rint(cy + np.outer(np.sin(theta), radii) / sy).astype(int)
    xx = np.rint(cx + np.outer(np.cos(theta), radii) / sx).astype(int)
    inside = (yy >= 0) & (yy < lung.shape[0]) & (xx >= 0) & (xx < lung.shape[1])
    yc, xc = np.clip(yy, 0, lung.shape[0] - 1), np.clip(xx, 0, lung.shape[1] - 1)
    on_lung = lung[yc, xc] & inside
    ray_hu = np.where(inside, hu[yc, xc], -1000.0)
    in_body = body[yc, xc] & inside
    has_lung = on_lung.any(axis=1)
    m = radii.size
    last_lung = np.where(has_lung, m - 1 - np.argmax(on_lung[:, ::-1], axis=1), -1)
    beyond = np.arange(m)[None, :] > last_lung[:, None]
    # a ray ends where it leaves the body or meets the other lung or the airways; air pockets in a
    # consolidation (air bronchograms, spared lobules) do not end it
    stop = beyond & (~in_body | (occupied[yc, xc] & ~on_lung & inside))
    stop_at = np.where(stop.any(axis=1), np.argmax(stop, axis=1), m)
    bone = beyond & cage[yc, xc] & inside & (np.arange(m)[None, :] < stop_at[:, None])
    bone_at = np.where(bone.any(axis=1), np.argmax(bone, axis=1), -1).astype(float)
    gap = (bone_at - last_lung) * step
    valid = has_lung & (bone_at >= 0) & (gap <= MAX_GAP_MM)
    k = np.arange(N_RAYS)
    rib_hit = bone_at * step
    judged = valid.sum() >= max(MIN_VALID_RAYS, has_lung.sum() // 4)
    if judged:
        healthy_margin = float(np.percentile(gap[valid], 30))
        healthy = valid & (gap <= healthy_margin + MIN_EXCESS_MM)
        judged = healthy.sum() >= max(MIN_VALID_RAYS, has_lung.sum() // 6)
    if reference_margin is not None and valid.sum() >= MIN_VALID_RAYS and (
            not judged or healthy_margin > reference_margin + MIN_EXCESS_MM):
        # no aerated edge of this lung against the ribs: the margin is the other lung's, the cage where the
        # rays meet it
        judged = False
        healthy_margin = reference_margin
        expected_rib = np.where(valid, rib_hit, np.nan)
    elif judged:
        # where the rib cage is: interpolated between healthy rays (lung touching the ribs), over spans of rays
        # that meet bone farther out (a dense layer, or another bone) of at most MAX_SPAN_RAYS; rays meeting no
        # bone (between ribs, below the cage) neither anchor nor break the interpolation
        expected_rib = np.interp(k, k[healthy], rib_hit[healthy], period=N_RAYS)
        expected_rib[_circular_runs(valid & ~healthy) > MAX_SPAN_RAYS] = np.nan
    else:
        return nothing
    own_margin = healthy_margin if judged else None
    with np.errstate(invalid="ignore"):
        on_cage = valid & (np.abs(rib_hit - expected_rib) <= RIB_TOLERANCE_MM)
    lateral = -1.0 if side == RIGHT_LUNG else 1.0
    angle = np.degrees(np.arccos(np.clip(np.cos(theta) * lateral, -1, 1)))
    posterior = np.sin(theta) > 0
    posterior_limit = POSTERIOR_LIMIT_RIGHT_DEG if side == RIGHT_LUNG else POSTERIOR_LIMIT_DEG
    allowed = np.where(posterior, angle <= posterior_limit, angle <= anterior_limit_deg)
    lung_edge = (last_lung + 0.5) * step
    with np.errstate(invalid="ignore"):
        # a dense layer: the air ends well before the rib cage, taken from the rib this ray meets when that
        # rib lies on the cage, or from the cage itself when the ray passes
        # between ribs; a ray meeting some other bone (clavicle, scapula, humerus) is not used
        between_ribs = has_lung & (bone_at < 0) & np.isfinite(expected_rib)
        wall = np.where(on_cage, rib_hit, expected_rib) - healthy_margin
        excess = wall - lung_edge
        # consolidation and effusion are fat-free; fat planes between lung and bone mean chest wall
        samples = np.arange(m)[None, :]
        in_gap = beyond & (samples * step <= wall[:, None])
        fat = in_gap & (ray_hu > FAT_HU[0]) & (ray_hu < FAT_HU[1])
        fat_free = fat.sum(axis=1) <= MAX_FAT_FRACTION * np.maximum(in_gap.sum(axis=1), 1)
        deep = allowed & has_lung & fat_free & (excess > MIN_EXCESS_MM) & (excess <= MAX_GAP_MM)
        confirmed = deep & on_cage
        # rays between ribs only extend a layer that a rib-confirmed ray nearby has shown, to a similar depth
        nearby_depth = ndimage.maximum_filter1d(np.where(confirmed, excess, 0.0), 2 * BRIDGE_RAYS + 1, mode="wrap")
        flagged = confirmed | (deep & between_ribs & (excess <= BRIDGE_DEPTH_FACTOR * nearby_depth + BRIDGE_DEPTH_SLACK_MM))
    if not flagged.any():
        return np.zeros_like(lung), own_margin
    limit = np.minimum(np.where(flagged, wall, -1.0), stop_at * step)
    # rasterise: each pixel takes the ray nearest its direction from the lung centre
    reach = int(np.ceil((np.nanmax(np.where(flagged, limit, 0)) + step) / step))
    y0, y1 = max(0, int(cy) - reach), min(lung.shape[0], int(cy) + reach + 1)
    x0, x1 = max(0, int(cx) - reach), min(lung.shape[1], int(cx) + reach + 1)
    py, px = np.mgrid[y0:y1, x0:x1]
    dy, dx = (py - cy) * sy, (px - cx) * sx
    ray = np.rint(np.arctan2(dy, dx) / (2 * np.pi / N_RAYS)).astype(int) % N_RAYS
    r = np.hypot(dy, dx)
    take = flagged[ray] & (r > lung_edge[ray]) & (r <= limit[ray])
    window = hu[y0:y1, x0:x1]
    take &= (window < BONE_HU) & body[y0:y1, x0:x1] & ~occupied[y0:y1, x0:x1]
    take &= ~((window > FAT_HU[0]) & (window < FAT_HU[1]))
    # keep what touches the lung, closing the small gaps between rays
    window_lung = lung[y0:y1, x0:x1]
    closed = ndimage.binary_closing(np.pad(take, 1)).astype(bool)[1:-1, 1:-1] & ~occupied[y0:y1, x0:x1]
    joined, n = ndimage.label(closed | window_lung)
    kept = take & pieces_holding(joined, n, window_lung)
    # a few pixels between the pleura and a rib set farther out are chest wall, not a dense layer
    out = np.zeros_like(lung)
    out[y0:y1, x0:x1] = large_pieces(kept, sy * sx, MIN_LAYER_MM2)
    return out, own_margin


def left_rays_in_consolidated_slices(labels: np.ndarray, hu: np.ndarray, body: np.ndarray,
                                     spacing: Tuple[float, float, float], cage: np.ndarray,
                                     centres: Optional[np.ndarray] = None,
                                     right_margins: Optional[np.ndarray] = None) -> np.ndarray:
    """Labels ([S, P, L]) with the chest-wall rays cast once more from the left lung recovered so far, up to
    CONSOLIDATED_ANTERIOR_LIMIT_DEG in front of the lateral direction, in the slices where it is consolidated
    (``propagation.consolidated_slices``) or mostly lost (``propagation.left_lung_lost``); CONSOLIDATED_RAY_PASSES
    times, each from the lung the pass before grew.

    A consolidated left lower lobe leaves the first rays only its air bronchograms to start from; the later steps
    recover part of it (behind its centre, above the dome), from which the rays reach the consolidated rim along
    the posterior, lateral and anterolateral ribs. Straight ahead they would reach the heart's wall where it
    touches the anterior chest wall. Where the left lung has no aerated edge against its ribs, the right lung's
    lung-to-rib margin in the same slice (``right_margins``, from the first rays) stands for its own; what such
    slices, and slices judged only as mostly lost, add must lie above the left dome fitted from both lungs (the
    spleen and stomach under it reach the ribs below the recess). Nothing is taken beside the descending aorta
    (``paravertebral.beside_the_aorta``).
    """
    out = labels.copy()
    domes, domes_fitted = None, False
    for _ in range(CONSOLIDATED_RAY_PASSES):
        left = out == LEFT_LUNG
        consolidated = consolidated_slices(left, hu, spacing[1] * spacing[2])
        added = np.zeros_like(left)
        needs_dome = np.zeros(out.shape[0], dtype=bool)
        for z in np.flatnonzero(consolidated | left_lung_lost(out, hu)):
            reference = None
            if right_margins is not None and np.isfinite(right_margins[z]):
                reference = float(right_margins[z])
            added[z], own_margin = _recover_slice(left[z], LEFT_LUNG, hu[z], out[z] > 0, body[z], spacing[1:],
                                                  cage[z], CONSOLIDATED_ANTERIOR_LIMIT_DEG, reference)
            needs_dome[z] = own_margin is None or not consolidated[z]
        if centres is not None:
            added &= ~beside_the_aorta(centres, out.shape, spacing)
        if (added & needs_dome[:, None, None]).any():
            if not domes_fitted:
                domes, domes_fitted = joint_domes(labels, hu, spacing), True
            if domes is None:
                added[needs_dome] = False
            else:
                above = np.arange(out.shape[0])[:, None, None] >= domes[LEFT_LUNG][None]
                added &= above | ~needs_dome[:, None, None]
        if not added.any():
            break
        out[added] = LEFT_LUNG
    return out


def _around_the_heart(labels: np.ndarray, hu: np.ndarray, body: np.ndarray, spacing: Tuple[float, float, float],
                      cage: np.ndarray, centres: Optional[np.ndarray], hilum: Optional[np.ndarray]) -> np.ndarray:
    """Labels with the consolidated left lung around the heart fitted from its visible border added
    (``heart.around_the_heart``), in the slices where the left lung is consolidated or mostly lost."""
    if centres is None or hilum is None:
        return labels
    slices = consolidated_slices(labels == LEFT_LUNG, hu, spacing[1] * spacing[2]) | left_lung_lost(labels, hu)
    if not slices.any():
        return labels
    domes = joint_domes(labels, hu, spacing, left_base_consolidated(labels, hu, spacing))
    return around_the_heart(labels, hu, body, spacing, cage, centres, hilum, domes, slices)


def rib_cage(hu: np.ndarray, spacing: Tuple[float, float, float], planar: bool = False) -> np.ndarray:
    """Bone seen by the chest-wall rays: in each slice, bone of that slice or of the slices within
    CAGE_REACH_MM above and below. Ribs run obliquely, so one axial slice cuts only short segments of them and
    rays pass through the intercostal spaces; the neighbouring slices show the rest of the same cage.
    """
    bone = hu >= BONE_HU
    reach = 0 if planar else int(CAGE_REACH_MM // spacing[0])
    if reach == 0:
        return bone
    return ndimage.maximum_filter1d(bone.view(np.uint8), 2 * reach + 1, axis=0).astype(bool)


def _axes() -> np.ndarray:
    """The 13 axes through a voxel and its 26 neighbours (one direction of each opposite pair)."""
    steps = [np.array(d) for d in np.ndindex(3, 3, 3)]
    steps = [d - 1 for d in steps if (d - 1).any()]
    return np.array([d for d in steps if tuple(-d) > tuple(d)])


def _enclosure_axes(planar: bool) -> Tuple[np.ndarray, int, int]:
    """The axes of the enclosure test (the 13 axes, or the 4 in-plane ones of a thin slab) and the axes needed
    outside and inside the hilum (ENCLOSED_MIN_AXES and HILUM_MIN_AXES as shares of 13)."""
    axes = np.array([a for a in _axes() if not (planar and a[0])])
    return (axes, int(np.ceil(ENCLOSED_MIN_AXES * len(axes) / 13.0)),
            int(np.ceil(HILUM_MIN_AXES * len(axes) / 13.0)))


def enclosed_dense(lung: np.ndarray, occupied: np.ndarray, hu: np.ndarray, body: np.ndarray,
                   spacing: Tuple[float, float, float], planar: bool = False,
                   hilum: Optional[np.ndarray] = None) -> np.ndarray:
    """Dense voxels that this lung surrounds: aerated lung within ENCLOSED_REACH_MM on both sides along at
    least ENCLOSED_MIN_AXES of the 13 axes (consolidation next to the heart or spine, which the chest-wall rays
    do not see). Organs beside the lung (heart, liver under the dome) have lung on one side only along most axes.
    A thin slab (``planar``) uses the 4 in-plane axes and the same share of them. Inside ``hilum`` HILUM_MIN_AXES
    are needed: the hilar vessels and soft tissue have lung around them on all sides but the mediastinal one.
    """
    if not lung.any():
        return np.zeros_like(lung)
    reach_vox = [max(1, int(round(ENCLOSED_REACH_MM / s))) for s in spacing]
    box = bounding_box(lung, margin=max(reach_vox))
    sub = lung[box]
    candidates = (~occupied[box]) & body[box] & (hu[box] >= -1000) & (hu[box] < BONE_HU)
    candidates &= ndimage.binary_dilation(sub, iterations=2)
    if not candidates.any():
        return np.zeros_like(lung)
    axes, needed, needed_hilum = _enclosure_axes(planar)
    score = np.zeros(sub.shape, dtype=np.uint8)
    for axis in axes:
        length = float(np.linalg.norm(axis * np.asarray(spacing)))
        n = max(1, int(ENCLOSED_REACH_MM // length))
        forward, backward = np.zeros_like(sub), np.zeros_like(sub)
        for t in range(1, n + 1):
            or_shifted(forward, sub, t * axis)
            or_shifted(backward, sub, -t * axis)
        score += forward & backward
    region = candidates & (score >= needed)
    if hilum is not None:
        region &= ~hilum[box] | (score >= needed_hilum)
    out = np.zeros_like(lung)
    out[box] = region
    return out


def hilar_zone(airways: np.ndarray, lungs: np.ndarray, spacing: Tuple[float, float, float]) -> np.ndarray:
    """Voxels within HILUM_MM of the central airways: the trachea and the bronchi not wrapped by lung in their
    axial slice (main bronchi entering the hilum; not bronchi inside a lobe, around which dense tissue is lung)."""
    out = np.zeros_like(airways)
    if not airways.any():
        return out
    # the lung wrapping a bronchus lies within a few cm of it: the box around the airways is enough
    box = bounding_box(airways, margin=int(np.ceil(2 * HILUM_MM / min(spacing))) + 1)
    central = airways[box] & ~fill_holes_slices(lungs[box])
    if central.any():
        out[box] = ndimage.distance_transform_edt(~central, sampling=spacing) <= HILUM_MM
    return out


def _enclosure_score_at(lung: np.ndarray, points: np.ndarray, spacing: Tuple[float, float, float],
                        axes: np.ndarray) -> np.ndarray:
    """For each point (rows of voxel indices): the number of ``axes`` along which ``lung`` lies within
    ENCLOSED_REACH_MM on both sides of it (the score of :func:`enclosed_dense`, at these points only)."""
    shape = np.array(lung.shape)
    score = np.zeros(len(points), dtype=np.uint8)
    for axis in axes:
        n = max(1, int(ENCLOSED_REACH_MM // float(np.linalg.norm(axis * np.asarray(spacing)))))
        sides = []
        for sign in (1, -1):
            seen = np.zeros(len(points), dtype=bool)
            for t in range(1, n + 1):
                q = points + sign * t * axis
                inside = ((q >= 0) & (q < shape)).all(axis=1)
                seen[inside] |= lung[tuple(q[inside].T)]
            sides.append(seen)
        score += sides[0] & sides[1]
    return score


def _add_enclosed(labels: np.ndarray, hu: np.ndarray, body: np.ndarray, spacing: Tuple[float, float, float],
                  planar: bool, hilum: Optional[np.ndarray], near: Optional[np.ndarray] = None) -> None:
    """Dense tissue enclosed by each lung (:func:`enclosed_dense`) labelled as that lung, in place; with
    ``near``, only tissue within two voxels of it (scored at those voxels only)."""
    if near is None:
        for side in (RIGHT_LUNG, LEFT_LUNG):
            labels[enclosed_dense(labels == side, labels > 0, hu, body, spacing, planar, hilum)] = side
        return
    if not near.any():
        return
    box = bounding_box(near, margin=4)
    offset = np.array([b.start for b in box])
    beside = ndimage.binary_dilation(near[box], iterations=2)
    beside &= (labels[box] == 0) & body[box] & (hu[box] >= -1000) & (hu[box] < BONE_HU)
    axes, needed, needed_hilum = _enclosure_axes(planar)
    for side in (RIGHT_LUNG, LEFT_LUNG):
        lung = labels == side
        candidates = beside & ndimage.binary_dilation(lung[box], iterations=2) & (labels[box] == 0)
        points = np.argwhere(candidates) + offset
        if len(points) == 0:
            continue
        score = _enclosure_score_at(lung, points, spacing, axes)
        taken = score >= needed
        if hilum is not None:
            taken &= ~hilum[tuple(points.T)] | (score >= needed_hilum)
        labels[tuple(points[taken].T)] = side


def recover_dense_lung(labels: np.ndarray, hu: np.ndarray, body: np.ndarray, spacing: Tuple[float, float, float],
                       progress=None, planar: bool = False, hilum: Optional[np.ndarray] = None) -> np.ndarray:
    """Labels with dense lung at the chest wall added to each lung (slice by slice, see module docstring);
    ``hilum`` (see :func:`hilar_zone`) makes the enclosure test stricter there."""
    out = labels.copy()
    nz = labels.shape[0]
    cage = rib_cage(hu, spacing, planar)
    right_margins = np.full(nz, np.nan)  # the right lung's healthy lung-to-rib margin per slice
    for z in range(nz):
        if progress is not None and z % 16 == 0:
            progress.update(z / nz, "recovering dense lung at the chest wall")
        for side in (RIGHT_LUNG, LEFT_LUNG):
            lung = labels[z] == side
            if not lung.any():
                continue
            occupied = out[z] > 0
            add, margin = _recover_slice(lung, side, hu[z], occupied, body[z], spacing[1:], cage[z])
            out[z][add] = side
            if side == RIGHT_LUNG and margin is not None:
                right_margins[z] = margin
    centres = None if planar else vertebral_centres(hu, body, labels > 0, spacing)
    if centres is not None:
        added = (out == LEFT_LUNG) & (labels == 0)
        out[added & beside_the_aorta(centres, out.shape, spacing)] = 0
    _add_enclosed(out, hu, body, spacing, planar, hilum)
    if not planar:
        enclosed_once = out > 0
        out = extend_to_dome(out, hu, body, spacing)
        out = mirrored_consolidation(out, hu, body, spacing, centres)
        out = right_gutter(out, hu, body, spacing, hilum, centres)
        out = bridge_across_slices(out, hu, body, spacing, hilum)
        out = propagate_outline(out, hu, body, spacing)
        out = left_rays_in_consolidated_slices(out, hu, body, spacing, cage, centres, right_margins)
        # these steps put lung on the far side of dense tissue that had lung on one side only (against the
        # mediastinum and in the gutters): the tissue beside what they added is tested once more
        _add_enclosed(out, hu, body, spacing, planar, hilum, near=(out > 0) & ~enclosed_once)
        # after that test: beside this step's lung it would take the fat between the heart, the sternum and the
        # lung (0.6-7 ml per left-lobe phantom)
        out = _around_the_heart(out, hu, body, spacing, cage, centres, hilum)
    # a voxel that is lung in the slices above and below and dense where it lies is lung too
    # (a slice whose rays missed part of a consolidation that its neighbours recovered)
    for side in () if planar else (RIGHT_LUNG, LEFT_LUNG):
        lung = out == side
        between = np.zeros_like(lung)
        between[1:-1] = lung[:-2] & lung[2:] & (out[1:-1] == 0) & body[1:-1] & (hu[1:-1] < BONE_HU)
        out[between] = side
    return out
