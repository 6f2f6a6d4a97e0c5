"""Embolus detection pipeline: CTPA check, trunk, artery tree, candidates, result and command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lungai.errors import InputError
from lungai.io import read_image, read_segmentation, write_image

SIZE, SPACING = (128, 128, 80), (2.4, 2.4, 3.5)


@pytest.fixture(scope="module")
def ctpa():
    from lungai.phantom import PhantomConfig, make_phantom

    return make_phantom(PhantomConfig(seed=4, size=SIZE, spacing=SPACING, preset="pe", contrast="ctpa",
                                      emboli_levels=("lobar", "segmental"), occlusive_fraction=1.0))


@pytest.fixture(scope="module")
def plain_ct():
    from lungai.phantom import PhantomConfig, make_phantom

    return make_phantom(PhantomConfig(seed=4, size=SIZE, spacing=SPACING, preset="healthy", contrast="none")).ct


@pytest.fixture(scope="module")
def detected(ctpa):
    from lungai.embolism import detect_emboli

    return detect_emboli(ctpa.ct, lung_labels=ctpa.truth["lungs"])


def test_non_contrast_ct_is_not_a_ctpa(plain_ct):
    from lungai.embolism import detect_emboli

    with pytest.raises(InputError, match="not a CTPA") as info:
        detect_emboli(plain_ct.like(plain_ct.array, source="plain.nii.gz"))
    assert "HU" in str(info.value) and "plain.nii.gz" in str(info.value)


def test_trunk_and_tree_on_the_phantom(ctpa, detected):
    arteries = ctpa.truth["arteries"].array > 0
    index = np.round(ctpa.ct.lps_to_index(detected.trunk["trunk_bifurcation_lps"])).astype(int)[::-1]
    assert arteries[tuple(index)], "the trunk point must lie in the true pulmonary arteries"
    assert detected.trunk["trunk_hu"] > 250
    tree = detected.arteries.array > 0
    central = arteries & (ctpa.truth["lungs"].array == 0)  # trunk, main and hilar arteries
    assert np.count_nonzero(tree & central) / np.count_nonzero(central) > 0.6
    assert set(np.unique(detected.arteries.array)) <= {0, 1, 2, 3, 4}


def test_occlusive_emboli_are_candidates_with_fields(ctpa, detected):
    emboli = ctpa.truth["emboli"].array
    labels = detected.candidate_labels.array
    hit = {int(e) for e in np.unique(emboli[labels > 0]) if e}
    assert hit, "no true embolus overlaps a candidate"
    c = detected.candidates[0]
    for key in ("id", "position_lps", "position_ras", "size_mm", "volume_ml", "level", "side", "occlusive",
                "confidence", "accepted"):
        assert key in c
    assert c["level"] in ("main", "lobar", "segmental", "subsegmental") and c["side"] in ("right", "left")
    assert 0.0 <= detected.pe_score <= 1.0
    assert detected.pe_score == pytest.approx(max(x["confidence"] for x in detected.candidates), abs=1e-4)
    assert 0.0 <= detected.qanadli["index_percent"] <= 100.0
    assert detected.emboli.array.max() == len(detected.accepted)


def test_cli_outputs_and_not_a_ctpa_exit(tmp_path, ctpa, plain_ct, capsys):
    from lungai.cli.main import main

    write_image(ctpa.ct, tmp_path / "ctpa.nii.gz")
    write_image(ctpa.truth["lungs"], tmp_path / "lungs.nii.gz")
    out = tmp_path / "out"
    rc = main(["--json", "--progress", "none", "embolism", str(tmp_path / "ctpa.nii.gz"), "-o", str(out),
               "--lungs", str(tmp_path / "lungs.nii.gz"), "--threshold", "0.3"])
    assert rc == 0
    data = json.loads((out / "candidates.json").read_text())
    assert data["threshold"] == 0.3 and "qanadli" in data and "provenance" in data
    assert data["provenance"]["model_name"] == "embolism-candidates"
    # the JSON on stdout is what the Slicer panel reads: threshold, Qanadli index and the scorer that ran
    emitted = json.loads(capsys.readouterr().out)
    assert emitted["threshold"] == 0.3 and emitted["qanadli"] == data["qanadli"]
    assert emitted["scorer"] == {"model": "embolism-candidates", "version": data["provenance"]["model_version"],
                                 "working_grid_mm": data["provenance"]["parameters"]["working_grid_mm"]}
    lines = (out / "candidates.csv").read_text().splitlines()
    assert len(lines) == 1 + len(data["candidates"])
    labels, segments = read_segmentation(out / "arteries.seg.nrrd")
    assert [s.name for s in segments][0] == "pulmonary artery, main"
    assert labels.array.any()
    read_segmentation(out / "emboli.seg.nrrd")
    write_image(plain_ct, tmp_path / "plain.nii.gz")
    rc = main(["--progress", "none", "embolism", str(tmp_path / "plain.nii.gz"), "-o", str(tmp_path / "o2")])
    assert rc == 2
    assert not (tmp_path / "o2" / "candidates.json").exists()


def test_real_ctpa_crop_trunk_and_few_candidates(shared_data):
    from lungai.embolism import detect_emboli

    folder = shared_data / "ct" / "ctpa-crop"
    image = read_image(folder / "ct.nii.gz")
    result = detect_emboli(image)
    pa = read_image(folder / "pulmonary_artery_totalsegmentator.nii.gz", check="none").array > 0
    index = np.round(image.lps_to_index(result.trunk["trunk_bifurcation_lps"])).astype(int)[::-1]
    assert pa[tuple(index)], "the trunk must lie inside the reference pulmonary artery mask"
    tree = result.arteries.array > 0
    assert np.count_nonzero(tree & pa) / np.count_nonzero(pa) > 0.9
    assert len(result.accepted) <= 2, "a scan without embolism gives at most 2 candidates above the threshold"


def test_fine_scans_are_resampled_and_labels_come_back_on_the_input_grid():
    from lungai.embolism.volume import FINE_GRID, build_work_volume, fits_grid, working_grid
    from lungai.image import Image

    array = np.full((40, 96, 96), -800.0, dtype=np.float32)
    array[10:30, 30:60, 20:50] = 300.0
    image = Image(array, (0.7, 0.7, 1.0), (-30.0, -20.0, 100.0), np.eye(3), {"source": "fine.nii.gz"})
    assert working_grid(image).spacing == (1.6, 1.6, 2.0)
    fine = working_grid(image, FINE_GRID)
    assert fine.spacing == (1.0, 1.0, 1.25) and fine.shape == (32, 67, 67)  # 40 mm / 1.25, 67.2 mm / 1.0
    assert fits_grid(image, FINE_GRID) and fits_grid(fine, FINE_GRID)
    assert not fits_grid(Image(array, (0.7, 0.7, 1.5), (0, 0, 0), np.eye(3)), FINE_GRID)  # thicker slices
    assert working_grid(fine, FINE_GRID) is fine
    lungs = image.like((array < -500).astype(np.uint8))
    vol = build_work_volume(image, lung_labels=lungs)
    assert vol.hu.shape == (20, 42, 42)
    back = vol.to_image((vol.hu > 0).astype(np.uint8))
    assert back.same_grid(image)
    inside = back.array[12:28, 33:57, 23:47]
    assert inside.mean() > 0.95 and back.array[:, :, 60:].max() == 0
    vol = build_work_volume(image, lung_labels=lungs, grid=FINE_GRID)
    assert vol.hu.shape == (32, 67, 67) and vol.spacing == (1.25, 1.0, 1.0)
    back = vol.to_image((vol.hu > 0).astype(np.uint8))
    assert back.same_grid(image) and back.array[12:28, 33:57, 23:47].mean() > 0.95
    coarse = Image(array, (1.6, 1.6, 2.0), (0.0, 0.0, 0.0), np.eye(3))
    assert working_grid(coarse) is coarse


def test_main_embolus_splitting_the_trunk_keeps_the_trunk_in_the_arteries():
    """Phantom seed 9001: a left main-artery embolus cuts the enhanced lumen at 1.6 mm, so the two lungs'
    arteries join above 170 HU only through the heart; the bridged search must still find the trunk at
    pulmonary-artery density (about 330 HU), not the blood pool (about 210 HU)."""
    from lungai.embolism.trunk import find_trunk
    from lungai.embolism.volume import build_work_volume
    from lungai.phantom import PhantomConfig, make_phantom

    case = make_phantom(PhantomConfig(seed=9001, size=(200, 200, 140), spacing=(1.6, 1.6, 2.0), preset="pe",
                                      contrast="ctpa"))
    assert any(r["level"] == "main" for r in case.info["emboli"])
    vol = build_work_volume(case.ct)
    trunk = find_trunk(vol)
    arteries = vol.reorientation.to_canonical(case.truth["arteries"].array)
    assert arteries[trunk.point] > 0, "the bifurcation must lie in the true pulmonary arteries"
    assert trunk.hu > 280 and trunk.system_threshold_hu > 250


def _tube_with_clot(lumen_hu: float):
    """A 12 mm enhanced artery (canonical [S, P, L], 1.6 x 1.6 x 2.0 mm) in lung with a 6 mm clot in its middle."""
    from lungai.embolism.arteries import ArteryTree, LEVEL_CODE
    from lungai.embolism.volume import WorkVolume

    shape, spacing = (30, 40, 40), (2.0, 1.6, 1.6)
    z, y, x = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    r_vessel = np.hypot(y - 32.0, x - 32.0)
    hu = np.full(shape, -850.0, np.float32)
    hu[r_vessel < 6.0] = lumen_hu
    clot = (np.hypot(r_vessel, z - 30.0) < 3.0)
    hu[clot] = 40.0
    mask = hu > 150.0
    tree = ArteryTree(mask=mask, level=np.where(mask, LEVEL_CODE["lobar"], 0).astype(np.uint8),
                      diameter=np.where(mask, 12.0, 0.0).astype(np.float32), low_hu=100.0, centreline_mm={})
    vol = WorkVolume(hu=hu, raw=hu, lungs=np.ones(shape, np.uint8), spacing=spacing, reorientation=None,
                     image=None, input_image=None)
    return vol, tree, clot


@pytest.mark.parametrize("lumen_hu, found", [(330.0, True), (480.0, False)])
def test_clot_is_a_candidate_but_a_dark_swirl_in_undiluted_inflow_is_not(lumen_hu, found):
    """With the trunk at 330 HU, a 40 HU clot in a 330 HU lumen is a filling defect; the same spot in 480 HU
    contrast (1.45 x the trunk: vena cava inflow, right-heart mixing) is a mixing artefact and is dropped."""
    from lungai.embolism.candidates import candidate_patches, find_candidates
    from lungai.embolism.trunk import Trunk

    vol, tree, clot = _tube_with_clot(lumen_hu)
    trunk = Trunk(point=(15, 20, 20), hu=330.0, system_threshold_hu=250.0, system=np.zeros((1, 1, 1), bool),
                  factors=(1, 1, 1))
    cands = find_candidates(vol, trunk, tree)
    on_clot = set(np.unique(cands.labels[clot])) - {0}
    assert bool(on_clot) is found
    if found:
        (label,) = on_clot
        patches = candidate_patches(vol, trunk, tree, cands)
        assert patches.shape[1:] == (3, 16, 20, 20)
        patch = patches[label - 1].astype(np.float32)
        assert patch[2].sum() == np.count_nonzero(cands.labels == label)  # the candidate channel
        assert patch[0, 8, 10, 10] == pytest.approx(40.0 / 330.0, abs=0.02)  # CT over trunk HU at the centre


def test_patch_scorer_builds_from_the_registry_name_and_scores_in_batches():
    import torch

    from lungai.embolism.candidates import FEATURES, PATCH_SHAPE
    from lungai.embolism.scorer import EmbolusPatchNet, score
    from lungai.models import architectures

    net = architectures.build("EmbolusMLP", 3, len(FEATURES), 1, hidden=16, width=8)
    assert isinstance(net, EmbolusPatchNet) and net.uses_patches
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, len(FEATURES))).astype(np.float32)
    patches = rng.normal(size=(300, 3) + PATCH_SHAPE).astype(np.float16)
    whole = score(net.eval(), x, patches, batch=1000)
    chunked = score(net, x, patches, batch=64)
    assert whole.shape == (300,) and np.all((whole > 0) & (whole < 1))
    np.testing.assert_allclose(whole, chunked, atol=1e-5)
    assert score(net, x[:0], patches[:0]).shape == (0,)
    with torch.no_grad():  # the patch matters: a different patch changes the logit
        a = net((torch.as_tensor(x[:1]), torch.zeros((1, 3) + PATCH_SHAPE)))
        b = net((torch.as_tensor(x[:1]), torch.ones((1, 3) + PATCH_SHAPE)))
    assert not torch.allclose(a, b)


def test_ensemble_is_the_mean_of_its_members_calibrated_probabilities_and_loads_strictly():
    import torch

    from lungai.embolism.candidates import FEATURES, PATCH_SHAPE
    from lungai.embolism.scorer import EmbolusEnsemble, score
    from lungai.models import architectures

    torch.manual_seed(0)
    ens = architectures.build("EmbolusMLP", 3, len(FEATURES), 1, hidden=16, width=8, members=3).eval()
    assert isinstance(ens, EmbolusEnsemble) and ens.uses_patches and len(ens.members) == 3
    with torch.no_grad():
        ens.members[1].calibration.copy_(torch.tensor([2.0, -1.0]))  # members keep their own calibration
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, len(FEATURES))).astype(np.float32)
    patches = rng.normal(size=(40, 3) + PATCH_SHAPE).astype(np.float16)
    members = np.stack([score(m, x, patches) for m in ens.members])
    assert np.ptp(members, axis=0).max() > 1e-3  # differently initialised members disagree
    np.testing.assert_allclose(score(ens, x, patches, batch=16), members.mean(0), atol=1e-6)
    assert ens.prior() == pytest.approx(ens.members[0].prior())
    other = architectures.build("EmbolusMLP", 3, len(FEATURES), 1, hidden=16, width=8, members=3)
    other.load_state_dict(ens.state_dict(), strict=True)
    np.testing.assert_allclose(score(other.eval(), x, patches), score(ens, x, patches), atol=1e-6)
    with pytest.raises(RuntimeError):  # a two-member file does not fit a three-member entry
        architectures.build("EmbolusMLP", 3, len(FEATURES), 1, hidden=16, width=8, members=2).load_state_dict(
            ens.state_dict(), strict=True)


def test_training_batches_are_balanced_and_augmented():
    import torch

    from lungai.embolism.training import AugmentedBatches

    y = torch.zeros(1000)
    y[:20] = 1.0  # 2 % emboli
    x = torch.arange(1000, dtype=torch.float32)[:, None]
    patches = torch.arange(1000, dtype=torch.float16)[:, None, None, None, None].expand(1000, 1, 2, 3, 3).clone()
    loader = AugmentedBatches(x, patches, y, batch_size=64, samples=6400, positive_fraction=0.25, seed=1)
    labels = torch.cat([batch[1] for batch in loader])
    assert len(loader) == 100 and len(labels) == 6400
    assert 0.2 < float(labels.mean()) < 0.3
    (xb, pb), yb = next(iter(loader))
    assert pb.shape == (64, 1, 2, 3, 3) and pb.dtype == torch.float32
    assert torch.equal(pb[:, 0, 0, 0, 0], xb[:, 0])  # each patch travels with its own features


def test_extra_training_cases_keep_the_validation_cases():
    from lungai.embolism.training import split_cases

    positives = [f"pe_{1000 + i}" for i in range(30)]
    negatives = ["healthy_1500", "healthy_1501", "healthy_1502"]
    plain = split_cases(positives[:24], negatives, 18, 6)
    extra = split_cases(positives, negatives, 18, 6)
    assert plain["val"] == extra["val"] == [f"pe_{s}" for s in range(1018, 1024)] + ["healthy_1502"]
    assert plain["train"] == [f"pe_{s}" for s in range(1000, 1018)] + ["healthy_1500", "healthy_1501"]
    assert extra["train"] == ([f"pe_{s}" for s in range(1000, 1018)] + [f"pe_{s}" for s in range(1024, 1030)]
                              + ["healthy_1500", "healthy_1501"])


def test_patches_cover_32_mm_on_either_working_grid():
    from lungai.embolism.candidates import PATCH_SHAPE, patch_shape

    assert PATCH_SHAPE == patch_shape((2.0, 1.6, 1.6)) == (16, 20, 20)  # 32 mm / 2.0, 32 mm / 1.6
    assert patch_shape((1.25, 1.0, 1.0)) == (26, 32, 32)  # 32 mm / 1.25 = 25.6 -> 26 (even), 32 mm / 1.0


def test_thin_slice_scans_get_the_fine_grid_scorer():
    from lungai.embolism.scorer import FINE_MODEL_NAME, MODEL_NAME, model_for, scorer_grid
    from lungai.image import Image
    from lungai.models import get_model

    array = np.zeros((8, 8, 8), dtype=np.float32)
    thin = Image(array, (0.7, 0.7, 1.0), (0.0, 0.0, 0.0), np.eye(3))       # clinical thin-slice CTPA
    thick = Image(array, (0.7, 0.7, 2.0), (0.0, 0.0, 0.0), np.eye(3))      # 2 mm slices: coarse grid
    crop = Image(array, (1.5, 1.5, 1.5), (0.0, 0.0, 0.0), np.eye(3))       # the real crop's voxels
    assert model_for(thin) == FINE_MODEL_NAME
    assert model_for(thick) == model_for(crop) == MODEL_NAME
    assert scorer_grid(get_model(FINE_MODEL_NAME)) == (1.0, 1.25)
    assert scorer_grid(get_model(MODEL_NAME)) == (1.6, 2.0)
