"""Inference engine: expected labels on a toy phantom, any orientation and spacing, provenance in results and
file headers, cancel, and the shipped models on the project phantom."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lungai.cli.main import main as cli_main
from lungai.errors import Cancelled
from lungai.image import Image
from lungai.io import read_segmentation, write_image
from lungai.models import run_inference
from lungai.models.registry import ModelEntry
from lungai.models.segmentation_training import PreparedCase, train_segmentation
from lungai.models.preprocess import preprocess
from lungai.models.training import TrainConfig, publish_model
from lungai.progress import Progress

from test_models_helpers import TOY_TEMPLATE, dice, toy_chest


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory, one_torch_thread):
    """A tiny lungs model trained for a few seconds on toy chests, published into a temporary user registry."""
    home = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("LUNGAI_HOME", str(home))
    entry = ModelEntry.from_dict(dict(TOY_TEMPLATE, version="0.0.0", card="",
                                      weights={"file": "x.pt", "sha256": "0" * 64, "size": 1}))
    cases = []
    for seed in range(5):
        ct, lab = toy_chest(seed)
        arr, lab_arr = preprocess(ct, entry, lab)
        cases.append(PreparedCase(str(seed), arr, lab_arr))
    config = TrainConfig(max_epochs=10, batch_size=4, lr=0.01, seed=0, patience=10)
    network, result = train_segmentation(entry, cases[:4], cases[4:], config, samples_per_case=2)
    published = publish_model(TOY_TEMPLATE, network, result, {"name": "toy chests", "cases_train": 4,
                                                              "cases_val": 1})
    yield published, result
    mp.undo()


def test_toy_model_labels_a_new_chest_with_provenance(toy_model):
    entry, result = toy_model
    assert result.best_metric > 0.8, result.history
    ct, truth = toy_chest(seed=42)
    res = run_inference(ct, entry, return_probabilities=True)
    assert res.labels.same_grid(ct) and set(np.unique(res.labels.array)) == {0, 1, 2}
    for value in (1, 2):
        assert dice(res.labels.array == value, truth.array == value) > 0.85
    assert res.probabilities.shape == (3,) + ct.shape
    assert np.allclose(res.probabilities.sum(0), 1.0, atol=1e-3)
    prov = res.provenance
    assert (prov.model_name, prov.model_version, prov.weights_sha256) == (entry.name, entry.version, entry.sha256)
    assert prov.parameters["spacing_mm"] == (4.0, 4.0, 4.0) and prov.software.startswith("lungai")
    assert res.labels.metadata["weights_sha256"] == entry.sha256


def test_any_orientation_and_spacing_gives_the_same_anatomy(toy_model):
    entry, _ = toy_model
    ct, truth = toy_chest(seed=43)
    # the same patient stored RAS-style (i towards patient right, j anterior) at finer spacing
    flipped = Image(ct.array[:, ::-1, ::-1].copy(), ct.spacing, ct.index_to_lps([ct.size[0] - 1, ct.size[1] - 1, 0]),
                    np.diag([-1.0, -1.0, 1.0]))
    flipped_truth = flipped.like(truth.array[:, ::-1, ::-1].copy())
    res = run_inference(flipped, entry)
    plain = run_inference(ct, entry)
    assert np.array_equal(res.labels.array[:, ::-1, ::-1], plain.labels.array)  # same voxels, same labels
    for value in (1, 2):  # right lung must stay on the patient's right
        assert dice(res.labels.array == value, flipped_truth.array == value) > 0.8
    fine = Image.from_array(np.repeat(ct.array, 2, axis=0), spacing=(4.0, 4.0, 2.0),
                            origin=np.asarray(ct.origin) - [0, 0, 1.0])
    res_fine = run_inference(fine, entry, tta_flips=True)
    assert res_fine.labels.shape == fine.shape
    assert res_fine.provenance.parameters["tta_flips"] == [[1]]
    assert dice(res_fine.labels.array == 1, np.repeat(truth.array, 2, axis=0) == 1) > 0.8


def test_cancel_stops_inference(toy_model):
    entry, _ = toy_model
    ct, _ = toy_chest(seed=44, shape=(40, 48, 56))
    messages = []

    def cancel_at_first_window(fraction, message):
        messages.append(message)
        if "pass" in message:
            progress.cancel()

    progress = Progress(cancel_at_first_window)
    with pytest.raises(Cancelled):
        run_inference(ct, entry, progress=progress)
    assert sum("pass" in m for m in messages) == 1


def test_predict_cli_writes_model_and_weights_hash_into_the_file(toy_model, tmp_path, capsys):
    entry, _ = toy_model
    ct, _ = toy_chest(seed=45)
    write_image(ct, tmp_path / "ct.nrrd")
    out = tmp_path / "out" / "lungs.seg.nrrd"
    assert cli_main(["--json", "--progress", "none", "models", "predict", entry.name, str(tmp_path / "ct.nrrd"),
                     "-o", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outputs"]["result"] == str(out.resolve())
    import nrrd
    header = nrrd.read_header(str(out))
    assert header["lungai_model"] == entry.name and header["lungai_weights_sha256"] == entry.sha256
    labels, segments = read_segmentation(out)
    assert {s.name for s in segments} == {"right lung", "left lung"}
