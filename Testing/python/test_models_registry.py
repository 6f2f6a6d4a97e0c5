"""Registry: schema validation, version lookup, user registry overlay."""

from __future__ import annotations

import json

import pytest

from lungai.errors import InputError
from lungai.models import get_model, load_registry, validate_registry
from lungai.models.registry import (ModelEntry, UnknownModel, add_to_registry, bundled_registry_path,
                                    next_version, read_registry_file)

GOOD = {"name": "demo-model", "task": "lungs", "version": "1.2.0",
        "architecture": {"name": "UNet", "params": {"channels": [4, 8], "strides": [2]}},
        "spatial_dims": 3, "spacing": [3, 3, 3], "patch_size": [32, 32, 32],
        "normalization": {"type": "ct_window", "window": [-1000, 400]}, "output": "softmax",
        "labels": {"0": "background", "1": "right_lung", "2": "left_lung"},
        "weights": {"file": "demo-model-1.2.0.pt", "sha256": "a" * 64, "size": 1234, "url": None},
        "license": "Apache-2.0", "card": "cards/demo-model-1.2.0.md"}


@pytest.fixture(autouse=True)
def lungai_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LUNGAI_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_bundled_registry_validates_and_every_card_exists():
    entries = load_registry()
    data = json.loads(bundled_registry_path().read_text())
    validate_registry(data)
    for entry in entries:
        assert entry.card_path is not None and entry.card_path.is_file(), entry.id
        assert entry.sha256 in entry.card_path.read_text(), f"card of {entry.id} must state its SHA256"


@pytest.mark.parametrize("path, value, where", [
    (("weights", "sha256"), "not-a-hash", "models/0/weights/sha256"),
    (("version",), "1.2", "models/0/version"),
    (("output",), "mask", "models/0/output"),
    (("spatial_dims",), 4, "models/0/spatial_dims"),
    (("labels",), {"one": "lung"}, "models/0/labels"),
])
def test_schema_rejects_bad_entries_naming_file_and_field(tmp_path, path, value, where):
    entry = json.loads(json.dumps(GOOD))
    target = entry
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps({"schema_version": 1, "models": [entry]}))
    with pytest.raises(InputError) as info:
        read_registry_file(reg)
    assert str(reg) in str(info.value) and where in str(info.value)


def test_missing_required_field_and_duplicate_versions_are_refused(tmp_path):
    reg = tmp_path / "registry.json"
    bad = {k: v for k, v in GOOD.items() if k != "license"}
    reg.write_text(json.dumps({"schema_version": 1, "models": [bad]}))
    with pytest.raises(InputError, match="license"):
        read_registry_file(reg)
    reg.write_text(json.dumps({"schema_version": 1, "models": [GOOD, GOOD]}))
    with pytest.raises(InputError, match="twice"):
        read_registry_file(reg)
    reg.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_registry_file(reg)


def test_get_model_returns_newest_version_or_the_one_asked(tmp_path):
    reg = tmp_path / "registry.json"
    for version in ("1.2.0", "1.10.0", "1.9.3"):
        add_to_registry(ModelEntry.from_dict(dict(GOOD, version=version)), reg)
    entries = load_registry(reg)
    assert [e.version for e in entries] == ["1.2.0", "1.9.3", "1.10.0"]
    assert get_model("demo-model", registry=entries).version == "1.10.0"
    assert get_model("demo-model@1.9.3", registry=entries).version == "1.9.3"
    assert next_version("demo-model", entries) == "1.11.0"
    assert next_version("other", entries) == "1.0.0"
    with pytest.raises(UnknownModel, match="known: 1.2.0, 1.9.3, 1.10.0"):
        get_model("demo-model", "2.0.0", registry=entries)
    with pytest.raises(UnknownModel, match="demo-model"):
        get_model("lungs-unknown", registry=entries)


def test_entry_round_trip_and_derived_fields():
    entry = ModelEntry.from_dict(GOOD)
    assert entry.labels == {0: "background", 1: "right_lung", 2: "left_lung"}
    assert entry.out_channels == 3 and entry.patch_size_array == (32, 32, 32)
    again = ModelEntry.from_dict(entry.to_dict())
    assert again.to_dict() == entry.to_dict()
    with pytest.raises(ValueError, match="unknown fields"):
        ModelEntry.from_dict(dict(GOOD, colour="red"))


def test_user_registry_overlays_the_bundled_one(lungai_home):
    user = lungai_home / "models" / "registry.json"
    add_to_registry(ModelEntry.from_dict(dict(GOOD, name="site-model")), user)
    names = {e.name: e.origin for e in load_registry()}
    assert names["site-model"] == "user"
    assert get_model("site-model").registry_dir == user.parent
