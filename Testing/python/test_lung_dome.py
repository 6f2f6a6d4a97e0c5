"""The left hemidiaphragm under a consolidated left base: lowered below the right one, not fitted to the aerated
bottoms resting on the consolidation."""

from __future__ import annotations

import numpy as np

from lungai.labels import LEFT_LUNG, RIGHT_LUNG
from lungai.lung.contralateral import mirrored_consolidation
from lungai.lung.dome import LEFT_BELOW_RIGHT_MM, joint_domes
from lungai.lung.propagation import left_base_consolidated

SPACING = (5.0, 2.5, 2.5)  # [S, P, L], index 0 inferior


def _left_base(consolidated: bool):
    """Two cylindrical lungs (radius 35 mm) in soft tissue (45 HU) on flat hemidiaphragms over organs (55 HU): the
    right lung from slice 4 up, the left one from slice 2 up (10 mm lower). With ``consolidated`` the left lung is
    dense (30 HU) up to slice 12, of which only its lateral rim (more than 10 mm lateral of its axis) is labelled,
    as the chest-wall rays recover it; its aerated part then ends on the consolidation at slice 13."""
    nz, ny, nx = 30, 40, 80
    zz, yy, xx = np.mgrid[0:nz, 0:ny, 0:nx]
    hu = np.full((nz, ny, nx), 45.0, dtype=np.float32)
    right = ((yy - 20) ** 2 + (xx - 21) ** 2 <= 14 ** 2) & (zz >= 4) & (zz <= 27)
    left = ((yy - 20) ** 2 + (xx - 58) ** 2 <= 14 ** 2) & (zz >= 2) & (zz <= 27)
    hu[(zz < 4) & (xx < 40)] = 55.0
    hu[(zz < 2) & (xx >= 40)] = 55.0
    hu[left | right] = -850.0
    lobe = left & (zz <= 12)
    if consolidated:
        hu[lobe] = 30.0
    labels = np.where(hu < -400, np.where(xx < 40, RIGHT_LUNG, LEFT_LUNG), 0).astype(np.uint8)
    labels[lobe & (xx >= 62)] = LEFT_LUNG
    return hu, np.ones(hu.shape, dtype=bool), labels, lobe


def test_left_dome_under_a_consolidated_base_lies_below_the_right_one():
    hu, _, labels, _ = _left_base(consolidated=True)
    assert left_base_consolidated(labels, hu, SPACING)
    fitted = joint_domes(labels, hu, SPACING)
    # the aerated left bottoms rest on the consolidation: fitted to them, the left dome lies at its top
    np.testing.assert_allclose(fitted[LEFT_LUNG], 13.0, atol=1e-6)
    lowered = joint_domes(labels, hu, SPACING, left_base_consolidated=True)
    np.testing.assert_allclose(lowered[RIGHT_LUNG], 4.0, atol=1e-6)
    np.testing.assert_allclose(lowered[LEFT_LUNG], 4.0 - LEFT_BELOW_RIGHT_MM / SPACING[0], atol=1e-6)  # slice 2


def test_a_left_dome_already_below_the_right_one_is_kept():
    """Aerated lungs: the left base is not consolidated, and its own bottoms (slice 2) are lower than the limit."""
    hu, _, labels, _ = _left_base(consolidated=False)
    assert not left_base_consolidated(labels, hu, SPACING)
    for flag in (False, True):
        domes = joint_domes(labels, hu, SPACING, left_base_consolidated=flag)
        np.testing.assert_allclose(domes[LEFT_LUNG], 2.0, atol=1e-6)
        np.testing.assert_allclose(domes[RIGHT_LUNG], 4.0, atol=1e-6)


def test_mirrored_right_lung_outlines_the_consolidated_left_base_down_to_the_lowered_dome():
    """Above the dome fitted to the aerated left bottoms (slice 13) nothing of the lobe would be taken; above the
    lowered one the mirrored right lung outlines it (behind its centre, towards the lateral chest wall) in every
    slice that right lung reaches."""
    hu, body, labels, lobe = _left_base(consolidated=True)
    out = mirrored_consolidation(labels, hu, body, SPACING)
    added = (out == LEFT_LUNG) & (labels == 0)
    assert not (added & ~lobe).any()
    assert not ((out == RIGHT_LUNG) & (labels != RIGHT_LUNG)).any()
    zz, yy, xx = np.indices(lobe.shape)
    core = (yy - 20) ** 2 + (xx - 58) ** 2 <= 12 ** 2
    posterior = lobe & (labels == 0) & core & (zz >= 4) & (yy >= 22) & (xx >= 58)  # behind, lateral half
    assert np.count_nonzero(added & posterior) > 0.9 * posterior.sum()
    assert added[4:13].any(axis=(1, 2)).all()
