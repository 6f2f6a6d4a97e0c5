"""A retrain on an exported phantom review set yields a new model version whose card names the data set."""

from __future__ import annotations

import json
from pathlib import Path


from lungai.cli.main import main

TEMPLATE = {
    "name": "lungs-tiny", "task": "lungs", "description": "test model",
    "architecture": {"name": "UNet", "params": {"channels": [4, 8], "strides": [2], "num_res_units": 0}},
    "spatial_dims": 3, "spacing": [8.0, 8.0, 10.0], "patch_size": [32, 32, 16], "orientation": "LPS",
    "normalization": {"type": "ct_window", "window": [-1000, 400]}, "output": "softmax",
    "labels": {"0": "background", "1": "right_lung", "2": "left_lung", "3": "airways"},
    "inference": {"overlap": 0.0, "sw_batch_size": 1, "blend": "constant", "tta_axes": []},
    "license": "Apache-2.0",
}


def test_retrain_from_review_export(tmp_path: Path, monkeypatch, capsys, one_torch_thread) -> None:
    from lungai.phantom import PhantomConfig, make_phantom, save_case

    monkeypatch.setenv("LUNGAI_HOME", str(tmp_path / "home"))
    store = tmp_path / "store"
    assert main(["review", "init", str(store), "--task", "lungs"]) == 0
    for seed in (1, 2, 3):
        case = make_phantom(PhantomConfig(seed=seed, size=(40, 40, 24), spacing=(9.0, 9.0, 10.0), noise=False))
        save_case(case, tmp_path / f"c{seed}")
        assert main(["review", "add", str(store), str(tmp_path / f"c{seed}" / "ct.nii.gz"), "--case-id",
                     f"c{seed}"]) == 0
        assert main(["review", "save", str(store), f"c{seed}", str(tmp_path / f"c{seed}" / "truth" /
                                                                     "lungs.nii.gz"), "--annotator", "a"]) == 0
        assert main(["review", "submit", str(store), f"c{seed}", "--user", "a"]) == 0
        assert main(["review", "approve", str(store), f"c{seed}", "--user", "r"]) == 0
    template = tmp_path / "template.json"
    template.write_text(json.dumps(TEMPLATE))
    data = tmp_path / "seed-data"
    assert main(["--progress", "none", "review", "export", str(store), "-o", str(data)]) == 0
    dataset = next(data.iterdir())
    assert main(["--progress", "none", "models", "train", "lungs-tiny", "--template", str(template), "--data",
                 str(dataset), "--epochs", "1", "--samples-per-case", "1"]) == 0
    capsys.readouterr()
    assert main(["--json", "--progress", "none", "review", "retrain", str(store), "--model", "lungs-tiny",
                 "--epochs", "2", "--samples-per-case", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "lungs-tiny" and result["version"] == "1.1.0"
    from lungai.models import get_model, load_network

    entry = get_model("lungs-tiny")
    assert entry.version == "1.1.0" and entry.to_dict().get("parent") == "lungs-tiny@1.0.0"
    load_network(entry, "cpu")
    card = Path(result["outputs"]["card"]).read_text()
    version = json.loads(next((store / "exports").iterdir()).joinpath("lungai_export.json").read_text())
    assert version["dataset_version"] in card
    assert "validation" in card.lower()
