"""The 3D lesion model lesions-unet3d: chosen only for volumes, shipped verified, and right on a phantom CT it never
saw, through ``lungai pneumonia analyze --method model`` end to end."""

from __future__ import annotations

import pytest

from lungai import models
from lungai.errors import LungAIError
from lungai.models.registry import ModelEntry
from lungai.pneumonia.segmentation import lesion_model_entry

LESION_LABELS = {"0": "background", "1": "ground_glass", "2": "consolidation"}


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
