"""The descending aorta found where aerated left lung outlines it, carried down through consolidated slices."""

from __future__ import annotations

import numpy as np

from lungai.labels import LEFT_LUNG
from lungai.lung.aorta import AortaTrack, aorta_track

SPACING = (5.0, 2.0, 2.0)
SPINE = (120.0, 100.0)          # vertebral body centre (y, x) mm
AORTA_RADIUS = 12.0


def _aorta_centre(z_mm: np.ndarray) -> tuple:
    """Known track: 12 mm in front of and 26 mm left of the spine at z = 0, drifting 1 mm left per 10 mm up."""
    return SPINE[0] - 12.0, SPINE[1] + 26.0 + 0.1 * z_mm


def _thorax(consolidated_below: int):
    """[S, P, L] at 5 x 2 x 2 mm: vertebral body (bone), aorta (40 HU) and mediastinum (40 HU) with aerated left
    lung lateral to them; below slice ``consolidated_below`` the lung within 70 mm of the spine is consolidated
    (40 HU, outside the mask) and hides the aorta's edge."""
    nz, ny, nx = 36, 90, 110
    zz, yy, xx = np.indices((nz, ny, nx))
    z, y, x = zz * SPACING[0], yy * SPACING[1], xx * SPACING[2]
    ay, ax = _aorta_centre(z)
    aorta = np.hypot(y - ay, x - ax) <= AORTA_RADIUS
    vertebra = np.hypot((y - SPINE[0]) / 16.0, (x - SPINE[1]) / 20.0) <= 1.0
    hu = np.full((nz, ny, nx), 40.0, dtype=np.float32)
    hu[vertebra] = 300.0
    lung = (x > SPINE[1] + 12.0) & (y > 40.0) & (y < 160.0) & ~aorta & ~vertebra
    lung &= ~((x < ax) & (y > ay))  # tissue between the aorta and the vertebral body
    consolidated = lung & (zz < consolidated_below) & (np.hypot(y - SPINE[0], x - SPINE[1]) < 70.0)
    lung &= ~consolidated
    hu[lung] = -850.0
    labels = np.where(lung, LEFT_LUNG, 0).astype(np.uint8)
    centres = np.tile([SPINE[0] / SPACING[1], SPINE[1] / SPACING[2]], (nz, 1))
    return labels, hu, centres, consolidated.any(axis=(1, 2))


def test_track_carried_through_the_consolidated_slices():
    """Circles found in the aerated slices above (14 and up) give the track; carried down to the consolidated
    slices 0-13 its centre lies within 2 mm of the known one and its radius within 2.5 mm."""
    labels, hu, centres, target = _thorax(14)
    assert target[:14].all() and not target[14:].any()
    track = aorta_track(labels, hu, SPACING, centres, labels.any(axis=(1, 2)), target)
    assert isinstance(track, AortaTrack)
    assert track.slices[0] >= 14
    for k in range(14):
        row, column = track.centre(k)
        ay, ax = _aorta_centre(np.array(k * SPACING[0]))
        assert np.hypot(row * SPACING[1] - ay, column * SPACING[2] - ax) < 2.0
    assert abs(track.radius_mm - AORTA_RADIUS) < 2.5


def test_no_track_without_an_outlined_aorta():
    """With the lung consolidated in nearly every slice (no aorta edge above) or carried farther than the limit,
    there is no track."""
    labels, hu, centres, target = _thorax(33)
    assert aorta_track(labels, hu, SPACING, centres, labels.any(axis=(1, 2)), target) is None
    labels, hu, centres, _ = _thorax(0)
    far = np.zeros(labels.shape[0], dtype=bool)
    far[0] = True
    search = np.zeros(labels.shape[0], dtype=bool)
    search[30:] = True  # support only 150 mm above the slice to reach
    assert aorta_track(labels, hu, SPACING, centres, search, far) is None
