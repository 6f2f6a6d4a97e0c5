"""Candidate rules on synthetic arteries of known geometry: enclosure by contrast, mediastinal tissue cut off a
central clot, and occluded arteries whose clot tube ends short of the enhanced tree."""

from __future__ import annotations

import numpy as np
import pytest

from lungai.embolism.arteries import LEVEL_CODE, ArteryTree
from lungai.embolism.candidates import TUBE_REACH_MM, enclosing_directions, find_candidates
from lungai.embolism.trunk import Trunk
from lungai.embolism.volume import WorkVolume

SPACING = (2.0, 1.6, 1.6)  # canonical [S, P, L] of the coarse working grid
TRUNK = Trunk(point=(15, 20, 20), hu=330.0, system_threshold_hu=250.0, system=np.zeros((1, 1, 1), bool),
              factors=(1, 1, 1))


def _scene(hu: np.ndarray, lungs: bool):
    mask = hu > 150.0
    tree = ArteryTree(mask=mask, level=np.where(mask, LEVEL_CODE["lobar"], 0).astype(np.uint8),
                      diameter=np.where(mask, 12.0, 0.0).astype(np.float32), low_hu=100.0, centreline_mm={})
    vol = WorkVolume(hu=hu, raw=hu, lungs=np.full(hu.shape, int(lungs), np.uint8), spacing=SPACING,
                     reorientation=None, image=None, input_image=None)
    return vol, tree


def _grid(shape):
    return np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, SPACING)], indexing="ij")


def test_enclosing_directions_hand_values():
    mask = np.zeros((9, 9, 9), bool)
    mask[4, 4, 4] = True
    count = enclosing_directions(mask, SPACING, 4.0)
    assert count[4, 4, 4] == 6                # inside the mask: every direction
    assert count[2, 4, 4] == 1                # 2 slices (4.0 mm) below: the mask lies up, within reach
    assert count[1, 4, 4] == 0                # 6.0 mm: out of reach
    assert count[4, 2, 4] == 1                # 2 rows (3.2 mm)
    assert count[4, 4, 1] == 0                # 3 columns (4.8 mm)
    assert count[3, 3, 4] == 0                # diagonal: no axis ray meets it
    mask[4, 4, 7] = True
    assert enclosing_directions(mask, SPACING, 4.0)[4, 4, 5] == 2  # between two mask voxels on one axis


def test_mediastinal_tissue_beside_a_central_clot_is_cut_off_as_its_own_candidate():
    """Two parallel 12 mm arteries 6 mm apart in mediastinal fat (no lung): the closed envelope takes in the fat
    between them. A clot against the wall of one artery, facing the other, touches that fat; the clot (contrast
    on all 6 sides within 12 mm) and the fat (contrast on 2 sides) become separate candidates. The clot's outer
    voxels at the wall, where the artery's chord is short, see contrast on 4 sides and go with the cut-off part."""
    shape = (30, 40, 40)
    z, y, x = _grid(shape)
    hu = np.full(shape, -80.0, np.float32)               # mediastinal fat
    vessel_a = np.hypot(y - 32.0, x - 20.0) < 6.0
    vessel_b = np.hypot(y - 32.0, x - 38.0) < 6.0
    hu[vessel_a | vessel_b] = 330.0
    clot = vessel_a & (np.sqrt((z - 30.0) ** 2 + (y - 32.0) ** 2 + (x - 23.0) ** 2) < 3.5)
    hu[clot] = 40.0
    vol, tree = _scene(hu, lungs=False)
    cands = find_candidates(vol, TRUNK, tree)
    on_clot = np.bincount(cands.labels[clot], minlength=cands.count + 1)[1:]
    assert on_clot.max() >= 0.7 * np.count_nonzero(clot), "the clot's core keeps one candidate"
    clot_label = int(np.argmax(on_clot)) + 1
    fat = (hu == -80.0) & (cands.labels > 0)
    assert np.count_nonzero(fat) > 20, "the fat in the envelope between the arteries is a defect"
    assert np.count_nonzero(fat & (cands.labels == clot_label)) <= 2, "the fat is not part of the clot's candidate"
    assert np.count_nonzero((cands.labels == clot_label) & ~clot) <= 0.2 * np.count_nonzero(clot)
    # the rules of the scorers trained before the cut (1.2.0) keep clot and fat in one candidate
    old = find_candidates(vol, TRUNK, tree, rules=1)
    old_label = np.bincount(old.labels[clot], minlength=old.count + 1)[1:].argmax() + 1
    assert np.count_nonzero((hu == -80.0) & (old.labels == old_label)) > 20


@pytest.mark.parametrize("gap_slices, found", [(0, True), (1, True), (5, False)])
def test_occluded_artery_ending_short_of_the_tree_is_a_candidate_within_reach(gap_slices, found):
    """An enhanced 8 mm artery in lung stops and its clot-dense occluded continuation runs on, touching it (no
    gap) or beyond a gap of lung: one slice of gap (the tube's first voxel 4 mm from the last enhanced one) is
    within ``TUBE_REACH_MM``, 5 slices (12 mm) are not."""
    shape = (30, 30, 30)
    z, y, x = _grid(shape)
    hu = np.full(shape, -850.0, np.float32)
    tube = np.hypot(y - 24.0, x - 24.0) < 4.0
    end = 10                                            # enhanced slices 0..9
    hu[:end][tube[:end]] = 330.0
    start = end + gap_slices
    hu[start:start + 10][tube[start:start + 10]] = 40.0
    vol, tree = _scene(hu, lungs=True)
    cands = find_candidates(vol, TRUNK, tree)
    occluded = np.zeros(shape, bool)
    occluded[start:start + 10] = tube[start:start + 10]
    assert bool(np.count_nonzero(cands.labels[occluded]) > 0.5 * np.count_nonzero(occluded)) is found
    old = find_candidates(vol, TRUNK, tree, rules=1)  # before the reach: only a touching tube
    assert bool(np.count_nonzero(old.labels[occluded]) > 0.5 * np.count_nonzero(occluded)) is (gap_slices == 0)
