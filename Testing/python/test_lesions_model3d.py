"""The 3D lesion model lesions-unet3d: chosen only for volumes, shipped verified, and right on a phantom CT it never
saw, through ``lungai pneumonia analyze --method model`` end to end."""

from __future__ import annotations

import json

import pytest

from lungai import models
from lungai.errors import LungAIError
from lungai.io import read_segmentation, write_image
from lungai.models.registry import ModelEntry
from lungai.pneumonia.segmentation import lesion_model_entry

from test_models_helpers import dice

LESION_LABELS = {"0": "background", "1": "ground_glass", "2": "consolidation"}
DICE_FLOOR = 0.6  # measured 0.73 on this unseen phantom; an empty, shifted or mis-oriented output scores near 0


def _entry(name: str, dims: int, created: str, version: str = "1.0.0") -> ModelEntry:
    return ModelEntry.from_dict({
        "name": name, "task": "lesions", "version": version, "architecture": {"name": "UNet"},
        "spatial_dims": dims, "normalization": {"type": "none"}, "output": "softmax", "labels": LESION_LABELS,
        "weights": {"file": f"{name}.pt", "sha256": "0" * 64, "size": 1}, "license": "test", "card": "",
        "created": created})


@pytest.fixture()
def registry(monkeypatch):
    """A 3D lesion model and a newer 2D one (plus a newer lung model, another task)."""
    entries = [_entry("les3d", 3, "2026-01-01T00:00:00+00:00"), _entry("les3d", 3, "2026-02-01T00:00:00+00:00", "1.1.0"),
               _entry("les2d", 2, "2026-06-01T00:00:00+00:00"),
               ModelEntry.from_dict(dict(_entry("lungs3d", 3, "2026-12-01T00:00:00+00:00").to_dict(), task="lungs"))]
    monkeypatch.setattr(models, "load_registry", lambda: entries)
    monkeypatch.setattr(models, "get_model", lambda name: next(e for e in reversed(entries)
                                                               if e.id == name or e.name == name))
    return entries


def test_newest_model_of_the_image_dimensionality_is_chosen(registry):
    assert lesion_model_entry(dims=3).id == "les3d@1.1.0"  # the newer 2D model is never used on a volume
    assert lesion_model_entry(dims=2).id == "les2d@1.0.0"  # nor a 3D model on a slice


def test_named_model_is_taken_but_a_3d_model_refuses_a_slice(registry):
    assert lesion_model_entry("les2d", dims=3).name == "les2d"  # the user's choice: runs slice by slice
    with pytest.raises(LungAIError, match="3D and cannot segment a 2D image"):
        lesion_model_entry("les3d", dims=2)


def test_no_model_of_that_dimensionality_names_the_others(monkeypatch):
    monkeypatch.setattr(models, "load_registry", lambda: [_entry("les2d", 2, "2026-06-01T00:00:00+00:00")])
    with pytest.raises(LungAIError, match=r"no lesion model is registered for 3D images.*les2d \(2D\).*--model"):
        lesion_model_entry(dims=3)


# -- the shipped model -------------------------------------------------------------------------------------------
@pytest.fixture()
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LUNGAI_HOME", str(tmp_path / "home"))


def test_shipped_models_are_chosen_by_dimensionality(empty_home):
    assert models.get_model("lesions-unet3d").spatial_dims == 3
    assert lesion_model_entry(dims=3).name == "lesions-unet3d"
    assert lesion_model_entry(dims=2).name == "lesions-unet2d"


def _phantom(preset: str, seed: int):
    phantom = pytest.importorskip("lungai.phantom")
    # seeds far from the training cohorts (1000+, 2000+, 3000+) and the benchmark's (100+, 200+)
    return phantom.make_phantom(phantom.PhantomConfig(seed=seed, preset=preset, size=(150, 150, 40),
                                                      spacing=(2.2, 2.2, 5.0)))


def test_cli_analyze_with_the_3d_model_on_an_unseen_phantom(tmp_path, empty_home, one_torch_thread):
    from lungai.cli.main import main

    case = _phantom("covid-moderate", 987700)
    write_image(case.ct, tmp_path / "ct.nii.gz")
    write_image(case.truth["lungs"], tmp_path / "lungs.nii.gz")
    out = tmp_path / "out"
    code = main(["--json", "--progress", "none", "pneumonia", "analyze", str(tmp_path / "ct.nii.gz"), "-o", str(out),
                 "--lungs", str(tmp_path / "lungs.nii.gz"), "--method", "model", "--no-pdf"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    entry = models.get_model("lesions-unet3d")
    assert (results["provenance"]["model_name"], results["provenance"]["weights_sha256"]) == ("lesions-unet3d",
                                                                                              entry.sha256)
    labels, _ = read_segmentation(out / "lesions.seg.nrrd")
    truth = case.truth["lesion_class"].array
    assert dice(labels.array > 0, truth > 0) > DICE_FLOOR
    assert results["patient_call"]["positive"]
