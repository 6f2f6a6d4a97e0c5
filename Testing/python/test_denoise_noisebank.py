"""Noise-bank training data: compact noise storage, dose scaling, batches, learning-rate schedule."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lungai.denoise import noisebank
from lungai.denoise.network import RedCnnShuffle


def _bundle_file(tmp_path, n: int = 3, size: int = 96, noise_std: float = 30.0, lesions: bool = False,
                 clean_target: bool = False):
    rng = np.random.default_rng(0)
    images = np.full((n, size, size), -1000.0, np.float32)
    images[:, 16:-16, 16:-16] = 40.0  # a flat body
    noise = [rng.normal(0.0, noise_std, images.shape).astype(np.float32) for _ in range(2)]
    mask = np.zeros(images.shape, bool)
    mask[:, 40:56, 40:56] = True
    path = tmp_path / "phantom-1.npz"
    noisebank.save_bundle(path, images, noise, 0.9, "test body", ["smooth", "sharp"],
                          lesions=mask if lesions else None, clean_target=clean_target)
    return path, images, noise


def test_noise_quantization_is_faithful():
    """int8 codes in steps of std/8: rounding error std/(8 sqrt 12), the noise std kept within 0.2 %."""
    noise = np.random.default_rng(1).normal(0.0, 45.0, (2, 128, 128)).astype(np.float32)
    codes, step = noisebank.quantize_noise(noise)
    assert codes.dtype == np.int8 and step.shape == (2,)
    restored = codes * step[:, None, None]
    assert np.std(restored - noise) == pytest.approx(45.0 / 8 / math.sqrt(12), rel=0.05)
    assert np.std(restored) == pytest.approx(np.std(noise), rel=0.002)


def test_noise_scale_follows_dose():
    """Extra noise variance of dose d is proportional to 1/d - 1; the bundle stores the quarter dose's."""
    assert noisebank.noise_scale(0.25) == pytest.approx(1.0)
    assert noisebank.noise_scale(0.1) == pytest.approx(math.sqrt(3.0))
    assert noisebank.noise_scale(0.5) == pytest.approx(math.sqrt(1.0 / 3.0))


def test_noise_free_targets_scale_the_whole_noise():
    """With a noise-free target the bundle stores the whole quarter-dose noise: variance proportional to 1/d."""
    assert noisebank.noise_scale(0.25, clean_target=True) == pytest.approx(1.0)
    assert noisebank.noise_scale(0.1, clean_target=True) == pytest.approx(math.sqrt(2.5))
    assert noisebank.noise_scale(1.0, clean_target=True) == pytest.approx(0.5)


def test_noise_free_target_bundle(tmp_path):
    path, images, noise = _bundle_file(tmp_path, clean_target=True)
    bundle = noisebank.Bundle.load(path, torch.device("cpu"))
    assert bundle.clean_target
    x, y = bundle.pair(0, 0, 1.0, 1.0)  # normal dose: half the quarter dose's noise std
    assert torch.equal(y, torch.from_numpy(images[0]))
    assert float((x - y).std()) == pytest.approx(0.5 * noise[0][0].std(), rel=0.01)
    plain = noisebank.Bundle.load(_bundle_file(tmp_path / "plain")[0], torch.device("cpu"))
    assert not plain.clean_target  # the default: normal-dose targets


def test_windowed_psnr_and_weighted_loss():
    """Hand-computed: a 40 HU error in a 400 HU window is 20 dB; values beyond a window are clipped to it."""
    from lungai import quality
    from lungai.denoise import objective

    assert objective.SOFT_TISSUE_WINDOW == tuple(quality.SOFT_TISSUE_WINDOW)
    assert objective.LUNG_WINDOW == tuple(quality.CHEST_WINDOW)  # the torch-only copy must not drift
    target = torch.zeros(2, 1, 8, 8)
    out = target + 40.0 * objective.HU_SCALE
    assert objective.window_psnr(out, target).tolist() == pytest.approx([20.0, 20.0], abs=1e-4)
    air = torch.full((1, 1, 4, 4), -2000.0 * objective.HU_SCALE)
    deep = torch.full((1, 1, 4, 4), -1400.0 * objective.HU_SCALE)
    deep[..., 0, 0] = -1300.0 * objective.HU_SCALE  # one pixel 50 HU inside the lung window
    expected = 20.0 * math.log10(1500.0 / math.sqrt(50.0 ** 2 / 16))
    assert float(objective.window_psnr(deep, air, objective.LUNG_WINDOW)[0]) == pytest.approx(expected, rel=1e-5)
    targets = torch.stack([torch.zeros(4, 4), torch.tensor([[3.0] * 4, [1.0] * 4, [0.0] * 4, [0.0] * 4])])[None]
    outputs = torch.zeros(1, 1, 4, 4)
    outputs[..., 0, :] = 1.0  # error 1 where the weight is 3, none elsewhere
    assert float(objective.weighted_mse(outputs, targets)) == pytest.approx(12.0 / 16.0)


def test_bundle_pairs_and_batches(tmp_path):
    path, images, noise = _bundle_file(tmp_path, lesions=True)
    bundle = noisebank.Bundle.load(path, torch.device("cpu"), weight=2.0)
    assert len(bundle) == 3 and bundle.noise.shape == (2, 3, 96, 96)
    x, y = bundle.pair(1, 1, 0.1, -1.0)
    assert torch.equal(y, torch.from_numpy(images[1]))
    extra = (x - y).numpy()
    # dose 0.1: sqrt(3) times the stored quarter-dose noise, with the sign flipped
    assert np.corrcoef(extra.ravel(), noise[1][1].ravel())[0, 1] < -0.99
    assert extra.std() == pytest.approx(math.sqrt(3.0) * noise[1][1].std(), rel=0.01)
    bank = noisebank.NoiseBank([bundle], patch=64, lesion_weight=3.0, seed=0)
    inputs, targets = bank.sample(6)
    assert inputs.shape == (6, 1, 64, 64) and targets.shape == (6, 2, 64, 64)
    assert set(torch.unique(targets[:, 1]).tolist()) <= {1.0, 4.0}
    # patches are centred on the body: most target pixels are the 40 HU body, in network units
    assert float(((targets[:, 0] - 0.04).abs() < 1e-6).float().mean()) > 0.5


def test_small_images_are_padded_with_zero_weight(tmp_path):
    path, _, _ = _bundle_file(tmp_path, size=48)
    bank = noisebank.NoiseBank([noisebank.Bundle.load(path, torch.device("cpu"))], patch=64, seed=1)
    _, targets = bank.sample(4)
    assert targets.shape == (4, 2, 64, 64)
    assert float(targets[:, 1].sum()) == pytest.approx(4 * 48 * 48)


def test_learning_rate_schedule():
    assert noisebank._learning_rate(0.0, 1e-3) == pytest.approx(1e-4)
    assert noisebank._learning_rate(0.03, 1e-3) == pytest.approx(1e-3)
    assert noisebank._learning_rate(1.0, 1e-3) == pytest.approx(1e-5)


def test_training_keeps_the_best_validation_state(tmp_path):
    """The returned weights are those of the best validation PSNR; a time-boxed run still ends its schedule."""
    path, _, _ = _bundle_file(tmp_path, n=2, size=64)
    bundle = noisebank.Bundle.load(path, torch.device("cpu"))
    bank = noisebank.NoiseBank([bundle], patch=32, seed=0)
    val = noisebank.validation_pairs([bundle])
    torch.manual_seed(0)
    net = RedCnnShuffle(2, 1, 1, features=4, depth=3)
    out = noisebank.train_bank(net, bank, val, steps=12, batch=2, lr=1e-2, eval_every=4, log=lambda m: None)
    assert out["steps"] == 12 and [h["step"] for h in out["history"]] == [4, 8, 12]
    best = max(out["history"], key=lambda h: h["val_psnr_soft_tissue_db"])
    assert (out["best_step"], out["best_metric"]) == (best["step"], best["val_psnr_soft_tissue_db"])
    net.load_state_dict(out["state"])
    assert noisebank.evaluate(net, val)["soft"] == pytest.approx(out["best_metric"], abs=1e-4)
    psnr = {"soft": 30.0, "lung": 40.0}
    assert noisebank.selection_metric(psnr, "soft+lung") == pytest.approx(35.0)
    with pytest.raises(ValueError):
        noisebank.selection_metric(psnr, "lung only")
    timed = noisebank.train_bank(net, bank, val, steps=10 ** 6, batch=2, time_limit_s=0.5, eval_every=10 ** 6,
                                 log=lambda m: None)
    assert timed["steps"] < 10 ** 6 and timed["history"][-1]["lr"] == pytest.approx(1e-5, rel=0.2)


def test_dose_draws_follow_the_requested_range(tmp_path):
    path, _, _ = _bundle_file(tmp_path)
    bundle = noisebank.Bundle.load(path, torch.device("cpu"))
    bank = noisebank.NoiseBank([bundle], doses=(0.05, 0.5), quarter_share=0.0, seed=1)
    doses = np.array([bank._dose() for _ in range(4000)])
    assert doses.min() >= 0.05 and doses.max() <= 0.5
    # log-uniform: the median is the geometric mean of the ends, a tenth of the draws lie below 0.05 * 10**0.1
    assert np.median(doses) == pytest.approx(math.sqrt(0.05 * 0.5), rel=0.05)
    assert np.mean(doses < 0.05 * 10 ** 0.1) == pytest.approx(0.1, abs=0.02)
    quarter = noisebank.NoiseBank([bundle], quarter_share=1.0, seed=1)
    assert all(0.22 <= quarter._dose() <= 0.28 for _ in range(200))


def test_training_script_records_dose_range_and_validation_doses(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import train_denoise_bank

    bundles = tmp_path / "bundles"
    bundles.mkdir()
    for name in ("chest-train", "chest-val"):
        path, _, _ = _bundle_file(tmp_path / name)
        path.rename(bundles / f"{name}.npz")
    train_denoise_bank.main(["--bundles", str(bundles), "--out", str(tmp_path / "runs"), "--folds", "none",
                             "--prefix", "run-", "--device", "cpu", "--steps", "4", "--eval-every", "2",
                             "--batch", "2", "--patch", "64", "--features", "8", "--depth", "3",
                             "--doses", "0.05", "0.5", "--quarter-share", "0.25", "--val-doses", "0.25", "0.1"])
    result = json.loads((tmp_path / "runs" / "run-none" / "result.json").read_text())
    assert result["config"]["doses"] == {"log_uniform": [0.05, 0.5], "quarter_share": 0.25}
    assert result["config"]["validation_doses"] == [0.25, 0.1]
    assert result["config"]["bundles"] == ["chest-train"] and len(result["history"]) == 2
    assert (tmp_path / "runs" / "run-none" / "best.pt").is_file()
