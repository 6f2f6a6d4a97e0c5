"""The X-ray classifier on synthetic radiographs of the phantom: plausibility checks, a known normal answer,
and the same result whether the film arrives in memory, as a 16-bit PNG, a DICOM CR in MONOCHROME1 or a NRRD."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from lungai.io import write_image
from lungai.phantom.config import PhantomConfig
from lungai.phantom.xray import make_xray
from lungai.xray.classifier import XrayClassifier, classify_file
from test_io_xray import write_dx


@pytest.fixture(scope="module")
def classifier(one_torch_thread) -> XrayClassifier:
    return XrayClassifier.from_registry()


@pytest.fixture(scope="module")
def healthy():
    return make_xray(PhantomConfig(seed=1, preset="healthy", size=(96, 96, 64), spacing=(3.4, 3.4, 5.0)))


def test_healthy_phantom_film_is_plausible_and_normal(healthy, classifier):
    result = classifier.classify(healthy.image)
    assert result.plausibility.layout_correlation > 0.6  # laid out like the real training films
    assert result.plausibility.feature_distance < result.plausibility.feature_limit
    assert result.predicted == "normal" and result.probabilities["normal"] > 0.7
    assert result.heatmap.same_grid(healthy.image) and result.heatmap.spacing == (3.4, 3.4)


def test_phantom_film_gives_the_same_answer_from_png_dicom_and_nrrd(healthy, classifier, tmp_path):
    direct = classifier.classify(healthy.image, heatmap=False)
    film = np.clip(healthy.image.array, 0, 1)
    PILImage.fromarray(np.round(film * 65535).astype(np.uint16)).save(tmp_path / "film16.png")
    png = classify_file(tmp_path / "film16.png", classifier, heatmap=False)
    dicom = classify_file(write_dx(tmp_path / "film.dcm", np.round((1 - film) * 4000), photometric="MONOCHROME1",
                                   modality="CR", spacing=(3.4, 3.4)), classifier, heatmap=False)
    write_image(healthy.image, tmp_path / "film.nrrd")
    nrrd = classify_file(tmp_path / "film.nrrd", classifier, heatmap=False)
    for other in (png, dicom, nrrd):
        assert other.predicted == direct.predicted
        for name, p in direct.probabilities.items():
            assert other.probabilities[name] == pytest.approx(p, abs=0.02)
    assert dicom.radiograph.spacing == nrrd.radiograph.spacing == (3.4, 3.4)

