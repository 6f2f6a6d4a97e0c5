"""Lung segmentation: accuracy on the phantom and real data, orientation invariance, bad inputs, zones, figures."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.errors import Cancelled, InputError, LungAIError
from lungai.image import Image
from lungai.labels import AIRWAYS, LEFT_LUNG, RIGHT_LUNG
from lungai.lung import ZONE_TABLE, lung_figures, segment_lungs
from lungai.lung.figures import breathing_phase
from lungai.lung.recovery import recover_dense_lung, rib_cage
from lungai.progress import Progress

PHANTOM_SIZE, PHANTOM_SPACING = (128, 128, 64), (2.5, 2.5, 5.0)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))


def _phantom(preset: str):
    from lungai.phantom import PhantomConfig, make_phantom

    case = make_phantom(PhantomConfig(seed=3, size=PHANTOM_SIZE, spacing=PHANTOM_SPACING, preset=preset))
    return case.ct, case.truth["lungs"].array


@pytest.fixture(scope="module")
def healthy():
    ct, truth = _phantom("healthy")
    return ct, truth, segment_lungs(ct, method="classic")


@pytest.fixture(scope="module")
def severe():
    ct, truth = _phantom("covid-severe")
    return ct, truth, segment_lungs(ct, method="classic")


def _check_sides(result, ct: Image) -> None:
    """Label 1 lies at the patient's right (-x in LPS) of label 2, whatever the array layout."""
    lab = result.labels.array
    centres = {}
    for side in (RIGHT_LUNG, LEFT_LUNG):
        idx = np.argwhere(lab == side).mean(axis=0)[::-1]  # (i, j, k)
        centres[side] = ct.index_to_lps(idx)[0]
    assert centres[RIGHT_LUNG] < centres[LEFT_LUNG] - 40


# the targets themselves: healthy 0.98, severe COVID 0.97 per lung (the 10-seed figures are in
# Testing/benchmarks/bench_lungs.py)
@pytest.mark.parametrize("fixture, minimum", [("healthy", 0.98), ("severe", 0.97)])
def test_phantom_dice_per_lung(request, fixture, minimum):
    ct, truth, result = request.getfixturevalue(fixture)
    lab = result.labels.array
    for side in (RIGHT_LUNG, LEFT_LUNG):
        assert dice(truth == side, lab == side) >= minimum, (fixture, side)
    _check_sides(result, ct)
    # airways are labelled, and the central airways of the truth are not in the lung mask
    airway_truth = truth == AIRWAYS
    assert dice(airway_truth, lab == AIRWAYS) > 0.8
    assert np.count_nonzero(airway_truth & np.isin(lab, (RIGHT_LUNG, LEFT_LUNG))) < 0.1 * airway_truth.sum()


def test_consolidation_against_the_chest_wall_stays_in_the_lung(healthy):
    """A controlled dense lesion: lung within 25 mm of the lateral pleura of the right lung at mid-height is made
    soft-tissue dense (as consolidation is), so its aerated border retracts from the ribs."""
    ct, truth, _ = healthy
    right = truth == RIGHT_LUNG
    k = int(np.median(np.nonzero(right.any(axis=(1, 2)))[0]))
    lateral_edge = np.nonzero(right[k].any(axis=0))[0][0]  # smallest i = patient's right side (identity direction)
    rows = np.nonzero(right[k, :, lateral_edge])[0]
    centre = np.array([k, rows.mean(), lateral_edge]) * np.array(ct.spacing[::-1])
    zz, yy, xx = np.meshgrid(*[np.arange(n) * s for n, s in zip(ct.shape, ct.spacing[::-1])], indexing="ij")
    lesion = right & (((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2) <= 25.0 ** 2)
    assert lesion.sum() * ct.voxel_volume_ml > 15  # a sizeable lesion (ml)
    array = ct.array.astype(np.float32).copy()
    rng = np.random.default_rng(7)
    array[lesion] = 35.0 + rng.normal(0, 15, lesion.sum())
    result = segment_lungs(ct.like(array), method="classic")
    lab = result.labels.array
    assert np.count_nonzero(lesion & (lab == RIGHT_LUNG)) > 0.8 * lesion.sum()
    assert dice(right, lab == RIGHT_LUNG) >= 0.98
    assert result.details["recovered_dense_lung_ml"] > 0.5 * lesion.sum() * ct.voxel_volume_ml


def _thorax_with_ribs_in_two_slices():
    """Five 2.5 mm slices at 2 mm in-plane: a right lung (radius 40 mm) whose lateral 100 degrees are dense out to
    the pleura (air ends 25 mm short of it), inside a rib ring 4-8 mm beyond the pleura that only the first and last
    slice cut; the three slices between pass through the intercostal space."""
    nz, ny, nx = 5, 100, 120
    yy, xx = np.mgrid[0:ny, 0:nx] * 2.0
    cy, cx = 100.0, 110.0
    r = np.hypot(yy - cy, xx - cx)
    from_lateral = np.degrees(np.arctan2(yy - cy, -(xx - cx)))  # 0 = the patient's right (-x)
    hu = np.full((nz, ny, nx), -1000.0, dtype=np.float32)
    body = (((yy - cy) / 95.0) ** 2 + ((xx - 120.0) / 115.0) ** 2) <= 1.0
    hu[:, body] = 40.0
    pleura = r <= 40.0
    dense = pleura & (r > 15.0) & (np.abs(from_lateral) < 50.0)
    hu[:, pleura & ~dense] = -850.0
    for z in (0, nz - 1):
        hu[z, (r > 44.0) & (r <= 48.0) & (xx < 150.0)] = 600.0
    labels = np.zeros((nz, ny, nx), dtype=np.uint8)
    labels[:, pleura & ~dense] = RIGHT_LUNG
    return hu, np.broadcast_to(body, hu.shape).copy(), labels, dense, r


def test_rib_cage_of_a_slice_includes_the_ribs_of_its_neighbours():
    hu, *_ = _thorax_with_ribs_in_two_slices()
    cage = rib_cage(hu, (2.5, 2.0, 2.0))
    assert not (hu[2] >= 180).any() and cage[2].any()  # 5 mm from both rib slices (within 6 mm)
    np.testing.assert_array_equal(cage[2], hu[0] >= 180)
    assert not rib_cage(hu, (10.0, 2.0, 2.0))[2].any()  # 20 mm away: not the same ribs
    assert not rib_cage(hu, (2.5, 2.0, 2.0), planar=True)[2].any()


def test_consolidation_in_slices_between_the_ribs_is_recovered():
    """Slices cutting no rib still find the cage from the slices above and below (ribs run obliquely)."""
    hu, body, labels, dense, r = _thorax_with_ribs_in_two_slices()
    out = recover_dense_lung(labels, hu, body, (2.5, 2.0, 2.0))
    for z in range(1, 4):
        assert np.count_nonzero((out[z] == RIGHT_LUNG) & dense) > 0.85 * dense.sum(), z
        assert not ((out[z] > 0) & (r > 42.0)).any()  # nothing beyond the pleura (chest wall, ribs)


def test_flipped_and_permuted_axes_give_the_same_mask(healthy):
    ct, _, result = healthy
    base = result.labels.array
    sx, sy, sz = ct.spacing
    nz, ny, nx = ct.shape
    # i axis reversed: direction column i points to -x, origin moves to the far end
    flipped = Image(np.ascontiguousarray(ct.array[:, :, ::-1]), ct.spacing,
                    tuple(ct.index_to_lps((nx - 1, 0, 0))), ct.direction @ np.diag([-1.0, 1.0, 1.0]))
    res = segment_lungs(flipped, method="classic")
    np.testing.assert_array_equal(res.labels.array, base[:, :, ::-1])
    _check_sides(res, flipped)
    # array stored as [i, j, k] (axes permuted, slices last) with the direction columns permuted to match
    permuted = Image(np.ascontiguousarray(ct.array.transpose(2, 1, 0)), (sz, sy, sx), ct.origin,
                     ct.direction[:, [2, 1, 0]])
    res = segment_lungs(permuted, method="classic")
    np.testing.assert_array_equal(res.labels.array, base.transpose(2, 1, 0))
    np.testing.assert_array_equal(res.zones.array, result.zones.array.transpose(2, 1, 0))


def test_oblique_direction_maps_back_to_the_input_grid(healthy):
    ct, truth, result = healthy
    # resample the phantom onto a grid tilted 12 degrees about the left-right axis (gantry tilt)
    angle = np.radians(12.0)
    tilt = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    reference = ct.to_sitk()
    grid = sitk.Image(reference.GetSize(), sitk.sitkInt16)
    grid.SetSpacing(reference.GetSpacing())
    grid.SetDirection(tuple(tilt.ravel()))
    centre = reference.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in reference.GetSize()])
    half = tilt @ (np.asarray(reference.GetSpacing()) * (np.asarray(reference.GetSize()) - 1) / 2)
    grid.SetOrigin(tuple(np.asarray(centre) - half))
    tilted = sitk.Resample(reference, grid, sitk.Transform(), sitk.sitkLinear, -1024.0)
    res = segment_lungs(Image.from_sitk(tilted), method="classic")
    assert np.allclose(res.labels.direction, tilt)
    back = sitk.Resample(res.labels.to_sitk(), reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    back = sitk.GetArrayFromImage(back)
    ones = sitk.Cast(tilted * 0 + 1, sitk.sitkUInt8)  # the tilted grid's extent
    inside = sitk.GetArrayFromImage(sitk.Resample(ones, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0)) > 0
    for side in (RIGHT_LUNG, LEFT_LUNG):
        assert dice((truth == side) & inside, (back == side) & inside) > 0.95


def _ellipse(shape, centre, radii):
    zz, yy, xx = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((g - c) / r) ** 2 for g, c, r in zip((zz, yy, xx), centre, radii)) <= 1.0


def test_no_lungs_in_the_field_of_view_is_refused():
    rng = np.random.default_rng(0)
    shape = (40, 96, 96)
    volume = np.full(shape, -1000.0) + rng.normal(0, 10, shape)
    body = _ellipse(shape, (20, 48, 48), (60, 35, 42))
    volume[body] = 40 + rng.normal(0, 10, np.count_nonzero(body))  # abdomen: soft tissue only
    image = Image.from_array(volume.astype(np.float32), spacing=(3.0, 3.0, 5.0), metadata={"source": "abdomen.nii"})
    with pytest.raises(InputError, match="no lungs in the field of view") as err:
        segment_lungs(image, method="classic")
    assert err.value.path == "abdomen.nii"


def test_head_ct_is_refused():
    rng = np.random.default_rng(1)
    shape = (40, 96, 96)
    volume = np.full(shape, -1000.0) + rng.normal(0, 10, shape)
    skull = _ellipse(shape, (20, 48, 48), (40, 38, 32))
    brain = _ellipse(shape, (20, 48, 48), (36, 34, 28))
    volume[skull] = 900.0
    volume[brain] = 35 + rng.normal(0, 8, np.count_nonzero(brain))
    for centre in ((12, 22, 38), (12, 22, 58)):  # maxillary sinuses: small air cavities
        volume[_ellipse(shape, centre, (4, 5, 5))] = -1000.0
    image = Image.from_array(volume.astype(np.float32), spacing=(0.5, 0.5, 5.0))
    with pytest.raises(InputError, match="no lungs"):
        segment_lungs(image, method="classic")


def test_mr_like_image_is_refused():
    rng = np.random.default_rng(2)
    image = Image.from_array(rng.uniform(0, 900, (20, 64, 64)).astype(np.float32), spacing=(1.5, 1.5, 3.0))
    with pytest.raises(InputError, match="not a CT in Hounsfield units"):
        segment_lungs(image)


def test_missing_optional_backends_say_what_is_missing(healthy, monkeypatch):
    import importlib.util

    ct = healthy[0]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("lungmask", "totalsegmentator") else real(name, *a))
    with pytest.raises(LungAIError, match="lungmask.*not installed"):
        segment_lungs(ct, method="lungmask")
    with pytest.raises(LungAIError, match="totalsegmentator.*not installed"):
        segment_lungs(ct, method="totalsegmentator")
    with pytest.raises(ValueError, match="unknown lung segmentation method"):
        segment_lungs(ct, method="magic")
    with pytest.raises(LungAIError, match="no-such-model"):
        segment_lungs(ct, method="model", model_name="no-such-model")


def test_cancel_stops_the_run(healthy):
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        segment_lungs(healthy[0], method="classic", progress=progress)


def test_zones_split_each_lung_in_thirds_and_halves(healthy):
    ct, _, result = healthy
    lab, zones = result.labels.array, result.zones.array
    assert set(np.unique(zones)) - {0} == set(ZONE_TABLE)
    np.testing.assert_array_equal(zones > 0, np.isin(lab, (RIGHT_LUNG, LEFT_LUNG)))
    assert all(name.startswith("right") for value, name in ZONE_TABLE.items() if np.all(lab[zones == value] == 1))
    centre = {name: ct.index_to_lps(np.argwhere(zones == value).mean(axis=0)[::-1])
              for value, name in ZONE_TABLE.items()}
    for side in ("right", "left"):
        assert centre[f"{side} upper ventral"][2] > centre[f"{side} middle ventral"][2] > centre[f"{side} lower ventral"][2]
        assert centre[f"{side} middle dorsal"][1] > centre[f"{side} middle ventral"][1]  # dorsal is +y (posterior)
    counts = np.bincount(zones.ravel(), minlength=13)[1:]
    assert counts.min() > 0.02 * counts.sum()


def test_figures_against_hand_computed_values():
    labels = np.zeros((2, 10, 10), dtype=np.uint8)
    hu = np.zeros((2, 10, 10), dtype=np.float32)
    labels[0, :5] = RIGHT_LUNG  # 50 voxels
    hu[0, :5] = np.arange(50).reshape(5, 10) - 900  # -900..-851
    labels[1, :2] = LEFT_LUNG  # 20 voxels
    hu[1, :2] = -800
    labels[1, 9, 9] = AIRWAYS
    spacing = (2.0, 2.0, 2.5)  # 10 mm^3 = 0.01 ml per voxel
    figures = lung_figures(Image.from_array(labels, spacing), Image.from_array(hu, spacing))
    assert figures["right_lung"]["volume_ml"] == pytest.approx(0.5)
    assert figures["left_lung"]["volume_ml"] == pytest.approx(0.2)
    assert figures["total"]["volume_ml"] == pytest.approx(0.7)
    assert figures["right_left_ratio"] == pytest.approx(2.5)
    assert figures["right_lung"]["mean_hu"] == pytest.approx(-875.5)
    assert figures["right_lung"]["hu_percentiles"]["p50"] in (-876.0, -875.0)
    assert figures["left_lung"]["hu_percentiles"]["p15"] == -800.0
    assert figures["airways_volume_ml"] == pytest.approx(0.01)


def test_breathing_phase_from_density_and_volume():
    deep = breathing_phase(-870.0, 5800.0)
    assert deep["phase"] == "inspiration" and deep["confidence"] > 0.8
    out = breathing_phase(-720.0, 2600.0)
    assert out["phase"] == "expiration" and out["confidence"] > 0.8
    assert breathing_phase(None, 0.0)["phase"] == "unknown"
    partial = breathing_phase(-870.0, 300.0)  # a slab: density alone, with less confidence
    assert partial["phase"] == "inspiration" and partial["confidence"] < deep["confidence"]
    assert partial["basis"].startswith("density only")


def test_phantom_is_inspiration(healthy):
    assert healthy[2].figures["breathing_phase"]["phase"] == "inspiration"


def test_segments_are_named_and_coloured(healthy):
    result = healthy[2]
    names = {s.label: s.name for s in result.segments()}
    assert names == {RIGHT_LUNG: "right lung", LEFT_LUNG: "left lung", AIRWAYS: "airways"}
    zone_names = {s.label: s.name for s in result.zone_segments()}
    assert zone_names == ZONE_TABLE
    assert result.provenance.method == "lungs-classic"


def test_auto_never_picks_an_unvalidated_shipped_model():
    from types import SimpleNamespace

    from lungai.lung.backends import trusted_for_auto

    assert not trusted_for_auto(SimpleNamespace(origin="bundled", training={"data": {"name": "phantoms"}}))
    assert trusted_for_auto(SimpleNamespace(origin="bundled", training={"auto_select": True}))
    assert trusted_for_auto(SimpleNamespace(origin="user", training={}))
