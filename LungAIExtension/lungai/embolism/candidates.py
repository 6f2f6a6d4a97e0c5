"""Candidate filling defects and their features.

Inside an enhanced artery a clot is a region darker than the contrast that surrounds it. The expected lumen
density at every voxel is the grey-level closing of the smoothed CT with a cube of about ``CLOSING_MM``: it
fills dark holes and short gaps enclosed by contrast (clots, short occlusions) but not the lung beside a
vessel's convex wall. A candidate is a connected region whose density lies ``defect`` HU below that
expectation, inside the closed tree envelope and darker than the tree's low threshold (or, where a small clot
only dims a thin artery, below half the expected lumen), or an occluded artery: a clot-dense (``CLOT_HU``) tube in the lungs, at least
two voxels thick, that leaves the enhanced tree (or ends within ``TUBE_REACH_MM`` of it). Outside the lungs a
defect must be enclosed by contrast on most sides; the mediastinal tissue the envelope closes over beside a
central artery is cut off as a candidate of its own. Features describe
density, contrast to the lumen, size, thickness, what surrounds the region, vessel size and level, and the
spatial prior of the level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy import ndimage

from lungai.arrays import bounding_box, nearest_along
from lungai.embolism.arteries import LEVEL_CODE, ArteryTree
from lungai.embolism.trunk import Trunk
from lungai.embolism.volume import WorkVolume

CLOSING_MM = 5.0          # half-size of the closing cube: fills defects up to about 10 mm across
DEFECT_FRACTION = 0.3     # minimum darkening below the expected lumen, as a fraction of the trunk's HU
DIM_FRACTION = 0.5        # inside the enhanced tree: a defect keeps less than this fraction of the expected lumen
MIN_HU = -100.0           # darker than this is lung or fat, not clot (clot is about -50..120 HU)
MIN_VOXELS = 2
MAX_ML = 10.0             # a larger dark region in the envelope is heart wall or mediastinal tissue, not clot
CLOT_HU = (-100.0, 150.0)  # density of an occluding clot
# A defect outside the lungs (mediastinum, hila) must be enclosed by the tree: contrast within ENCLOSURE_MM in at
# least ENCLOSED_DIRECTIONS of the 6 axis directions, as a clot inside the lumen is; the dark mediastinal tissue
# that the closed envelope takes in beside a central artery sees contrast on 2-4 sides and is cut off as a
# candidate of its own, so that a clot touching it is scored in the context of its artery
# Candidate rules are versioned with the scorers trained on them (registry ``inference.candidate_rules``):
# 1 as for embolism-candidates 1.2.0 and embolism-candidates-fine 1.0.0; 2 adds the enclosure cut and the tube reach
CANDIDATE_RULES = 2
ENCLOSURE_MM = 12.0
ENCLOSED_DIRECTIONS = 5
# an occluded artery's clot tube may end short of the enhanced tree (its end next to the contrast is partial
# volume, thinner than the opening keeps): it still counts as leaving the tree within this distance
TUBE_REACH_MM = 6.0
# expected lumen denser than this x the trunk's HU is undiluted contrast inflow (vena cava, right heart), where a
# small dark swirl is a mixing artefact, the classic mimic of a central embolus, not clot
INFLOW_FRACTION = 1.2

FEATURES = ("log_volume_mm3", "mean_defect", "max_defect", "mean_hu", "min_hu", "lumen_hu", "contact_contrast",
            "contact_lung", "enclosed_fraction", "log_vessel_diameter", "level_code", "in_lung_fraction",
            "clot_fraction", "relative_defect", "log_level_prior")

# Patch around each candidate for the CNN scorer, about PATCH_MM across on the working grid (16 x 20 x 20 canonical
# [S, P, L] voxels on the 1.6 x 1.6 x 2.0 mm grid, 26 x 32 x 32 on 1.0 x 1.0 x 1.25 mm): CT relative to the
# scan's trunk density, artery tree, the candidate itself.
PATCH_MM = 32.0
PATCH_CHANNELS = ("ct_over_trunk", "tree", "candidate")
PATCH_HU_RANGE = (-1.0, 1.5)  # clip of HU / trunk HU: lung and fat are alike below, undiluted inflow above

# Spatial prior: how much likelier a candidate at each artery level is an embolus than an average candidate
# (P(level | embolus) / P(level | candidate)); the scorer carries the values estimated on its training cohort,
# these neutral ones only serve an untrained network.
DEFAULT_LEVEL_PRIOR = {"main": 1.0, "lobar": 1.0, "segmental": 1.0, "subsegmental": 1.0}


@dataclass
class Candidates:
    """Candidate label map (working grid, 1..n), per-candidate features (n, F) and facts."""

    labels: np.ndarray
    features: np.ndarray
    centroid: np.ndarray      # (n, 3) canonical index
    volume_mm3: np.ndarray
    extent_mm: np.ndarray     # (n,) longest bounding-box side
    level: List[str]
    side: List[str]
    occlusive: np.ndarray     # (n,) bool: the clot fills the lumen (little contrast around it)

    @property
    def count(self) -> int:
        return len(self.volume_mm3)


def patch_shape(spacing) -> Tuple[int, int, int]:
    """Even voxel counts per canonical axis covering about ``PATCH_MM`` on a grid of ``spacing`` (mm)."""
    return tuple(2 * int(round(PATCH_MM / s / 2.0)) for s in spacing)


PATCH_SHAPE = patch_shape((2.0, 1.6, 1.6))  # on the coarse working grid


def _cube(spacing, half_mm: float):
    return tuple(2 * max(1, int(round(half_mm / s))) + 1 for s in spacing)


def find_candidates(vol: WorkVolume, trunk: Trunk, tree: ArteryTree,
                    level_prior: Optional[Dict[str, float]] = None, rules: int = CANDIDATE_RULES) -> Candidates:
    """Candidates by the candidate ``rules`` of the scorer (see ``CANDIDATE_RULES``)."""
    prior = level_prior or DEFAULT_LEVEL_PRIOR
    size = _cube(vol.spacing, CLOSING_MM)
    labels = np.zeros(vol.hu.shape, dtype=np.int32)
    if not tree.mask.any():
        return _empty(labels)
    box = bounding_box(tree.mask, margin=max(size))
    hu = vol.hu[box]
    tmask = tree.mask[box]
    envelope = ndimage.minimum_filter(ndimage.maximum_filter(tmask, size=size), size=size)
    # expected lumen density; undiluted contrast (vena cava inflow) is no brighter than 1.5 x the trunk here
    lumen = np.clip(np.where(envelope, hu, MIN_HU), None, 1.5 * trunk.hu)
    expected = ndimage.minimum_filter(ndimage.maximum_filter(lumen, size=size), size=size)
    defect = expected - hu
    t = trunk.hu
    dmask = envelope & ~tmask & (defect > DEFECT_FRACTION * t) & (hu > MIN_HU) & (hu < tree.low_hu) \
        & (expected > tree.low_hu)
    # a small clot dims a thin artery without darkening it below the tree's threshold: less than half the
    # contrast of the lumen around it
    dmask |= tmask & envelope & (defect > DEFECT_FRACTION * t) & (hu < DIM_FRACTION * expected) & (hu > MIN_HU)
    # occluded arteries: clot-dense tubes at least two voxels thick (a 2-voxel cube or a 6-neighbour cross
    # fits inside), leaving the enhanced tree inside the lungs; one-voxel partial-volume shells vanish
    cross = ndimage.generate_binary_structure(3, 1)
    clot = (hu > CLOT_HU[0]) & (hu < min(CLOT_HU[1], tree.low_hu)) & ~tmask & (vol.lungs[box] > 0)
    tubes = ndimage.binary_opening(clot, structure=cross) | ndimage.binary_opening(clot, np.ones((2, 2, 2), bool))
    dmask |= tubes
    # outside the lungs the envelope also closes over dark mediastinal tissue beside a central artery: a defect
    # there that is not enclosed by contrast becomes a candidate of its own
    rim = np.zeros_like(dmask)
    if rules >= 2:
        rim = dmask & (vol.lungs[box] == 0) & (enclosing_directions(tmask, vol.spacing, ENCLOSURE_MM)
                                               < ENCLOSED_DIRECTIONS)
    lab, n = _label_apart(dmask & ~rim, rim)
    if n == 0:
        return _empty(labels)
    counts = np.bincount(lab.ravel(), minlength=n + 1)
    touching = np.bincount(lab[ndimage.binary_dilation(tmask, structure=cross)], minlength=n + 1) > 0
    if rules >= 2 and tubes.any():
        near_tree = ndimage.distance_transform_edt(~tmask, sampling=vol.spacing) <= TUBE_REACH_MM
        touching |= np.bincount(lab[tubes & near_tree], minlength=n + 1) > 0
    inflow = np.bincount(lab.ravel(), weights=expected.ravel(), minlength=n + 1) > INFLOW_FRACTION * t * counts
    keep = (counts >= MIN_VOXELS) & (counts * np.prod(vol.spacing) <= MAX_ML * 1000.0) & touching & ~inflow
    keep[0] = False
    remap = np.zeros(n + 1, dtype=np.int32)
    remap[keep] = np.arange(1, int(keep.sum()) + 1)
    lab = remap[lab]
    n = int(keep.sum())
    if n == 0:
        return _empty(labels)
    labels[box] = lab
    idx = np.arange(n + 1)

    def mean(values, where=None):
        sel = lab > 0 if where is None else (lab > 0) & where
        s = np.bincount(lab[sel], weights=values[sel], minlength=n + 1)
        c = np.bincount(lab[sel], minlength=n + 1)
        return (s / np.maximum(c, 1))[1:], c[1:]

    vox = float(np.prod(vol.spacing))
    volume = np.bincount(lab.ravel(), minlength=n + 1)[1:] * vox
    mean_def, _ = mean(defect)
    max_def = ndimage.maximum(defect, lab, idx[1:])
    mean_hu, _ = mean(hu)
    min_hu = ndimage.minimum(hu, lab, idx[1:])
    lumen, _ = mean(expected)
    # the one-voxel shell around each candidate: how much of it is contrast, how much lung
    grown = ndimage.maximum_filter(lab, size=3)
    shell = (lab == 0) & (grown > 0)
    shell_lab = np.where(shell, grown, 0)
    shell_n = np.bincount(shell_lab.ravel(), minlength=n + 1)[1:]
    bright = np.bincount(shell_lab[shell & tmask], minlength=n + 1)[1:]
    air = np.bincount(shell_lab[shell & (hu < -400)], minlength=n + 1)[1:]
    contact_contrast = bright / np.maximum(shell_n, 1)
    contact_lung = air / np.maximum(shell_n, 1)
    enclosed = ndimage.minimum_filter((lab > 0) | tmask, size=3) & (lab > 0)  # no lung or wall in reach
    enclosed_fraction = np.bincount(lab[enclosed], minlength=n + 1)[1:] / np.maximum(volume / vox, 1)
    clot_fraction, _ = mean(((hu > -50) & (hu < 150)).astype(np.float32))
    relative, _ = mean(defect / np.maximum(expected + 100.0, 1.0))
    # vessel diameter and level from the tree voxels touching the candidate
    diam = ndimage.maximum(tree.diameter[box], shell_lab, idx[1:])
    code = ndimage.maximum(tree.level[box], shell_lab, idx[1:]).astype(int)
    code = np.where(code == 0, LEVEL_CODE["subsegmental"], code)
    names = {v: k for k, v in LEVEL_CODE.items()}
    level = [names[int(c)] for c in code]
    lungs = vol.lungs[box]
    in_lung, _ = mean((lungs > 0).astype(np.float32))
    side_votes = [np.bincount(shell_lab[shell & (lungs == s)], minlength=n + 1)[1:] for s in (1, 2)]
    coms = np.asarray(ndimage.center_of_mass(np.ones(lab.shape, np.float32), lab, idx[1:]), dtype=float)
    centroid = coms + np.asarray([b.start for b in box], dtype=float)
    objects = ndimage.find_objects(lab)
    extent = np.asarray([max((sl.stop - sl.start) * s for sl, s in zip(o, vol.spacing)) for o in objects])
    mid_axis = vol.hu.shape[2] / 2.0
    side = [("right" if r > l else "left") if r != l else ("right" if c[2] < mid_axis else "left")
            for r, l, c in zip(side_votes[0], side_votes[1], centroid)]
    prior_log = np.log([max(prior.get(name, 1e-3), 1e-3) for name in level])
    features = np.stack([np.log(volume), mean_def / t, max_def / t, mean_hu / t, min_hu / t, lumen / t,
                         contact_contrast, contact_lung, enclosed_fraction, np.log(np.maximum(diam, 0.5)),
                         code.astype(float), in_lung, clot_fraction, relative, prior_log], axis=1).astype(np.float32)
    occlusive = contact_contrast < 0.35
    return Candidates(labels=labels, features=features, centroid=centroid, volume_mm3=volume, extent_mm=extent,
                      level=level, side=side, occlusive=occlusive)


def enclosing_directions(mask: np.ndarray, spacing, reach_mm: float) -> np.ndarray:
    """Per voxel, in how many of the 6 axis directions a ``mask`` voxel lies within ``reach_mm`` (uint8, 0..6)."""
    count = np.zeros(mask.shape, dtype=np.uint8)
    for axis, step in enumerate(spacing):
        reach = reach_mm / step
        n = mask.shape[axis]
        position = np.arange(n).reshape([-1 if a == axis else 1 for a in range(mask.ndim)])
        before, after = nearest_along(mask, axis)
        count += (before >= 0) & (position - before <= reach)
        count += (after < n) & (after - position <= reach)
    return count


def _label_apart(core: np.ndarray, rim: np.ndarray) -> Tuple[np.ndarray, int]:
    """Connected components of ``core`` and of ``rim`` (26-connected), numbered apart, as one label map."""
    lab, n = ndimage.label(core, structure=np.ones((3, 3, 3), bool))
    lab_rim, n_rim = ndimage.label(rim, structure=np.ones((3, 3, 3), bool))
    lab[lab_rim > 0] = lab_rim[lab_rim > 0] + n
    return lab, n + n_rim


def candidate_patches(vol: WorkVolume, trunk: Trunk, tree: ArteryTree, cands: Candidates) -> np.ndarray:
    """(n, len(PATCH_CHANNELS), *patch_shape(vol.spacing)) float16 patches centred on each candidate's centroid.

    The CT is divided by the scan's own trunk density, so that the network sees contrast relative to the
    enhancement of that scan, not absolute HU; outside the volume counts as air and background.
    """
    shape = patch_shape(vol.spacing)
    out = np.zeros((cands.count, len(PATCH_CHANNELS)) + shape, dtype=np.float16)
    if cands.count == 0:
        return out
    half = np.asarray(shape) // 2
    pad = [(int(h), int(h)) for h in half]
    ct = np.pad(np.clip(vol.hu / trunk.hu, *PATCH_HU_RANGE), pad, constant_values=PATCH_HU_RANGE[0])
    mask = np.pad(tree.mask, pad)
    labels = np.pad(cands.labels, pad)
    for i, centre in enumerate(np.round(cands.centroid).astype(int)):
        box = tuple(slice(c, c + n) for c, n in zip(centre, shape))  # padded index c - half + half
        out[i, 0] = ct[box]
        out[i, 1] = mask[box]
        out[i, 2] = labels[box] == i + 1
    return out


def _empty(labels: np.ndarray) -> Candidates:
    return Candidates(labels=labels, features=np.zeros((0, len(FEATURES)), np.float32), centroid=np.zeros((0, 3)),
                      volume_mm3=np.zeros(0), extent_mm=np.zeros(0), level=[], side=[],
                      occlusive=np.zeros(0, bool))

