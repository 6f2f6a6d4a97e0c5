"""Noise-bank training data: compact noise storage, dose scaling, batches, learning-rate schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lungai.denoise import noisebank
from lungai.denoise.network import RedCnnShuffle


def _bundle_file(tmp_path, n: int = 3, size: int = 96, noise_std: float = 30.0, lesions: bool = False):
    rng = np.random.default_rng(0)
    images = np.full((n, size, size), -1000.0, np.float32)
    images[:, 16:-16, 16:-16] = 40.0  # a flat body
    noise = [rng.normal(0.0, noise_std, images.shape).astype(np.float32) for _ in range(2)]
    mask = np.zeros(images.shape, bool)
    mask[:, 40:56, 40:56] = True
    path = tmp_path / "phantom-1.npz"
    noisebank.save_bundle(path, images, noise, 0.9, "test body", ["smooth", "sharp"],
                          lesions=mask if lesions else None)
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
    assert noisebank.evaluate(net, val) == pytest.approx(out["best_metric"], abs=1e-4)
    timed = noisebank.train_bank(net, bank, val, steps=10 ** 6, batch=2, time_limit_s=0.5, eval_every=10 ** 6,
                                 log=lambda m: None)
    assert timed["steps"] < 10 ** 6 and timed["history"][-1]["lr"] == pytest.approx(1e-5, rel=0.2)
