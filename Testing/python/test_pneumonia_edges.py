"""Lesion edges at half contrast (lungai.pneumonia.edges): a faint ground-glass ball cut short by the fixed
threshold gets its blurred border back; in denser (dependent) lung the edge does not creep."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from lungai.pneumonia.edges import grow_to_half_contrast

SPACING = (1.0, 0.8, 0.8)  # k, j, i mm
THRESHOLD = -720.0


def _ball_ct(lesion_hu: float, lung_hu: float, radius_mm: float = 4.0):
    """A ball of ``lesion_hu`` in lung of ``lung_hu``, blurred by the scanner (sigma 1 mm); returns CT and ball."""
    shape = (30, 40, 40)
    k, j, i = np.mgrid[:shape[0], :shape[1], :shape[2]].astype(float)
    ball = ((k - 15) * SPACING[0]) ** 2 + ((j - 20) * SPACING[1]) ** 2 + ((i - 20) * SPACING[2]) ** 2 <= radius_mm ** 2
    ct = np.where(ball, lesion_hu, lung_hu).astype(np.float32)
    return ndi.gaussian_filter(ct, [1.0 / s for s in SPACING]), ball


def test_faint_ball_gets_its_border_back():
    ct, ball = _ball_ct(-650.0, -860.0)
    cut = ct >= THRESHOLD  # the fixed threshold: well inside the ball's half-contrast edge (-755 HU)
    assert cut.sum() < 0.8 * ball.sum()
    grown = grow_to_half_contrast(cut, ct, np.ones_like(cut), SPACING, THRESHOLD)
    assert abs(int(grown.sum()) - int(ball.sum())) < 0.1 * ball.sum()
    assert grown[cut].all()  # it only adds
    level = 0.5 * (np.median(ct[cut]) + np.median(ct[~ndi.binary_dilation(ball, iterations=4)]))
    assert ct[grown & ~cut].min() >= level


def test_edge_does_not_creep_into_dense_lung():
    # dependent lung of -700 HU around a -600 HU lesion: half contrast is about -650 HU, above the threshold
    # there is lung that a fixed lower threshold would take in
    ct, ball = _ball_ct(-600.0, -700.0)
    cut = ct >= -640.0
    grown = grow_to_half_contrast(cut, ct, np.ones_like(cut), SPACING, THRESHOLD)
    assert (grown & ~ndi.binary_dilation(ball, iterations=2)).sum() == 0
    assert ct[grown].min() > -660.0


def test_dense_lesion_unchanged_and_growth_limited_to_allowed():
    ct, ball = _ball_ct(-100.0, -860.0)
    cut = ct >= THRESHOLD
    assert np.array_equal(grow_to_half_contrast(cut, ct, np.ones_like(cut), SPACING, THRESHOLD), cut)
    faint, _ = _ball_ct(-650.0, -860.0)
    cut = faint >= THRESHOLD
    allowed = np.ones_like(cut)
    allowed[:15] = False
    grown = grow_to_half_contrast(cut, faint, allowed, SPACING, THRESHOLD)
    assert np.array_equal(grown[:15], cut[:15]) and (grown[15:] & ~cut[15:]).any()
