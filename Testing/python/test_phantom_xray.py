"""Synthetic chest radiographs and the ``lungai phantom`` command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lungai.cli.main import main
from lungai.phantom import PhantomConfig, make_xray

XR = dict(size=(80, 80, 4), spacing=(5.0, 5.0, 1.0))


@pytest.fixture(scope="module")
def normal():
    return make_xray(PhantomConfig(seed=0, preset="healthy", **XR))


def test_radiograph_geometry_and_truth(normal):
    img = normal.image.array
    assert img.shape == (80, 80) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    lungs = normal.truth["lungs"].array.astype(bool)
    assert normal.truth["opacity"].array.sum() == 0
    # both lungs: one each side of the midline (patient's right on the image left)
    assert lungs[:, :33].sum() > 150 and lungs[:, 47:].sum() > 150
    # lungs are dark, the spine column between them bright, the apices above the bases
    spine = img[25:50, 38:42]
    assert img[lungs].mean() < spine.mean() - 0.15
    rows = np.nonzero(lungs.any(axis=1))[0]
    assert rows[0] < 33 < rows[-1]


def test_pneumonia_radiographs_show_opacities():
    healthy = make_xray(PhantomConfig(seed=0, preset="healthy", noise=False, **XR)).image.array
    for preset in ("bacterial", "viral"):
        xr = make_xray(PhantomConfig(seed=0, preset=preset, noise=False, **XR))
        opacity = xr.truth["opacity"].array.astype(bool)
        lungs = xr.truth["lungs"].array.astype(bool)
        assert opacity.sum() > 20 and xr.info["opacity_percent_of_lung"] > 2
        # same anatomy: opacities make the lung brighter where the truth says
        inside = opacity & lungs
        assert (xr.image.array[inside] - healthy[inside]).mean() > 0.02


def test_cli_phantom_ct_json(tmp_path, capsys):
    code = main(["--json", "--progress", "none", "phantom", "ct", "-o", str(tmp_path / "c"), "--preset", "covid-mild",
                 "--size", "40", "40", "20", "--spacing", "8", "8", "15", "--seed", "3"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outputs"]["ct"] == str((tmp_path / "c" / "ct.nii.gz").resolve())
    assert all((tmp_path / "c" / p).exists() for p in ("ct.nii.gz", "truth.json", "truth/lungs.seg.nrrd"))


def test_cli_phantom_xray_and_bad_preset(tmp_path, capsys):
    code = main(["--json", "--progress", "none", "phantom", "xray", "-o", str(tmp_path / "x"), "--preset", "viral",
                 "--size", "64", "64", "--spacing", "5", "5"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["outputs"]) >= {"xray", "xray_png", "truth_lungs", "truth_opacity", "truth_json"}
    assert main(["phantom", "ct", "-o", str(tmp_path / "y"), "--preset", "flu"]) == 2
