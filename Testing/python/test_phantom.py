"""Synthetic chest CT phantom: ground truth agrees with the image, geometry, determinism, files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from lungai.io import read_image, read_segmentation
from lungai.labels import AIRWAYS, CONSOLIDATION, GROUND_GLASS, LEFT_LUNG, LLL, LUL, RIGHT_LUNG, RLL, RML, RUL
from lungai.phantom import PRESETS, PhantomConfig, make_cohort, make_phantom, save_case

SMALL = dict(size=(72, 72, 36), spacing=(4.8, 4.8, 9.0))


@pytest.fixture(scope="module")
def healthy():
    return make_phantom(PhantomConfig(seed=0, preset="healthy", **SMALL))


@pytest.fixture(scope="module")
def covid():
    return make_phantom(PhantomConfig(seed=1, preset="covid-severe", **SMALL))


@pytest.fixture(scope="module")
def pe():
    return make_phantom(PhantomConfig(seed=2, preset="pe", contrast="ctpa", **SMALL))


def _interior(mask: np.ndarray) -> np.ndarray:
    return ndimage.binary_erosion(mask, iterations=1)


def test_grid_and_truth_share_geometry(healthy):
    ct = healthy.ct
    assert ct.array.shape == (36, 72, 72) and ct.array.dtype == np.float32
    assert ct.spacing == (4.8, 4.8, 9.0)
    assert np.allclose(ct.direction, np.eye(3))
    assert set(healthy.truth) == {"lungs", "lobes", "arteries", "vessels", "lesions", "lesion_class", "emboli"}
    for image in list(healthy.truth.values()) + [healthy.clean_ct]:
        assert image.same_grid(ct)


def test_left_lung_on_patient_left(healthy):
    lungs = healthy.truth["lungs"]
    for label, sign in ((RIGHT_LUNG, -1), (LEFT_LUNG, 1)):
        k, j, i = np.nonzero(lungs.array == label)
        x = lungs.index_to_lps([i.mean(), j.mean(), k.mean()])[0]
        assert sign * x > 40, f"lung {label} centroid at x={x:.1f} mm is on the wrong side (LPS +x = left)"


def test_lobes_tile_lungs_exactly(healthy, covid):
    for case in (healthy, covid):
        lungs, lobes = case.truth["lungs"].array, case.truth["lobes"].array
        assert np.array_equal(lobes > 0, np.isin(lungs, [RIGHT_LUNG, LEFT_LUNG]))
        assert set(np.unique(lobes[lungs == RIGHT_LUNG])) == {RUL, RML, RLL}
        assert set(np.unique(lobes[lungs == LEFT_LUNG])) == {LUL, LLL}
        # lower lobes lie posterior-inferior to the upper lobes
        z_rul = np.nonzero(lobes == RUL)[0].mean()
        z_rll = np.nonzero(lobes == RLL)[0].mean()
        assert z_rul > z_rll


def test_hu_statistics_per_structure(healthy):
    clean = healthy.clean_ct.array
    lungs, vessels = healthy.truth["lungs"].array, healthy.truth["vessels"].array
    parenchyma = _interior(np.isin(lungs, [RIGHT_LUNG, LEFT_LUNG])) & (vessels == 0)
    assert -900 < np.median(clean[parenchyma]) < -790
    airway = _interior(lungs == AIRWAYS)
    assert airway.sum() > 5 and np.median(clean[airway]) < -800
    arteries = _interior(healthy.truth["arteries"].array > 0)
    assert 15 < np.median(clean[arteries]) < 70  # unenhanced blood
    outside = clean[:, :3, :]  # air in front of the patient
    assert np.all(np.abs(outside + 1000) < 5)
    ct = healthy.ct.array  # noise has no bias
    assert abs(float(np.mean(ct[parenchyma] - clean[parenchyma]))) < 5


def test_expiration_denser_and_smaller():
    insp = make_phantom(PhantomConfig(seed=4, breathing="inspiration", noise=False, **SMALL))
    exp = make_phantom(PhantomConfig(seed=4, breathing="expiration", noise=False, **SMALL))
    v_insp, v_exp = insp.info["lung_volume_ml"]["total"], exp.info["lung_volume_ml"]["total"]
    assert v_exp < 0.85 * v_insp
    sel = _interior(np.isin(exp.truth["lungs"].array, [1, 2])) & (exp.truth["vessels"].array == 0)
    assert -780 < np.median(exp.clean_ct.array[sel]) < -620
    assert 3000 < v_insp < 7500


def test_contrast_ctpa_brightens_arteries_and_emboli_are_defects(pe):
    clean = pe.clean_ct.array
    arteries = pe.truth["arteries"].array > 0
    emboli = pe.truth["emboli"].array
    lumen = _interior(arteries) & (emboli == 0)
    assert 250 <= np.median(clean[lumen]) <= 450
    assert np.all(arteries[emboli > 0]), "emboli must lie inside the arteries"
    levels = {e["level"] for e in pe.info["emboli"]}
    assert {"lobar", "segmental"} <= levels
    big = [e for e in pe.info["emboli"] if e["level"] in ("main", "lobar")]
    for e in big:
        vox = emboli == e["id"]
        assert np.median(clean[vox]) < 200, "an embolus is a filling defect darker than the enhanced lumen"


def test_info_volumes_equal_voxel_counts(covid, pe):
    for case, key, ids in ((covid, "lesions", "lesions"), (pe, "emboli", "emboli")):
        labels = case.truth[ids]
        vml = labels.voxel_volume_ml
        records = case.info[key]
        assert [r["id"] for r in records] == list(range(1, len(records) + 1))
        counts = np.bincount(labels.array.ravel(), minlength=len(records) + 1)
        for r in records:
            assert r["voxels"] == counts[r["id"]] > 0
            assert r["volume_ml"] == pytest.approx(counts[r["id"]] * vml, abs=1e-4)
        assert counts[len(records) + 1:].sum() == 0


def test_lesions_inside_lungs_with_pneumonia_hu(covid):
    lungs, ids, cls = (covid.truth[k].array for k in ("lungs", "lesions", "lesion_class"))
    clean, vessels = covid.clean_ct.array, covid.truth["vessels"].array
    assert np.all(np.isin(lungs[ids > 0], [RIGHT_LUNG, LEFT_LUNG])), "lesions must stay inside the lungs"
    assert np.array_equal(ids > 0, cls > 0)
    ggo = _interior(cls == GROUND_GLASS) & (vessels == 0)
    cons = _interior(cls == CONSOLIDATION) & (vessels == 0)
    assert -760 < np.median(clean[ggo]) < -350
    assert -60 < np.median(clean[cons]) < 80
    inv = covid.info["involvement_percent"]
    assert inv["right"]["any"] > 3 and inv["left"]["any"] > 3, "severe COVID is bilateral"
    # severe: consolidation reaches the chest wall or diaphragm (touches soft tissue outside the lungs)
    touching = ndimage.binary_dilation(cls == CONSOLIDATION) & (lungs == 0) & (clean > -300)
    assert touching.any()


def test_bacterial_consolidates_most_of_one_lobe():
    case = make_phantom(PhantomConfig(seed=5, preset="bacterial", noise=False, **SMALL))
    lobes, cls = case.truth["lobes"].array, case.truth["lesion_class"].array
    share = [np.mean(cls[lobes == lobe] == CONSOLIDATION) for lobe in range(1, 6)]
    assert max(share) > 0.5
    assert sorted(share)[-2] < 0.05, "lobar pneumonia respects the fissures"


def test_deterministic_per_seed_and_varied_between_seeds():
    cfg = dict(size=(40, 40, 20), spacing=(8.0, 8.0, 15.0), preset="nodules")
    a = make_phantom(PhantomConfig(seed=7, **cfg))
    b = make_phantom(PhantomConfig(seed=7, **cfg))
    c = make_phantom(PhantomConfig(seed=8, **cfg))
    assert np.array_equal(a.ct.array, b.ct.array)
    for name in a.truth:
        assert np.array_equal(a.truth[name].array, b.truth[name].array)
    assert a.info["lesions"] == b.info["lesions"]
    assert not np.array_equal(a.truth["lungs"].array, c.truth["lungs"].array)
    assert a.info["lung_volume_ml"] != c.info["lung_volume_ml"]


def test_noise_sd_scales_with_inverse_sqrt_dose():
    cfg = dict(seed=3, size=(64, 64, 6), spacing=(5.5, 5.5, 5.0))
    full = make_phantom(PhantomConfig(dose=1.0, **cfg))
    quarter = make_phantom(PhantomConfig(dose=0.25, **cfg))
    body = ndimage.binary_erosion(full.clean_ct.array > -200, iterations=2)
    sd = [float(np.std((c.ct.array - c.clean_ct.array)[body])) for c in (full, quarter)]
    assert 0.2 < sd[0] < 60  # coarse voxels: little noise
    assert 1.75 < sd[1] / sd[0] < 2.3


def test_save_case_reads_back(tmp_path, pe):
    outputs = save_case(pe, tmp_path / "case")
    ct = read_image(tmp_path / "case" / "ct.nii.gz", check="ct")
    assert ct.array.dtype == np.int16 and ct.same_grid(pe.ct)
    assert np.abs(ct.array - pe.ct.array).max() <= 0.5
    for name in ("lungs", "arteries", "emboli"):
        back = read_image(tmp_path / "case" / "truth" / f"{name}.nii.gz", check="none")
        assert np.array_equal(back.array, pe.truth[name].array)
    labels, segments = read_segmentation(tmp_path / "case" / "truth" / "lungs.seg.nrrd")
    assert {s.name for s in segments} >= {"right lung", "left lung", "airways"}
    assert np.array_equal(labels.array, pe.truth["lungs"].array)
    info = json.loads((tmp_path / "case" / "truth.json").read_text())
    assert info["seed"] == 2 and len(info["emboli"]) == len(pe.info["emboli"])
    assert all(p.exists() for p in outputs.values())


def test_make_cohort(tmp_path):
    path = make_cohort(tmp_path, 2, presets=["healthy", "covid-mild"], seed=10, size=(32, 32, 16),
                       spacing=(10.0, 10.0, 20.0))
    cohort = json.loads(path.read_text())
    assert [c["preset"] for c in cohort["cases"]] == ["healthy", "covid-mild"]
    assert [c["seed"] for c in cohort["cases"]] == [10, 11]
    for c in cohort["cases"]:
        assert (tmp_path / c["path"] / "ct.nii.gz").exists()


def test_presets_and_bad_config():
    assert set(PRESETS) == {"healthy", "covid-mild", "covid-moderate", "covid-severe", "bacterial", "pe", "nodules"}
    with pytest.raises(ValueError, match="preset"):
        PhantomConfig(preset="flu")
    with pytest.raises(ValueError, match="contrast"):
        PhantomConfig(contrast="iv")
    with pytest.raises(ValueError, match="size"):
        PhantomConfig(size=(2, 64, 64))


def test_slice_thickness_profile_smooths_along_z():
    cfg = dict(seed=6, size=(64, 64, 12), spacing=(2.5, 2.5, 5.0), noise=False)
    thin = make_phantom(PhantomConfig(slice_thickness=1.0, **cfg))
    thick = make_phantom(PhantomConfig(slice_thickness=5.0, **cfg))
    for name in ("lungs", "lobes", "vessels"):  # same anatomy, sampled at the slice centres either way
        a, b = thin.truth[name].array > 0, thick.truth[name].array > 0
        assert 2 * np.count_nonzero(a & b) / (a.sum() + b.sum()) > 0.95
    step = [np.abs(np.diff(c.clean_ct.array, axis=0)).mean() for c in (thin, thick)]
    assert step[1] < 0.9 * step[0]
    assert thick.info["slice_thickness_mm"] == 5.0
