"""Dense-lung recovery details: consolidated bases down to the dome, the dome apex, the hilar zone, the mirrored
other lung outlining a consolidated lobe."""

from __future__ import annotations

import numpy as np

from lungai.labels import LEFT_LUNG, RIGHT_LUNG
from lungai.lung.dome import extend_to_dome, fit_dome

SPACING = (5.0, 2.5, 2.5)  # [S, P, L], index 0 inferior


def _right_base(consolidated: bool):
    """A right lung (footprint radius 62 mm) resting on a dome 30 mm high, over liver (55 HU). With
    ``consolidated`` the posterior recess (more than 37 mm behind the centre, below z = 12) is dense (30 HU),
    so the aerated lung ends in a flat cut above it."""
    nz, ny, nx = 30, 60, 60
    zz, yy, xx = np.mgrid[0:nz, 0:ny, 0:nx].astype(float)
    r2 = (yy - 30) ** 2 + (xx - 30) ** 2
    footprint = r2 <= 25 ** 2
    dome = 12.0 - 0.012 * r2
    lung = footprint & (zz > dome) & (zz < 28)
    hu = np.full((nz, ny, nx), 45.0, dtype=np.float32)  # chest wall around, liver and diaphragm below
    hu[zz <= dome] = 55.0
    hu[lung] = -850.0
    wedge = lung & (yy > 45) & (zz < 12)
    if consolidated:
        hu[wedge] = 30.0
    labels = np.where(hu < -400, RIGHT_LUNG, 0).astype(np.uint8)
    body = np.ones_like(labels, dtype=bool)
    return hu, body, labels, wedge, zz <= dome


def test_dome_fit_ignores_lung_resting_higher_up():
    """Bottom points on a paraboloid plus a raised patch (lung on the heart) give back the paraboloid."""
    yy, xx = np.mgrid[0:40, 0:40].reshape(2, -1) * 2.5
    z = 60.0 - 0.004 * ((yy - 50) ** 2 + (xx - 50) ** 2)
    z[(yy < 25) & (xx < 25)] += 40.0
    coef = fit_dome(yy, xx, z)
    truth = np.array([60.0 - 0.004 * 5000, 0.4, 0.4, -0.004, 0.0, -0.004])
    np.testing.assert_allclose(coef, truth, atol=1e-6)


def test_consolidated_recess_is_continued_down_to_the_dome():
    hu, body, labels, wedge, below_dome = _right_base(consolidated=True)
    out = extend_to_dome(labels, hu, body, SPACING)
    added = (out == RIGHT_LUNG) & (labels == 0)
    assert np.count_nonzero(added & wedge) > 0.9 * wedge.sum()
    assert not (added & ~wedge & ~below_dome).any()  # nothing above the dome but the recess
    assert np.count_nonzero(added & below_dome) < 0.01 * wedge.sum()  # the liver: rounding at the dome only


def test_aerated_base_is_left_alone():
    hu, body, labels, _, _ = _right_base(consolidated=False)
    np.testing.assert_array_equal(extend_to_dome(labels, hu, body, SPACING), labels)


def test_liver_taken_below_the_dome_is_given_back():
    """Dense voxels labelled lung 10-25 mm below the dome fitted from the aerated bottoms (liver that the
    chest-wall rays took beside a basal crescent) are removed; the aerated lung stays."""
    hu, body, labels, _, below_dome = _right_base(consolidated=False)
    zz, yy, xx = np.indices(labels.shape)
    dome = 12.0 - 0.012 * ((yy - 30) ** 2 + (xx - 30) ** 2)
    liver = below_dome & ((yy - 30) ** 2 + (xx - 30) ** 2 <= 25 ** 2) & (xx >= 45) & (zz <= dome - 2) & (zz >= dome - 5)
    assert liver.sum() > 50
    out = extend_to_dome(np.where(liver, RIGHT_LUNG, labels).astype(np.uint8), hu, body, SPACING)
    assert not out[liver].any()
    np.testing.assert_array_equal(out[~liver], labels[~liver])


def test_the_top_of_the_liver_dome_is_not_filled_in_as_a_vessel():
    """Axial slices cut the dome apex as an island inside the lung; per-slice hole filling takes vessels (a 6 mm
    vessel through the upper slices) but not the island resting on the liver below it."""
    from lungai.lung.classic import _fill_lung

    nz, ny, nx = 12, 60, 60
    zz, yy, xx = np.mgrid[0:nz, 0:ny, 0:nx].astype(float)
    r2 = (yy - 30) ** 2 + (xx - 30) ** 2
    liver = zz <= 5.0 - 0.005 * r2  # reaches the chest wall (beyond the lung, radius 25) in slices 0 and 1
    vessel = ((yy - 30) ** 2 + (xx - 10) ** 2 <= 1.5 ** 2) & (zz >= 6)
    labels = np.where((r2 <= 25 ** 2) & ~liver & ~vessel, RIGHT_LUNG, 0).astype(np.uint8)
    island = liver & (zz >= 2)  # lung all around it in these slices
    assert island.sum() > 1000
    out = _fill_lung(labels, SPACING, planar=False)
    assert (out[vessel] == RIGHT_LUNG).all()
    assert np.count_nonzero(out[island] == RIGHT_LUNG) < 0.01 * island.sum()  # the closing's rim at most


def test_hilar_zone_surrounds_the_central_airways_only():
    """The zone where enclosure is stricter lies around bronchi outside the lung (entering the hilum), not around
    a bronchus wrapped by lung in its slice."""
    from lungai.lung.recovery import hilar_zone

    spacing = (2.0, 2.0, 2.0)
    lungs = np.zeros((10, 60, 60), dtype=bool)
    lungs[:, 10:50, 30:58] = True
    airways = np.zeros_like(lungs)
    airways[:, 28:32, 10:14] = True   # main bronchus in the mediastinum, beside the lung
    airways[:, 28:32, 44:48] = True   # segmental bronchus inside the lung
    lungs &= ~airways
    zone = hilar_zone(airways, lungs, spacing)
    assert zone[5, 30, 13 + 5] and not zone[5, 30, 13 + 6]   # 10 mm from the main bronchus, not 12 mm
    assert not zone[5, 30, 40:52].any()


def test_gas_behind_a_thin_wall_is_split_off_but_a_bulla_is_kept():
    """Stomach gas joined to the lung through a one-voxel gap in a thin diaphragm is not lung; a bulla (gas
    as dark, inside the lung) is."""
    from lungai.lung.classic import _gas_behind_thin_walls

    hu = np.full((30, 40, 40), 40.0, dtype=np.float32)
    hu[12:28, 5:35, 5:35] = -850.0          # lung
    hu[18:24, 12:20, 12:20] = -1000.0       # bulla inside it
    hu[2:11, 10:30, 10:30] = -1000.0        # stomach gas under an 1-voxel diaphragm (slice 11) ...
    hu[11, 19:21, 19:21] = -700.0           # ... with a gap
    lungs = hu < -400
    gas = _gas_behind_thin_walls(lungs, hu, voxel_ml=0.008)
    stomach = np.zeros_like(lungs)
    stomach[2:11, 10:30, 10:30] = True
    assert gas[stomach].all()
    assert not gas[12:28].any()             # lung and bulla untouched


def _two_lungs(consolidated: bool):
    """Two mirror-image cylindrical lungs (radius 35 mm) on a flat diaphragm at slice 3, in soft tissue (45 HU).
    With ``consolidated`` the right lung above slice 14 is dense (30 HU) around one air bronchogram joined to its
    aerated base."""
    nz, ny, nx = 30, 40, 80
    zz, yy, xx = np.mgrid[0:nz, 0:ny, 0:nx]
    hu = np.full((nz, ny, nx), 45.0, dtype=np.float32)
    hu[zz <= 3] = 55.0
    left = ((yy - 20) ** 2 + (xx - 58) ** 2 <= 14 ** 2) & (zz >= 4) & (zz <= 27)
    right = ((yy - 20) ** 2 + (xx - 21) ** 2 <= 14 ** 2) & (zz >= 4) & (zz <= 27)
    hu[left | right] = -850.0
    lobe = right & (zz >= 15)
    if consolidated:
        hu[lobe] = 30.0
        hu[((yy - 20) ** 2 + (xx - 21) ** 2 <= 2 ** 2) & (zz >= 15) & (zz <= 25)] = -900.0
    labels = np.where(hu < -400, np.where(xx < 40, RIGHT_LUNG, LEFT_LUNG), 0).astype(np.uint8)
    return hu, np.ones(hu.shape, dtype=bool), labels, lobe


def test_consolidated_lobe_is_outlined_by_the_mirrored_other_lung():
    from lungai.lung.contralateral import mirrored_consolidation

    hu, body, labels, lobe = _two_lungs(consolidated=True)
    out = mirrored_consolidation(labels, hu, body, SPACING)
    added = (out == RIGHT_LUNG) & (labels == 0)
    assert not (added & ~lobe).any()                        # nothing outside the consolidated lobe
    zz, yy, xx = np.indices(lobe.shape)
    lateral_core = lobe & (labels == 0) & (xx <= 21) & ((yy - 20) ** 2 + (xx - 21) ** 2 <= 12 ** 2)
    assert np.count_nonzero(added & lateral_core) > 0.95 * lateral_core.sum()  # the lateral half, but its rim
    assert np.count_nonzero(added) > 0.5 * np.count_nonzero(lobe & (labels == 0))  # not the mediastinal side
    assert not ((out == LEFT_LUNG) & (labels == 0)).any()   # the aerated side is left alone


def test_consolidated_left_lobe_is_outlined_behind_the_mirrored_centre_only():
    """The left lung takes the mirrored right lung only behind the outline's centre (the heart lies in front)."""
    from lungai.lung.contralateral import mirrored_consolidation

    hu, body, _, lobe = _two_lungs(consolidated=True)
    hu, lobe = hu[..., ::-1].copy(), lobe[..., ::-1].copy()
    zz, yy, xx = np.indices(lobe.shape)
    labels = np.where(hu < -400, np.where(xx < 40, RIGHT_LUNG, LEFT_LUNG), 0).astype(np.uint8)
    out = mirrored_consolidation(labels, hu, body, SPACING)
    added = (out == LEFT_LUNG) & (labels == 0)
    assert not (added & ~lobe).any()
    assert not (added & (yy < 20)).any()                    # nothing in front of the outline's centre
    posterior_lateral = lobe & (labels == 0) & (yy >= 22) & (xx >= 58) & ((yy - 20) ** 2 + (xx - 58) ** 2 <= 12 ** 2)
    assert np.count_nonzero(added & posterior_lateral) > 0.9 * posterior_lateral.sum()
    assert not ((out == RIGHT_LUNG) & (labels == 0)).any()


def test_mirrored_outline_leaves_aerated_lungs_alone():
    from lungai.lung.contralateral import mirrored_consolidation

    hu, body, labels, _ = _two_lungs(consolidated=False)
    np.testing.assert_array_equal(mirrored_consolidation(labels, hu, body, SPACING), labels)


def test_lower_lobe_consolidated_deeper_than_50_mm_reaches_the_dome_of_both_lungs():
    """The posterior half of the right lung is dense over its lowest 65 mm, its top recovered: the extension down
    to the dome is deeper than MAX_DEPTH_MM, which only the dome fitted from both lungs allows."""
    hu, body, _, _ = _two_lungs(consolidated=False)
    zz, yy, xx = np.indices(hu.shape)
    wedge = (hu < -400) & (xx < 40) & (yy > 20) & (zz <= 16)
    hu[wedge] = 30.0
    labels = np.where(hu < -400, np.where(xx < 40, RIGHT_LUNG, LEFT_LUNG), 0).astype(np.uint8)
    labels[wedge & (zz >= 15)] = RIGHT_LUNG  # the top of the consolidation, recovered by the chest-wall rays
    out = extend_to_dome(labels, hu, body, SPACING)
    added = (out == RIGHT_LUNG) & (labels == 0)
    assert not (added & ~wedge).any()
    assert np.count_nonzero(added[4] & wedge[4]) > 0.7 * wedge[4].sum()  # the lowest slice above the dome


def _column_gaps():
    """Aerated right lung in every slice of a 20-slice stack, except where dense blocks interrupt it: a
    consolidation (30 HU, 100 mm^2, 35 mm tall) with lung above and below, an organ top at the bottom (lung above
    only), a fat block and a 25 mm^2 rim between aerated slices."""
    hu = np.full((20, 40, 40), -850.0, dtype=np.float32)
    consolidation = np.zeros(hu.shape, dtype=bool)
    consolidation[6:13, 10:14, 10:15] = True
    organ = np.zeros(hu.shape, dtype=bool)
    organ[0:4, 22:28, 10:16] = True
    fat = np.zeros(hu.shape, dtype=bool)
    fat[6:13, 25:30, 25:30] = True
    rim = np.zeros(hu.shape, dtype=bool)
    rim[6:13, 10:14, 30] = True
    hu[consolidation | organ | rim] = 30.0
    hu[fat] = -100.0
    labels = np.where(hu < -400, RIGHT_LUNG, 0).astype(np.uint8)
    return hu, labels, consolidation, organ, fat, rim


def test_dense_tissue_between_aerated_slices_is_bridged():
    from lungai.lung.bridging import bridge_across_slices

    hu, labels, consolidation, organ, fat, rim = _column_gaps()
    out = bridge_across_slices(labels, hu, np.ones(hu.shape, dtype=bool), SPACING)
    assert (out[consolidation] == RIGHT_LUNG).all()
    assert not out[organ | fat | rim].any()
    hilum = np.zeros(hu.shape, dtype=bool)
    hilum[:, 5:20, 5:20] = True  # near the central airways nothing is bridged
    out = bridge_across_slices(labels, hu, np.ones(hu.shape, dtype=bool), SPACING, hilum)
    np.testing.assert_array_equal(out, labels)


def _gutter(consolidated: bool):
    """A spine (vertebral body of radius 17.5 mm, 400 HU) between two aerated lungs, 5 mm of pleura from it, and a
    vein (8 mm) beside it in every slice. With ``consolidated`` the medial posterior part of the right lung is
    dense (30 HU) in slices 12-17: its aerated edge then lies 35 mm from the spine instead of 5 mm."""
    nz, ny, nx = 30, 80, 100
    _, yy, xx = np.mgrid[0:nz, 0:ny, 0:nx]
    hu = np.full((nz, ny, nx), 40.0, dtype=np.float32)
    spine = (yy - 60) ** 2 + (xx - 50) ** 2 <= 7 ** 2
    right = (yy >= 20) & (yy <= 72) & (xx >= 10) & (xx <= 40)
    left = (yy >= 20) & (yy <= 72) & (xx >= 60) & (xx <= 90)
    vein = (yy - 50) ** 2 + (xx - 42) ** 2 <= 1.6 ** 2
    hu[right | left] = -850.0
    hu[spine] = 400.0
    hu[vein] = 40.0
    consolidation = np.zeros(hu.shape, dtype=bool)
    if consolidated:
        consolidation[12:18] = (right & (xx >= 28) & (yy >= 48))[12]
        consolidation &= ~vein
        hu[consolidation] = 30.0
    labels = np.where(hu < -400, np.where(xx < 50, RIGHT_LUNG, LEFT_LUNG), 0).astype(np.uint8)
    return hu, labels, consolidation, vein


def test_consolidation_in_the_right_paravertebral_gutter_is_recovered():
    from lungai.lung.paravertebral import right_gutter, vertebral_centres

    hu, labels, consolidation, vein = _gutter(consolidated=True)
    body = np.ones(hu.shape, dtype=bool)
    centres = vertebral_centres(hu, body, labels > 0, SPACING)
    np.testing.assert_allclose(centres, np.tile([60.0, 50.0], (30, 1)))
    out = right_gutter(labels, hu, body, SPACING)
    added = (out == RIGHT_LUNG) & (labels == 0)
    assert np.count_nonzero(added & consolidation) > 0.8 * consolidation.sum()
    assert not (added & ~consolidation).any()  # not the vein, the pleura or the left side
    hu, labels, _, _ = _gutter(consolidated=False)
    np.testing.assert_array_equal(right_gutter(labels, hu, body, SPACING), labels)


def test_the_aortic_sector_lies_left_and_in_front_of_the_spine():
    from lungai.lung.paravertebral import beside_the_aorta

    centres = np.array([[60.0, 50.0], [np.nan, np.nan]])
    sector = beside_the_aorta(centres, (2, 100, 100), SPACING)
    assert sector[0, 60 - 8, 50 + 8]          # 28 mm away, 45 degrees to the left of straight ahead
    assert not sector[0, 60, 50 + 12]         # beside the spine (90 degrees): the gutter, left to the rays
    assert not sector[0, 60 - 8, 50 - 8]      # the right side
    assert not sector[0, 60 - 20, 50 + 20]    # 71 mm away
    assert not sector[1].any()                # no spine found in this slice



def _lobe_consolidated_above(z_top: int = 5):
    """A right lung (disc of radius 50 mm in every slice) in tissue (45 HU), aerated below slice ``z_top`` and
    consolidated (30 HU) from it upwards (an upper lobe), where the other steps found only its posterior part."""
    zz, yy, xx = np.mgrid[0:10, 0:60, 0:60]
    disc = (yy - 30) ** 2 + (xx - 30) ** 2 <= 20 ** 2
    hu = np.where(disc, np.where(zz < z_top, -850.0, 30.0), 45.0).astype(np.float32)
    labels = np.where(disc & ((zz < z_top) | (yy > 40)), RIGHT_LUNG, 0).astype(np.uint8)
    return hu, labels, disc


def test_consolidated_slices_are_filled_out_from_the_neighbouring_lung():
    from lungai.lung.propagation import propagate_outline

    hu, labels, disc = _lobe_consolidated_above()
    out = propagate_outline(labels, hu, np.ones(hu.shape, dtype=bool), SPACING)
    added = (out == RIGHT_LUNG) & (labels == 0)
    assert not (added & ~disc).any()                    # nothing outside the lung's outline
    np.testing.assert_array_equal(out[:5], labels[:5])  # aerated slices are left alone
    missing = disc & (labels == 0)
    # each slice takes the slice below shrunk by 2.5 mm (half the 5 mm slice step): all but a rim
    for z, depth in ((5, 1), (7, 3)):
        inner = ((np.indices(disc.shape[1:]) - 30) ** 2).sum(axis=0) <= (20 - depth) ** 2
        assert added[z][inner & missing[z]].all()
    assert np.count_nonzero(added) > 0.7 * missing.sum()


def test_consolidated_slices_are_not_continued_down_into_an_organ_top():
    """The lung of the slice above covers the top of the liver or spleen in the slice below; with no dome to bound
    it (a single lung here), nothing is taken downwards."""
    from lungai.lung.propagation import propagate_outline

    hu, labels, _ = _lobe_consolidated_above()
    hu, labels = hu[::-1].copy(), labels[::-1].copy()  # aerated above, consolidated below
    out = propagate_outline(labels, hu, np.ones(hu.shape, dtype=bool), SPACING)
    np.testing.assert_array_equal(out, labels)


def test_tissue_between_two_parts_of_a_consolidated_slice_is_lung():
    """An aerated anterior lobe and the consolidation recovered behind it, 20 mm of consolidated lobe between them
    (across the fissure) in a mostly consolidated slice: the band is lung; the heart beside the lung is not."""
    from lungai.lung.propagation import propagate_outline

    hu = np.full((3, 60, 60), 45.0, dtype=np.float32)
    lobe = np.zeros(hu.shape, dtype=bool)
    lobe[:, 10:50, 10:30] = True
    hu[lobe] = 30.0
    hu[:, 10:16, 10:30] = -850.0                       # the aerated lobe in front
    labels = np.zeros(hu.shape, dtype=np.uint8)
    labels[:, 10:16, 10:30] = RIGHT_LUNG
    labels[:, 24:50, 10:30] = RIGHT_LUNG               # the consolidation recovered behind it ...
    labels[:, 10:50, 10:12] = RIGHT_LUNG               # ... and along the chest wall
    out = propagate_outline(labels, hu, np.ones(hu.shape, dtype=bool), SPACING)
    band = lobe & (labels == 0)
    # lung in front, behind and along both diagonals: the lateral part of the band; towards the heart one
    # diagonal leaves the lobe
    assert (out[:, 16:24, 10:22] == RIGHT_LUNG).all()
    assert np.count_nonzero(out[band]) > 0.6 * band.sum()
    assert not out[:, :, 30:].any()                     # the "heart" medial to the lung


def test_outline_propagation_leaves_aerated_lungs_alone():
    from lungai.lung.propagation import propagate_outline

    hu, labels, _ = _lobe_consolidated_above(z_top=10)  # aerated throughout
    np.testing.assert_array_equal(propagate_outline(labels, hu, np.ones(hu.shape, dtype=bool), SPACING), labels)



def test_the_left_lung_is_filled_out_behind_its_centre_only():
    """The heart lies in front of the left lung's centre, against the lingula and the lower lobe."""
    from lungai.lung.propagation import propagate_outline

    hu, _, disc = _lobe_consolidated_above()
    zz, yy, xx = np.indices(hu.shape)
    lateral_half = disc & (xx > 30)  # what the other steps found of the consolidated slices: centre at row 30
    labels = np.where(disc & ((zz < 5) | lateral_half), LEFT_LUNG, 0).astype(np.uint8)
    out = propagate_outline(labels, hu, np.ones(hu.shape, dtype=bool), SPACING)
    added = (out == LEFT_LUNG) & (labels == 0)
    assert not (added & (yy < 30)).any()
    assert not (added & ~disc).any()
    assert np.count_nonzero(added[5]) > 0.8 * np.count_nonzero(disc[5] & ~lateral_half[5] & (yy[5] > 31))


def _dense_wall_in_lung():
    """An aerated right lung block (-850 HU) split by a dense wall (30 HU, 5 mm thick across x = 19-20) with
    lung on both sides of it: enclosed along every axis that crosses it (away from the block's faces, where the
    axes leaving the grid see no lung)."""
    hu = np.full((16, 40, 40), -850.0, dtype=np.float32)
    hu[:, :, 19:21] = 30.0
    labels = np.where(hu < -400, RIGHT_LUNG, 0).astype(np.uint8)
    wall = labels == 0
    return hu, labels, wall


def test_enclosed_tissue_is_taken_only_beside_lung_added_by_the_later_steps():
    from lungai.lung.recovery import _add_enclosed

    hu, labels, wall = _dense_wall_in_lung()
    body = np.ones(hu.shape, dtype=bool)
    everywhere = labels.copy()
    _add_enclosed(everywhere, hu, body, SPACING, False, None)
    assert (everywhere[2:-2, 5:-5][wall[2:-2, 5:-5]] == RIGHT_LUNG).all()
    far = np.zeros(hu.shape, dtype=bool)
    far[6, 20, 2] = True  # lung added 17 voxels (42 mm) from the wall: nothing beside it to test
    untouched = labels.copy()
    _add_enclosed(untouched, hu, body, SPACING, False, None, near=far)
    np.testing.assert_array_equal(untouched, labels)
    beside = np.zeros(hu.shape, dtype=bool)
    beside[6, 20, 18] = True  # lung added against the wall: the wall within two voxels (6-connected) of it
    near = labels.copy()
    _add_enclosed(near, hu, body, SPACING, False, None, near=beside)
    added = np.argwhere(near != labels)
    assert {tuple(a) for a in added} == {(6, 20, 19), (6, 20, 20), (5, 20, 19), (7, 20, 19), (6, 19, 19),
                                         (6, 21, 19)}


def _consolidated_left_hemithorax():
    """One consolidated left hemithorax slab (disc of radius 87.5 mm, 30 HU, inside a rib ring) of which the other
    steps found all but an anterolateral rim (20-70 degrees in front of lateral, beyond 45 mm from the centre) and
    the heart (40 HU, 95-150 degrees: beyond straight ahead, against the anterior ribs)."""
    zz, yy, xx = np.mgrid[0:3, 0:100, 0:100].astype(float)
    r = np.hypot(yy - 50, xx - 50)
    angle = np.degrees(np.arctan2(50 - yy, xx - 50))  # 0 lateral (the patient's left), 90 straight ahead
    hu = np.full(r.shape, 45.0, dtype=np.float32)
    inside = r <= 35
    hu[(r > 36) & (r <= 39)] = 400.0
    hu[inside] = 30.0
    rim = inside & (r > 18) & (angle > 20) & (angle < 70)
    heart = inside & (r > 12) & (angle > 95) & (angle < 150)
    hu[heart] = 40.0
    labels = np.where(inside & ~rim & ~heart, LEFT_LUNG, 0).astype(np.uint8)
    hu[(labels == LEFT_LUNG) & (np.abs(yy - 50) < 1) & (r < 25)] = -850.0  # an air bronchogram
    return hu, labels, rim, heart


def test_left_rays_reach_the_consolidated_rim_but_not_the_heart():
    from lungai.lung.recovery import left_rays_in_consolidated_slices, rib_cage

    hu, labels, rim, heart = _consolidated_left_hemithorax()
    out = left_rays_in_consolidated_slices(labels, hu, np.ones(hu.shape, dtype=bool), SPACING,
                                           rib_cage(hu, SPACING))
    added = (out == LEFT_LUNG) & (labels == 0)
    assert np.count_nonzero(added & rim) > 0.85 * rim.sum()
    assert not (added & heart).any()
    assert not (added & ~rim).any()


def test_left_rays_leave_an_aerated_slice_alone():
    """The same slab with the lung aerated is not consolidated: the step leaves it to the first rays."""
    from lungai.lung.recovery import left_rays_in_consolidated_slices, rib_cage

    hu, labels, rim, _ = _consolidated_left_hemithorax()
    hu[labels == LEFT_LUNG] = -850.0
    out = left_rays_in_consolidated_slices(labels, hu, np.ones(hu.shape, dtype=bool), SPACING,
                                           rib_cage(hu, SPACING))
    np.testing.assert_array_equal(out, labels)


def _left_lobe_lost_to_its_bronchograms():
    """The consolidated left hemithorax slab with only an inner core (35 mm radius, around an air bronchogram)
    found: no edge of it reaches the ribs."""
    hu, _, _, _ = _consolidated_left_hemithorax()
    zz, yy, xx = np.mgrid[0:3, 0:100, 0:100].astype(float)
    r = np.hypot(yy - 50, xx - 50)
    angle = np.degrees(np.arctan2(50 - yy, xx - 50))
    hu[(r <= 35) & (hu == 40.0)] = 30.0  # no heart: the whole disc is lobe
    labels = np.where(r <= 14, LEFT_LUNG, 0).astype(np.uint8)
    return hu, labels, r, angle


def test_a_lung_with_no_edge_at_the_ribs_is_measured_against_the_other_lungs_margin():
    from lungai.lung.recovery import _recover_slice, rib_cage

    hu, labels, r, angle = _left_lobe_lost_to_its_bronchograms()
    cage = rib_cage(hu, SPACING)
    body = np.ones(hu.shape[1:], dtype=bool)
    args = (labels[1] == LEFT_LUNG, LEFT_LUNG, hu[1], labels[1] > 0, body, SPACING[1:], cage[1], 85.0)
    alone, own = _recover_slice(*args)
    assert not alone.any() and own is not None and own > 40  # its own rays: every gap the same, 50 mm
    added, own = _recover_slice(*args, reference_margin=2.5)
    assert own is None
    lateral_rim = (r[1] > 16) & (r[1] <= 33) & (np.abs(angle[1]) < 60)
    assert np.count_nonzero(added & lateral_rim) > 0.9 * lateral_rim.sum()
    assert not (added & (r[1] > 36)).any()                         # the ribs and beyond
    assert not (added & (angle[1] > 90)).any()                     # in front beyond straight ahead (the heart)


def test_a_borrowed_margin_adds_nothing_without_a_dome_to_bound_it():
    """Only above the dome fitted from both lungs may a slice measured against the other lung's margin take
    tissue (the spleen and stomach reach the ribs below the recess); with one lung there is no such dome."""
    from lungai.lung.recovery import left_rays_in_consolidated_slices, rib_cage

    hu, labels, _, _ = _left_lobe_lost_to_its_bronchograms()
    body = np.ones(hu.shape, dtype=bool)
    cage = rib_cage(hu, SPACING)
    out = left_rays_in_consolidated_slices(labels, hu, body, SPACING, cage, right_margins=np.full(3, 2.5))
    np.testing.assert_array_equal(out, labels)
