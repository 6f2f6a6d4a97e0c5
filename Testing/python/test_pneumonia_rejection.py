"""Rejection of false lesion components: a vessel tree with no lesion gives no lesion; a 5 mm ground-glass ball
next to it is kept; the component rules on hand-made components."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from lungai.image import Image
from lungai.pneumonia import analyze, regions_from_labels
from lungai.pneumonia.components import (ComponentFeatures, false_components, principal_elongation,
                                         reject_false_components)

SPACING = (0.8, 0.8, 2.5)  # i, j, k in mm: thick slices, where partial volume makes the most false lesions
SHAPE = (40, 120, 120)  # k, j, i


def _segment_distance(points_mm: np.ndarray, a, b) -> np.ndarray:
    """Distance (mm) of each point to the segment a-b."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ab = b - a
    t = np.clip(((points_mm - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(points_mm - (a + t[:, None] * ab), axis=1)


# trunk from the hilum, two generations of branches, in several directions (z up to 95 mm, y/x up to 95 mm):
# (start, end, radius) in (z, y, x) mm
TREE = [((50, 48, 8), (50, 48, 40), 3.5),
        ((50, 48, 40), (80, 30, 70), 2.5), ((50, 48, 40), (20, 70, 75), 2.5), ((50, 48, 40), (50, 85, 60), 2.0),
        ((80, 30, 70), (90, 15, 90), 1.5), ((80, 30, 70), (60, 12, 95), 1.5), ((20, 70, 75), (8, 90, 88), 1.5),
        ((20, 70, 75), (35, 92, 100), 1.2), ((50, 85, 60), (50, 100, 90), 1.2), ((50, 85, 60), (70, 100, 45), 1.0)]
# hilar calibre: a 5.5 mm trunk leaving the lung into the soft tissue beside it (the mediastinum), 4 mm lobar
# branches, 2.5 mm segmental ones
HILAR_TREE = [((50, 48, 0), (50, 48, 28), 5.5),
              ((50, 48, 28), (80, 34, 55), 4.0), ((50, 48, 28), (22, 66, 58), 4.0),
              ((80, 34, 55), (92, 18, 82), 2.5), ((80, 34, 55), (68, 14, 88), 2.5),
              ((22, 66, 58), (10, 86, 84), 2.5), ((22, 66, 58), (36, 90, 90), 2.5)]


def vessel_tree_ct(lesion_centre_mm=None, lesion_radius_mm=2.5, seed=0, tree=TREE):
    """One lung (-860 HU) holding a branching vessel ``tree`` (+40 HU; oblique and in-plane branches) and,
    optionally, a ground-glass ball (-550 HU). Positions are (z, y, x) mm."""
    rng = np.random.default_rng(seed)
    sz, sy, sx = SPACING[2], SPACING[1], SPACING[0]
    grid = np.stack(np.meshgrid(np.arange(SHAPE[0]) * sz, np.arange(SHAPE[1]) * sy, np.arange(SHAPE[2]) * sx,
                                indexing="ij"), axis=-1).reshape(-1, 3)
    lung = np.zeros(SHAPE, dtype=np.uint8)
    lung[:, 4:-4, 4:-4] = 1  # the lung goes on above and below the field of view
    ct = np.where(lung > 0, -860.0, 40.0).astype(np.float32)
    vessels = np.zeros(grid.shape[0], dtype=bool)
    for a, b, radius in tree:
        vessels |= _segment_distance(grid, a, b) <= radius
    vessels = vessels.reshape(SHAPE) & (lung > 0)
    ct[vessels] = 40.0
    truth = np.zeros(SHAPE, dtype=bool)
    if lesion_centre_mm is not None:
        truth = (np.linalg.norm(grid - np.asarray(lesion_centre_mm, float), axis=1) <= lesion_radius_mm).reshape(SHAPE)
        ct[truth] = -550.0
    # scanner blur (about 1 mm in-plane and across slices), then noise
    ct = ndi.gaussian_filter(ct, (0.4, 1.2, 1.2)) + rng.normal(0.0, 12.0, SHAPE).astype(np.float32)
    return Image.from_array(ct.astype(np.float32), spacing=SPACING), lung, truth


def _analyze(image, lung):
    regions = regions_from_labels(image, lung, zones=lung.copy(), fill=False)
    return analyze(image, regions=regions, min_size_mm=5.0)


def test_vessel_tree_without_lesion_gives_no_lesion():
    image, lung, _ = vessel_tree_ct()
    result = _analyze(image, lung)
    assert [round(les.volume_ml * 1000) for les in result.lesions] == []
    assert not result.call.positive


def test_hilar_calibre_tree_gives_no_lesion():
    # thick vessels seen in thick slices, their bifurcations and the trunk's end at the lung's edge are all vessel
    image, lung, _ = vessel_tree_ct(tree=HILAR_TREE)
    result = _analyze(image, lung)
    assert [round(les.volume_ml * 1000) for les in result.lesions] == []
    assert not result.call.positive


def test_ground_glass_ball_beside_a_thick_vessel_is_kept():
    # 6 mm ball 2 mm from the wall of a 4 mm lobar branch (two slices of 2.5 mm): the shell does not swallow it
    image, lung, truth = vessel_tree_ct(lesion_centre_mm=(63.75, 49.0, 45.6), lesion_radius_mm=3.0,
                                    tree=HILAR_TREE)
    result = _analyze(image, lung)
    assert len(result.lesions) == 1
    assert result.lesions[0].type == "ground_glass"
    assert np.count_nonzero(result.instances[truth]) >= 0.5 * np.count_nonzero(truth)


def test_small_ground_glass_ball_beside_the_tree_is_kept():
    # 6 mm across (two slices of 2.5 mm): after partial volume its equivalent diameter is just above 5 mm
    image, lung, truth = vessel_tree_ct(lesion_centre_mm=(43.75, 70, 25), lesion_radius_mm=3.0)
    result = _analyze(image, lung)
    assert len(result.lesions) == 1
    lesion = result.lesions[0]
    assert lesion.type == "ground_glass"
    assert np.count_nonzero(result.instances[truth]) >= 0.5 * np.count_nonzero(truth)


def _features(voxels, slices, std, near, elongation):
    return ComponentFeatures(voxels=np.array([0.0, voxels]), slices=np.array([0, slices]),
                             at_edge=np.array([False, False]),
                             hu_std=np.array([0.0, std]), vessel_fraction=np.array([0.0, near]),
                             elongation=np.array([0.0, elongation]))


@pytest.mark.parametrize("voxels, slices, std, near, elongation, rejected", [
    (100, 1, 40.0, 0.0, 1.0, True),     # one slice only: plate
    (100, 3, 200.0, 0.9, 1.0, True),    # small, heterogeneous, beside vessels: vessel remnant
    (100, 3, 40.0, 0.9, 1.0, False),    # ground-glass plateau beside a vessel: lesion
    (100, 3, 200.0, 0.2, 1.0, False),   # heterogeneous but away from vessels: lesion (e.g. crazy paving)
    (2000, 6, 200.0, 0.9, 1.0, False),  # large mixed lesion around vessels: lesion
    (100, 3, 40.0, 0.0, 4.0, True),     # small tube: faint vessel segment
    (2000, 6, 40.0, 0.0, 4.0, False),   # large elongated lesion (e.g. along a fissure): lesion
])
def test_component_rules(voxels, slices, std, near, elongation, rejected):
    reject = false_components(_features(voxels, slices, std, near, elongation), voxel_mm3=1.0,
                              keep_single_slice=False, remnant_max_mm3=700.0, remnant_hu_std=150.0,
                              remnant_vessel_fraction=0.6, max_elongation=3.0)
    assert reject.tolist() == [False, rejected]


def test_elongation_of_a_rod_and_a_cube():
    components = np.zeros((4, 30, 30), dtype=np.uint32)
    components[1:3, 2:4, 2:22] = 1  # 2 x 2 x 20 voxel rod along i
    components[1:4, 10:13, 10:13] = 2  # cube
    where = np.nonzero(components)
    elongation = principal_elongation(components[where].astype(np.int64), np.stack(where, axis=1), 2,
                                      (1.0, 1.0, 1.0))
    # rod: variance (20^2 - 1) / 12 along i, (2^2 - 1) / 12 across: ratio sqrt(399 / 3)
    assert elongation[1] == pytest.approx(np.sqrt(399.0 / 3.0), rel=1e-4)
    assert elongation[2] == pytest.approx(1.0, rel=1e-4)


def test_single_slice_component_kept_on_request():
    lesions = np.zeros((5, 20, 20), dtype=bool)
    lesions[2, 5:15, 5:15] = True
    hu = np.full(lesions.shape, -600.0, dtype=np.float32)
    none = np.zeros_like(lesions)
    assert not reject_false_components(lesions, hu, none, (1.0, 1.0, 1.0), axial_axis=0).any()
    kept = reject_false_components(lesions, hu, none, (1.0, 1.0, 1.0), axial_axis=0, keep_single_slice=True)
    assert np.array_equal(kept, lesions)
    # on the last slice of a whole scan: partial volume like any other plate (lung bases and apices)
    edge = np.roll(lesions, 2, axis=0)
    assert not reject_false_components(edge, hu, none, (1.0, 1.0, 1.0), axial_axis=0).any()
    # on inputs of one or two slices the component may go on beyond them: kept
    assert np.array_equal(reject_false_components(edge[3:], hu[3:], none[3:], (1.0, 1.0, 1.0), axial_axis=0),
                          edge[3:])
    single = lesions[2:3]
    assert np.array_equal(reject_false_components(single, hu[2:3], none[2:3], (1.0, 1.0, 1.0), axial_axis=0),
                          single)



def _blob_on_line(blob_radius: int, line_voxels: int):
    """A two-slice blob (in-plane radius ``blob_radius`` voxels of 0.8 mm; slices 2.5 mm) and a one-voxel line of
    candidate density through it on both slices, ``line_voxels`` beyond its edge on each side (a faint vessel in
    the slab). Returns the blob (the lesion mask after the opening) and blob plus line (the candidates before)."""
    k, j, i = np.mgrid[:6, :60, :60]
    blob = (k >= 2) & (k <= 3) & ((j - 30) ** 2 + (i - 30) ** 2 <= blob_radius ** 2)
    line = (k >= 2) & (k <= 3) & (j == 30) & (np.abs(i - 30) <= blob_radius + line_voxels)
    return blob, blob | line


@pytest.mark.parametrize("blob_radius, line_voxels, kept", [
    (1, 20, False),  # a speck where a faint vessel thickens: 10 voxels, about 32 of line within 7.5 mm
    (1, 0, True),  # the same speck alone stands out from the lung around it
    (1, 2, True),  # ... or with a short stub of vessel
    (3, 20, True),  # a blob of 58 voxels with the same vessel running through it
])
def test_bulge_on_a_thin_structure(blob_radius, line_voxels, kept):
    from lungai.pneumonia import ClassicParams
    from lungai.pneumonia.components import bulges_on_thin_structures

    p = ClassicParams()
    blob, before = _blob_on_line(blob_radius, line_voxels)
    out = bulges_on_thin_structures(blob, before, (2.5, 0.8, 0.8), p.remnant_max_mm3, p.thin_reach_mm,
                                    p.thin_max_ratio)
    assert np.array_equal(out, blob if kept else np.zeros_like(blob))


def _chest_wall_case(kind: str):
    """Lung mask in a box of soft tissue (+40 HU) at 1 mm voxels; ``kind``: a chest-wall ``sheet`` that the mask
    took in (its last 4 mm towards the back, j >= 36, along the whole wall: soft tissue continuous with it), a
    ``subpleural`` consolidation ball of 8 mm radius touching the wall, or an ``inner`` sheet 10 mm in front of it
    (surrounded by lung). Returns lesion mask, smoothed HU and lung mask."""
    shape = (30, 50, 50)
    k, j, i = np.mgrid[:shape[0], :shape[1], :shape[2]]
    lung = (k >= 2) & (k < 28) & (j >= 5) & (j < 40) & (i >= 5) & (i < 45)
    if kind == "sheet":
        lesion = lung & (j >= 36)
    elif kind == "subpleural":
        lesion = lung & ((k - 15) ** 2 + (j - 31) ** 2 + (i - 25) ** 2 <= 64)
    else:
        lesion = lung & (j >= 26) & (j < 30) & (np.abs(i - 25) <= 10) & (np.abs(k - 15) <= 8)
    hu = np.where(lung & ~lesion, -850.0, 40.0).astype(np.float32)
    return lesion, hu, lung


@pytest.mark.parametrize("kind, kept", [("sheet", False), ("subpleural", True), ("inner", True)])
def test_chest_wall_sheet(kind, kept):
    from lungai.pneumonia import ClassicParams
    from lungai.pneumonia.components import chest_wall_sheets

    p = ClassicParams()
    lesion, hu, lung = _chest_wall_case(kind)
    out = chest_wall_sheets(lesion, hu, lung, (1.0, 1.0, 1.0), p.consolidation_hu[0], p.sheet_depth_mm,
                            p.sheet_contact, p.sheet_soft_tissue_hu)
    assert np.array_equal(out, lesion if kept else np.zeros_like(lesion))


def airway_ct(speck_centre_mm=None, speck_radius_mm=3.5, seed=0):
    """One lung (-860 HU) with a bronchus running cranio-caudally through it (lumen of 3 mm radius at -1000 HU,
    labelled airway as the lung segmentation does; wall 1.5 mm thick at +20 HU) and, optionally, a small
    ground-glass ball (-550 HU). Positions are (z, y, x) mm."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(np.arange(SHAPE[0]) * SPACING[2], np.arange(SHAPE[1]) * SPACING[1],
                          np.arange(SHAPE[2]) * SPACING[0], indexing="ij")
    lung = np.zeros(SHAPE, dtype=np.uint8)
    lung[:, 4:-4, 4:-4] = 1
    axis = np.hypot(y - 48.0, x - 48.0)
    ct = np.where(lung > 0, -860.0, 40.0).astype(np.float32)
    ct[(axis > 3.0) & (axis <= 4.5) & (lung > 0)] = 20.0
    lumen = (axis <= 3.0) & (lung > 0)
    ct[lumen] = -1000.0
    lung[lumen] = 3
    truth = np.zeros(SHAPE, dtype=bool)
    if speck_centre_mm is not None:
        cz, cy, cx = speck_centre_mm
        truth = np.sqrt((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) <= speck_radius_mm
        ct[truth] = -550.0
    ct = ndi.gaussian_filter(ct, (0.4, 1.2, 1.2)) + rng.normal(0.0, 12.0, SHAPE).astype(np.float32)
    return Image.from_array(ct.astype(np.float32), spacing=SPACING), lung, truth


@pytest.mark.parametrize("distance_mm, kept", [
    (8.5, False),  # beside the bronchial wall: a bulge on it (the wall goes on into the airway-wall shell)
    (25.0, True),  # the same ball in the lung away from the bronchus: a lesion
])
def test_speck_on_a_bronchial_wall(distance_mm, kept):
    image, lung, truth = airway_ct(speck_centre_mm=(50.0, 48.0, 48.0 + distance_mm))
    result = _analyze(image, lung)
    assert len(result.lesions) == (1 if kept else 0)
    if kept:
        assert np.count_nonzero(result.instances[truth]) >= 0.5 * np.count_nonzero(truth)


def test_lesion_along_a_bronchus_is_kept():
    # peribronchial ground glass larger than the bulge rule's size limit (700 mm3) stays a lesion
    image, lung, truth = airway_ct(speck_centre_mm=(50.0, 48.0, 58.0), speck_radius_mm=7.0)
    result = _analyze(image, lung)
    assert len(result.lesions) == 1
    assert np.count_nonzero(result.instances[truth]) >= 0.5 * np.count_nonzero(truth)
