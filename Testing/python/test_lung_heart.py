"""The heart fitted as an ellipsoid to its visible border, and the consolidated left lung taken around it."""

from __future__ import annotations

import numpy as np

from lungai.labels import LEFT_LUNG, RIGHT_LUNG
from lungai.lung.aorta import AortaTrack
from lungai.lung.heart import (AORTA_CLEARANCE_MM, AORTA_MARGIN_MM, BELOW_HEART_DOME_MM, CAGE_DEPTH_MM,
                               CLOSED_CAGE_DEPTH_MM, CLOSED_CAGE_MM, HEART_MARGIN_MM, VERTEBRA_MARGIN_MM,
                               VERTEBRA_REACH_MM, Ellipsoid, beside_heart, fit_ellipsoid)

CENTRE = np.array([120.0, 100.0, 130.0])  # (z, y, x) mm
RADII = np.array([50.0, 62.0, 45.0])      # along z, and the two in-plane axes
ANGLE = np.radians(30.0)                  # in-plane rotation of the first in-plane axis


def _surface(n: int, rng: np.random.Generator) -> np.ndarray:
    """Points (z, y, x) on the known ellipsoid, in directions of the unit sphere."""
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    u = v * RADII
    c, s = np.cos(ANGLE), np.sin(ANGLE)
    y = c * u[:, 1] - s * u[:, 2]
    x = s * u[:, 1] + c * u[:, 2]
    return CENTRE + np.column_stack([u[:, 0], y, x])


def _known_heart() -> Ellipsoid:
    c, s = np.cos(ANGLE), np.sin(ANGLE)
    rotation = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    return Ellipsoid(CENTRE, rotation @ np.diag(1.0 / RADII ** 2) @ rotation.T)


def test_ellipsoid_from_part_of_its_surface_with_outliers():
    """Points on a third of the surface (its right and upper side, as the aerated lung shows a heart), with 1 mm
    noise and 25 % outliers (vessels, oesophagus), give back the centre and semi-axes within 2.5 mm."""
    rng = np.random.default_rng(1)
    points = _surface(6000, rng)
    seen = (points[:, 2] < CENTRE[2] + 10) | (points[:, 0] > CENTRE[0] + 20)
    points = points[seen][:1500] + rng.normal(scale=1.0, size=(1500, 3))
    outliers = CENTRE + rng.uniform(-90, 90, size=(500, 3))
    fit = fit_ellipsoid(np.vstack([points, outliers]))
    assert fit is not None
    assert np.linalg.norm(fit.centre - CENTRE) < 2.5
    assert np.allclose(np.sort(fit.radii), np.sort(RADII), atol=2.5)
    # the known surface lies on the fit
    assert np.percentile(np.abs(fit.distance(_surface(500, rng))), 95) < 2.5


def test_implausible_ellipsoid_is_refused():
    """A sphere of 20 mm radius (a vessel, a node) is no heart: no fit within the 35-90 mm semi-axes."""
    rng = np.random.default_rng(2)
    v = rng.normal(size=(800, 3))
    points = CENTRE + 20.0 * v / np.linalg.norm(v, axis=1, keepdims=True)
    assert fit_ellipsoid(points) is None


def test_signed_distance_of_known_points():
    heart = _known_heart()
    top = CENTRE + [RADII[0] + 7.0, 0, 0]
    assert abs(heart.distance(top) - 7.0) < 1e-9
    assert heart.distance(CENTRE + [0, 1e-3, 0]) < 0


def _chest():
    """Slices [S, P, L] at 5 x 2 x 2 mm: soft tissue (30 HU, consolidation) inside a bone ring (rib cage, 70 mm
    radius around (y, x) = (100, 130) mm, 300 HU) with the known ellipsoidal heart (45 HU) in it, an aerated
    left-lung remnant laterally and the vertebral body centre behind."""
    nz, ny, nx = 48, 100, 130
    zz, yy, xx = np.indices((nz, ny, nx))
    z, y, x = zz * 5.0, yy * 2.0, xx * 2.0
    ring = np.hypot(y - 100, x - 130)
    hu = np.full((nz, ny, nx), -900.0, dtype=np.float32)  # air outside the body
    body = ring < 80
    hu[body] = 30.0
    hu[(ring >= 70) & (ring < 76)] = 300.0
    heart = _known_heart()
    hu[heart.distance(np.stack([z, y, x], axis=-1)) < 0] = 45.0
    labels = np.zeros((nz, ny, nx), dtype=np.uint8)
    remnant = (x > 180) & (x < 195) & (np.abs(y - 110) < 12)
    labels[remnant] = LEFT_LUNG
    hu[remnant] = -850.0
    labels[(x < 80) & (ring < 60)] = RIGHT_LUNG
    hu[labels == RIGHT_LUNG] = -850.0
    centres = np.tile([160.0 / 2.0, 130.0 / 2.0], (nz, 1))  # (row, column): 60 mm behind the ring's centre
    return z, y, x, hu, body, labels, heart, centres


def test_consolidation_beside_the_heart_is_taken_up_to_the_margin():
    z, y, x, hu, body, labels, heart, centres = _chest()
    slices = np.zeros(labels.shape[0], dtype=bool)
    slices[14:34] = True
    cage = hu >= 180
    out = beside_heart(labels, hu, body, (5.0, 2.0, 2.0), cage, centres, np.zeros(labels.shape[1:]), slices, heart)
    added = (out == LEFT_LUNG) & (labels == 0)
    distance = heart.distance(np.stack([z, y, x], axis=-1))
    k = 24  # the heart's centre slice
    assert added[k].sum() * 4.0 > 800.0  # the consolidation lateral of and in front of the heart (mm^2)
    assert not (added & (distance <= HEART_MARGIN_MM)).any()  # never the heart or its margin
    # the tissue just beyond the margin, lateral of the heart in front of the spine, is taken
    lateral = (np.abs(distance[k] - HEART_MARGIN_MM - 2.0) < 1.0) & (x[k] > 175) & (y[k] < 120) & (labels[k] == 0)
    assert lateral.any() and added[k][lateral].all()
    assert not added[~slices].any()  # other slices untouched
    assert not added[:, :, x[0, 0] < 130 + 10].any()  # nothing right of or near the midline
    assert not added[:, y[0, :, 0] >= 160].any()  # nothing behind the vertebral body centre
    assert not (added & (hu >= 180)).any()
    # nothing without a lung in the slice to join
    none = beside_heart(np.zeros_like(labels), hu, body, (5.0, 2.0, 2.0), cage, centres,
                        np.zeros(labels.shape[1:]), slices, heart)
    assert not none.any()


def test_below_the_heart_down_to_the_left_dome():
    """Below the heart's lowest point (slice 14, z = 70 mm) the consolidation in front of the spine is taken down
    to BELOW_HEART_DOME_MM above the left dome (dome at slice 8, 40 mm: from slice 10, 50 mm, at 5 mm slices) and
    not below, where the spleen and the stomach lie; beside the heart the dome itself is the limit."""
    z, y, x, hu, body, labels, heart, centres = _chest()
    slices = np.zeros(labels.shape[0], dtype=bool)
    slices[2:34] = True
    cage = hu >= 180
    dome = np.full(labels.shape[1:], 8.0)
    out = beside_heart(labels, hu, body, (5.0, 2.0, 2.0), cage, centres, dome, slices, heart)
    added = (out == LEFT_LUNG) & (labels == 0)
    below_heart = z[:, 0, 0] < heart.centre[0] - RADII[0]
    taken = added.sum(axis=(1, 2)) * 4.0  # mm^2 per slice
    assert BELOW_HEART_DOME_MM == 7.0
    assert (taken[10:14] > 800.0).all()  # the slices between the lifted dome and the heart's bottom
    assert not added[:10].any()  # nothing within 7 mm of the dome or below it
    assert below_heart[10:14].all() and not below_heart[14]
    # in front of the heart's bottom, where the heart would be, nothing beyond what is outside its margin
    assert not (added & (heart.distance(np.stack([z, y, x], axis=-1)) <= HEART_MARGIN_MM)).any()
    assert not added[:, :, x[0, 0] < 130 + 10].any()
    assert not added[:, y[0, :, 0] >= 160].any()
    # an isolated consolidated slice below the heart (a partial-volume lung bottom) is left alone
    slices[:] = False
    slices[11] = slices[14:34] = True
    alone = beside_heart(labels, hu, body, (5.0, 2.0, 2.0), cage, centres, dome, slices, heart)
    assert not ((alone == LEFT_LUNG) & (labels == 0))[:14].any()


def test_cage_closed_across_the_costal_margin_by_the_ribs_above():
    """Below the sternum the slice's own cage is open in front (here no bone in front of the ring's centre up to
    slice 19, z = 95 mm). The ring of the slices up to CLOSED_CAGE_MM above closes it: in slices 12-13 (the full
    ring 40 mm above) the consolidation in front is taken deeper than CLOSED_CAGE_DEPTH_MM inside the ring, not
    in the chest-wall layer within it; in slices 10-11 (the full ring more than 40 mm above) not at all. Behind,
    where the slice's own ribs are, the CAGE_DEPTH_MM limit of the slice's cage still holds."""
    z, y, x, hu, body, labels, heart, centres = _chest()
    slices = np.zeros(labels.shape[0], dtype=bool)
    slices[2:34] = True
    cage = hu >= 180
    open_front = (z <= 95.0) & (y < 100.0)
    cage[open_front] = False
    hu[open_front & (hu >= 180)] = 40.0  # costal cartilage and muscle, not bone
    dome = np.full(labels.shape[1:], 8.0)
    out = beside_heart(labels, hu, body, (5.0, 2.0, 2.0), cage, centres, dome, slices, heart)
    added = (out == LEFT_LUNG) & (labels == 0)
    assert CLOSED_CAGE_MM == 40.0 and CLOSED_CAGE_DEPTH_MM == 10.0 and CAGE_DEPTH_MM == 6.0

    def pixel(radius: float, degrees_in_front_of_lateral: float) -> tuple:
        a = np.radians(degrees_in_front_of_lateral)
        return int(round((100.0 - radius * np.sin(a)) / 2.0)), int(round((130.0 + radius * np.cos(a)) / 2.0))

    deep, wall = pixel(55.0, 60.0), pixel(63.0, 60.0)  # 15 and 7 mm inside the ring's inner surface, in front
    behind = pixel(63.0, -30.0)                        # 7 mm inside it, behind, against the slice's own ribs
    for k in (12, 13):
        assert added[k][deep] and not added[k][wall] and added[k][behind]
    for k in (10, 11):
        assert not added[k][deep] and added[k][behind]
    in_front = y[0] < 100.0
    assert not added[10:12][:, in_front].any()
    assert added[12:14][:, in_front].sum() * 4.0 > 1000.0  # mm^2 over the two slices


def test_tracked_aorta_replaces_the_spine_clearance():
    """With a tracked aorta (12 mm radius, 14 mm in front of and 28 mm left of the vertebral body centre) the
    consolidation within AORTA_CLEARANCE_MM of the vertebral body centre is taken where it lies farther than
    AORTA_MARGIN_MM from the aorta and VERTEBRA_MARGIN_MM from the vertebral body (a bone disc of 16 mm radius
    around the centre); without the track none of it is."""
    z, y, x, hu, body, labels, heart, centres = _chest()
    spine = np.hypot(y - 160.0, x - 130.0)
    hu[spine <= 16.0] = 300.0
    slices = np.zeros(labels.shape[0], dtype=bool)
    slices[14:34] = True
    cage = (hu >= 180) & (spine > 20.0)
    dome = np.zeros(labels.shape[1:])
    aorta = AortaTrack((73.0, 0.0), (79.0, 0.0), 12.0, (40, 47))  # (146, 158) mm
    out = beside_heart(labels, hu, body, (5.0, 2.0, 2.0), cage, centres, dome, slices, heart, aorta)
    before = beside_heart(labels, hu, body, (5.0, 2.0, 2.0), cage, centres, dome, slices, heart)
    added = (out == LEFT_LUNG) & (labels == 0)
    assert AORTA_MARGIN_MM == 8.0 and VERTEBRA_MARGIN_MM == 12.0 and VERTEBRA_REACH_MM == 30.0
    assert not (added & (np.hypot(y - 146.0, x - 158.0) <= 12.0 + AORTA_MARGIN_MM)).any()
    assert not (added & (spine <= 16.0 + VERTEBRA_MARGIN_MM - 2.0)).any()  # less one pixel (the disc's edge)
    assert not ((before == LEFT_LUNG) & (labels == 0) & (spine <= AORTA_CLEARANCE_MM)).any()
    gutter = added & (spine <= AORTA_CLEARANCE_MM)
    assert gutter.sum() * 4.0 * 5.0 > 5000.0  # mm^3 of the gutter beside the aorta, over the slices
    assert not added[:, y[0, :, 0] >= 160].any()  # still nothing behind the vertebral body centre
    assert ((before == LEFT_LUNG) & ~(out == LEFT_LUNG)).sum() == 0  # all taken before is taken still
