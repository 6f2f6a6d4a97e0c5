"""The shipped xray-pneumonia model and the ``lungai xray`` command on real radiographs with known labels,
real CT slices (refused), DICOM DX/CR encodings of a real film, and the checks a user meets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image as PILImage

from lungai.cli.main import main as lungai_main
from lungai.errors import InputError
from lungai.models import get_model
from lungai.xray.classes import CLASS_NAMES
from lungai.xray.classifier import XrayClassifier, classify_file, load_chest_radiograph
from lungai.xray.dataset import read_labels
from test_io_xray import write_dx

KERMANY = "cxr/kermany-224"
A_VIRAL_FILM = "PNEUMONIA/person1625_virus_2817.jpeg"  # held out from training, confidently viral


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def classifier() -> XrayClassifier:
    return XrayClassifier.from_registry()


def test_shipped_model_on_its_held_out_radiographs(shared_data, classifier):
    """The 63 validation films the shipped model never trained on (listed in its registry entry)."""
    entry = get_model("xray-pneumonia")
    held_out = entry.training["data"]["validation_files"]
    labels = dict(read_labels(shared_data / KERMANY))
    predicted = np.array([CLASS_NAMES.index(classify_file(shared_data / KERMANY / f, classifier,
                                                          heatmap=False).predicted) for f in held_out])
    truth = np.array([labels[f] for f in held_out])
    assert len(held_out) == 63 and set(truth) == {0, 1, 2}
    assert np.mean(predicted == truth) >= 0.75  # 0.79 when published; cross-validated 0.84
    assert np.mean((predicted > 0) == (truth > 0)) >= 0.85  # 0.87 when published; cross-validated 0.91


def test_result_is_calibrated_and_explained(shared_data, classifier):
    result = classify_file(shared_data / KERMANY / A_VIRAL_FILM, classifier)
    assert result.predicted == "viral" and result.probabilities["viral"] > 0.6
    assert sum(result.probabilities.values()) == pytest.approx(1.0)
    assert result.pneumonia_probability == pytest.approx(1 - result.probabilities["normal"])
    heat = result.heatmap.array
    assert heat.shape == result.radiograph.shape == (224, 224) and heat.max() == pytest.approx(1.0)
    rows, cols = np.nonzero(heat > 0.5)  # the hot region lies inside the film, not on its border
    assert 20 < rows.mean() < 204 and 20 < cols.mean() < 204
    checks = result.plausibility
    assert checks.layout_correlation > 0.2 and checks.feature_distance < checks.feature_limit and not checks.warnings
    assert result.provenance.weights_sha256 == get_model("xray-pneumonia").sha256


def test_real_ct_slices_are_refused(shared_data, classifier):
    slices = sorted((shared_data / "covid2d/train/MultiClassInfection-Train/Imgs").glob("*.jpg"))
    assert len(slices) == 50
    for path in slices:
        with pytest.raises(InputError, match="does not look like a frontal chest radiograph"):
            classifier.classify(load_chest_radiograph(path), heatmap=False)


def test_all_real_radiographs_pass_the_checks(shared_data, classifier):
    for path in sorted((shared_data / KERMANY).glob("*/*.jpeg"))[::4]:
        classifier.classify(load_chest_radiograph(path), heatmap=False)


def film_12bit(shared_data) -> np.ndarray:
    grey = np.asarray(PILImage.open(shared_data / KERMANY / A_VIRAL_FILM).convert("L"), dtype=np.float64)
    return np.round(grey / 255 * 4000)


def test_dicom_monochrome1_film_reads_like_the_jpeg(shared_data, classifier, tmp_path):
    jpeg = classify_file(shared_data / KERMANY / A_VIRAL_FILM, classifier, heatmap=False)
    stored = 4000 - film_12bit(shared_data)  # MONOCHROME1: high stored value = dark
    mono1 = classify_file(write_dx(tmp_path / "m1.dcm", stored, photometric="MONOCHROME1", modality="CR"),
                          classifier, heatmap=False)
    assert mono1.predicted == jpeg.predicted
    assert mono1.probabilities["viral"] == pytest.approx(jpeg.probabilities["viral"], abs=0.05)
    assert mono1.radiograph.spacing == pytest.approx((0.15, 0.2))
    with pytest.raises(InputError, match="look inverted"):  # same pixels with the photometric tag wrong
        classify_file(write_dx(tmp_path / "m2.dcm", stored, photometric="MONOCHROME2"), classifier)


def test_cli_writes_result_heatmap_and_overlay(shared_data, tmp_path, capsys):
    out = tmp_path / "out"
    code = lungai_main(["--device", "cpu", "--json", "--progress", "json", "xray",
                        str(shared_data / KERMANY / A_VIRAL_FILM), "-o", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    steps = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    fractions = [step["progress"] for step in steps]
    assert len(steps) >= 4 and fractions == sorted(fractions) and fractions[-1] == 1.0
    saved = json.loads((out / "result.json").read_text())
    assert printed["predicted_class"] == saved["predicted_class"] == "viral"
    assert set(printed["outputs"]) == {"result", "heatmap", "overlay"}
    assert printed["outputs"]["heatmap"] == str((out / "heatmap.nrrd").resolve())
    assert saved["provenance"]["model_name"] == "xray-pneumonia"
    heat = sitk.ReadImage(str(out / "heatmap.nrrd"))
    assert heat.GetSize() == (224, 224) and heat.GetMetaData("lungai_heatmap_class") == "viral"
    assert heat.GetMetaData("lungai_weights_sha256") == saved["provenance"]["weights_sha256"]
    with PILImage.open(out / "heatmap.png") as png:
        assert png.size == (224, 224) and png.mode == "RGB"


def test_cli_refuses_non_radiographs_with_exit_2(shared_data, tmp_path, capsys):
    ct_slice = shared_data / "covid2d/train/MultiClassInfection-Train/Imgs/0.jpg"
    assert lungai_main(["--progress", "none", "xray", str(ct_slice), "-o", str(tmp_path / "a")]) == 2
    assert "does not look like a frontal chest radiograph" in capsys.readouterr().err
    photo = np.zeros((200, 200, 3), np.uint8)
    photo[..., 0] = np.linspace(0, 255, 200)[None, :]
    photo[..., 1] = np.linspace(0, 255, 200)[:, None]
    PILImage.fromarray(photo).save(tmp_path / "photo.png")
    assert lungai_main(["--progress", "none", "xray", str(tmp_path / "photo.png"), "-o", str(tmp_path / "b")]) == 2
    assert "colour picture" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_runs_user_weights(shared_data, tmp_path, capsys):
    weights = get_model("xray-pneumonia")
    from lungai.models.weights import weights_path

    user_copy = tmp_path / "my-weights.pt"
    user_copy.write_bytes(weights_path(weights).read_bytes())
    code = lungai_main(["--json", "--progress", "none", "xray", str(shared_data / KERMANY / A_VIRAL_FILM),
                        "-o", str(tmp_path / "o"), "--weights", str(user_copy)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["predicted_class"] == "viral" and result["provenance"]["model_version"] == "user"
    assert result["provenance"]["weights_sha256"] == weights.sha256
