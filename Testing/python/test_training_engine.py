"""Training engine: 2-epoch training from a converted cohort publishes a loadable version with a card;
seeded runs are reproducible; a cancelled run resumes to the same result; early stopping; generic use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lungai.cli.main import main as cli_main
from lungai.errors import Cancelled, LungAIError
from lungai.models import get_model, load_network, load_registry, run_inference, sha256_of, weights_path
from lungai.models.datasets import convert_phantom_cohort, read_nnunet_dataset
from lungai.models.training import TrainConfig, Trainer, publish_model, seed_everything
from lungai.progress import Progress

from test_models_helpers import TOY_TEMPLATE, toy_chest, write_toy_cohort


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LUNGAI_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_cohort_converts_to_an_nnunet_folder_that_reads_back(tmp_path):
    cohort = write_toy_cohort(tmp_path / "cohort", n=5)
    folder = convert_phantom_cohort(cohort, tmp_path / "out", "lungs", dataset_id=901)
    assert folder.name == "Dataset901_PhantomLungs"
    ds = read_nnunet_dataset(folder)
    assert [c.case_id for c in ds.cases] == [f"case{i:03d}" for i in range(5)]
    assert ds.labels == {0: "background", 1: "right_lung", 2: "left_lung", 3: "airways"}
    train, val = ds.split(fold=0)
    assert len(val) == 1 and len(train) == 4 and not {c.case_id for c in train} & {c.case_id for c in val}
    all_val = sorted(c for f in range(5) for c in (x.case_id for x in ds.split(fold=f)[1]))
    assert all_val == [c.case_id for c in ds.cases]  # every case validated exactly once over the folds
    (folder / "labelsTr" / "case002.nii.gz").unlink()
    with pytest.raises(Exception, match="case002.nii.gz"):
        read_nnunet_dataset(folder)


def test_cli_trains_two_epochs_and_publishes_a_loadable_version(home, tmp_path, capsys):
    cohort = write_toy_cohort(tmp_path / "cohort", n=4)
    assert cli_main(["--json", "models", "cohort-to-dataset", str(cohort), "-o", str(tmp_path / "data")]) == 0
    folder = Path(json.loads(capsys.readouterr().out)["dataset"])
    template = tmp_path / "toy.json"
    template.write_text(json.dumps(dict(TOY_TEMPLATE, labels={"0": "background", "1": "right_lung",
                                                             "2": "left_lung", "3": "airways"})))
    args = ["--json", "--progress", "none", "models", "train", "toy-lungs", "--data", str(folder),
            "--template", str(template), "--epochs", "2", "--samples-per-case", "2", "--lr", "0.01"]
    assert cli_main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == "1.0.0" and out["epochs_run"] == 2
    entry = get_model("toy-lungs")
    assert entry.origin == "user" and entry.training["data"]["cases_train"] == 3
    assert sha256_of(weights_path(entry)) == entry.sha256
    net = load_network(entry, cache=False)
    assert isinstance(net, torch.nn.Module)
    card = entry.card_path.read_text()
    assert "Dataset900_PhantomLungs" in card and entry.sha256 in card and "training cases | 3" in card
    history = entry.training["history"]
    assert [h[0] for h in history] == [1, 2]
    for epoch, _, val_dice in history:
        assert f"| {epoch} |" in card and f"{val_dice:.4f}" in card
    # fine-tuning the published model makes the next version, with its parent recorded
    fine_tune = args[:8] + ["--epochs", "1", "--samples-per-case", "1", "--lr", "0.001"]
    assert cli_main(fine_tune) == 0
    newest = get_model("toy-lungs")
    assert newest.version == "1.1.0" and newest.parent == "toy-lungs@1.0.0"
    assert [e.version for e in load_registry() if e.name == "toy-lungs"] == ["1.0.0", "1.1.0"]


def _toy_loaders(n_train=6, n_val=2):
    def pair(seed):
        ct, lab = toy_chest(seed, shape=(8, 12, 12))
        x = torch.from_numpy(np.clip((ct.array + 1000) / 1400, 0, 1)).float()[None]
        y = torch.from_numpy((lab.array > 0).astype(np.float32))[None]
        return x, y
    train = [pair(s) for s in range(n_train)]
    val = [pair(100 + s) for s in range(n_val)]
    collate = lambda items: (torch.stack([a for a, _ in items]), torch.stack([b for _, b in items]))  # noqa: E731
    return (torch.utils.data.DataLoader(train, batch_size=2, shuffle=True, collate_fn=collate),
            torch.utils.data.DataLoader(val, batch_size=2, collate_fn=collate))


def _fit(config, progress=None):
    seed_everything(config.seed)
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(4, 1, 1))
    loss = torch.nn.BCEWithLogitsLoss()
    metric = lambda out, y: float(((out > 0).float() == y).float().mean())  # noqa: E731
    train, val = _toy_loaders()
    return Trainer(net, loss, metric, config, progress).fit(train, val)


def test_seeded_runs_repeat_and_a_cancelled_run_resumes_to_the_same_result(tmp_path):
    base = dict(max_epochs=4, lr=0.05, seed=3, patience=10, scheduler="none", metric_name="accuracy")
    first = _fit(TrainConfig(**base, checkpoint_dir=tmp_path / "a"))
    second = _fit(TrainConfig(**base, checkpoint_dir=tmp_path / "b"))
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(first.history) == strip(second.history)

    calls = []

    def cancel_in_epoch_three(fraction, message):
        calls.append(fraction)
        if fraction > 2.2 / 4:
            progress.cancel()

    progress = Progress(cancel_in_epoch_three)
    with pytest.raises(Cancelled):
        _fit(TrainConfig(**base, checkpoint_dir=tmp_path / "c"), progress)
    assert torch.load(tmp_path / "c" / "last.pt", weights_only=False)["epoch"] == 1  # epochs 1 and 2 saved
    resumed = _fit(TrainConfig(**base, checkpoint_dir=tmp_path / "c"))
    assert resumed.resumed_from_epoch == 2
    assert strip(resumed.history) == strip(first.history)
    assert resumed.best_metric == first.best_metric
    with pytest.raises(LungAIError, match="other settings.*lr 0.05 -> 0.01"):
        _fit(TrainConfig(**dict(base, lr=0.01), checkpoint_dir=tmp_path / "c"))


def test_early_stopping_and_lower_is_better(tmp_path):
    seed_everything(0)
    net = torch.nn.Linear(2, 1)
    data = [(torch.randn(4, 2), torch.randn(4, 1)) for _ in range(3)]
    metrics = iter([0.5, 0.4, 0.45, 0.41, 0.42, 0.43, 0.1])
    config = TrainConfig(max_epochs=7, patience=3, higher_is_better=False, metric_name="mae", scheduler="none")
    trainer = Trainer(net, torch.nn.functional.mse_loss, lambda out, y: next(metrics), config)
    result = trainer.fit(data, [data[0]])
    assert result.best_epoch == 2 and result.best_metric == pytest.approx(0.4)
    assert result.epochs_run == 5 and result.stopped_early


def test_publish_generic_regression_model_into_a_given_registry(home, tmp_path):
    seed_everything(0)
    template = dict(TOY_TEMPLATE, name="toy-denoiser", task="denoise", output="regression", labels={},
                    architecture={"name": "REDCNN", "params": {"features": 4, "depth": 3}}, spatial_dims=2,
                    spacing=None, patch_size=None, inference={}, normalization={"type": "none"})
    from lungai.models.registry import ModelEntry
    from lungai.models import build_network
    entry0 = ModelEntry.from_dict(dict(template, version="0.0.0", card="",
                                       weights={"file": "x.pt", "sha256": "0" * 64, "size": 1}))
    net = build_network(entry0)
    data = [(torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16))]
    config = TrainConfig(max_epochs=2, higher_is_better=False, metric_name="mse")
    result = Trainer(net, torch.nn.functional.mse_loss,
                     lambda o, y: torch.nn.functional.mse_loss(o, y), config).fit(data, data)
    registry = tmp_path / "shipped" / "registry.json"
    entry = publish_model(template, net, result, {"name": "noise pairs", "cases_train": 1, "cases_val": 1},
                          registry_path=registry, url="https://example.org/toy-denoiser-1.0.0.pt")
    assert (tmp_path / "shipped" / "weights" / "toy-denoiser-1.0.0.pt").is_file()
    assert (tmp_path / "shipped" / entry.card).is_file() and entry.weights["url"].endswith(".pt")
    listed = load_registry(registry)
    assert [e.id for e in listed] == ["toy-denoiser@1.0.0"]
    image = np.random.default_rng(1).normal(0, 1, (20, 20)).astype(np.float32)
    from lungai.image import Image
    res = run_inference(Image.from_array(image), listed[0])
    assert res.output is not None and res.output.shape == (20, 20)
    expected = net.eval()(torch.from_numpy(image)[None, None]).detach().numpy()[0, 0]
    assert np.allclose(res.output.array, expected, atol=1e-4)


def test_registered_custom_classifier_trains_publishes_and_scores(home, tmp_path):
    from lungai.image import Image
    from lungai.models import architectures, build_network
    from lungai.models.registry import ModelEntry

    def tiny(spatial_dims, in_channels, out_channels, width=4):
        return torch.nn.Sequential(torch.nn.Conv2d(in_channels, width, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                   torch.nn.Linear(width, out_channels))

    architectures.register("TinyClassifierForTests", tiny, replace=True)
    template = {"name": "toy-xray", "task": "xray", "architecture": {"name": "TinyClassifierForTests",
                                                                     "params": {"width": 3}},
                "spatial_dims": 2, "spacing": None, "patch_size": [32, 32], "normalization": {"type": "minmax"},
                "output": "classification", "labels": {"0": "normal", "1": "pneumonia"}, "license": "Apache-2.0"}
    seed_everything(0)
    net = build_network(ModelEntry.from_dict(dict(template, version="0.0.0", card="",
                                                  weights={"file": "x.pt", "sha256": "0" * 64, "size": 1})))
    x, y = torch.rand(6, 1, 32, 32), torch.tensor([0, 1, 0, 1, 0, 1])
    accuracy = lambda out, t: float((out.argmax(1) == t).float().mean())  # noqa: E731
    result = Trainer(net, torch.nn.functional.cross_entropy, accuracy,
                     TrainConfig(max_epochs=2, metric_name="accuracy")).fit([(x, y)], [(x, y)])
    entry = publish_model(template, net, result, {"name": "random pictures", "cases_train": 6, "cases_val": 6})
    picture = np.random.default_rng(0).uniform(0, 255, (50, 40)).astype(np.float32)
    res = run_inference(Image.from_array(picture), get_model("toy-xray"))
    assert set(res.scores) == {"normal", "pneumonia"} and sum(res.scores.values()) == pytest.approx(1.0)
    scaled = torch.from_numpy((picture - picture.min()) / (picture.max() - picture.min()))[None, None]
    resized = torch.nn.functional.interpolate(scaled, size=(32, 32), mode="bilinear", align_corners=False)
    with torch.no_grad():
        expected = torch.softmax(net.eval()(resized), 1)[0]
    assert res.scores["pneumonia"] == pytest.approx(float(expected[1]), abs=1e-5)
    assert res.provenance.model_name == "toy-xray" and entry.version == "1.0.0"
    with pytest.raises(ValueError, match="already registered"):
        architectures.register("UNet", tiny)
