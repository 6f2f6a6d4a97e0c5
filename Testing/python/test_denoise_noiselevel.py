"""The CNN denoiser's noise-level input: network option, warm start from old weights, level measurement and tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lungai.denoise.cnn import denoise_slices
from lungai.denoise.network import NOISE_LEVEL_SCALE, RedCnnShuffle, add_noise_level_input
from lungai.denoise.noise_level import bundle_noise_levels, noise_profile, slice_noise_std
from lungai.denoise.noisebank import Bundle, NoiseBank, save_bundle, validation_pairs
from lungai.denoise.training import NORMALIZATION

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"features": 8, "depth": 3, "shuffle": 4, "kernel_size": 3}


def _body(n: int = 96, seed: int = 0) -> np.ndarray:
    """A water ellipse (0 HU) with a lung-density disc, in air: one slice, noise-free."""
    jj, ii = np.mgrid[0:n, 0:n] - n / 2
    a = np.where((jj / (0.42 * n)) ** 2 + (ii / (0.46 * n)) ** 2 < 1, 0.0, -1000.0)
    a[np.hypot(jj - 0.1 * n, ii + 0.18 * n) < 0.12 * n] = -850.0
    return a.astype(np.float32)


def _trained_like(params: dict, seed: int = 0) -> RedCnnShuffle:
    """A network with non-trivial weights (the last layer is zero after construction)."""
    torch.manual_seed(seed)
    net = RedCnnShuffle(2, 1, 1, **params)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def test_noise_level_network_takes_a_second_channel_and_keeps_the_size():
    net = RedCnnShuffle(2, 1, 1, **SMALL, noise_level_input=True).eval()
    x = torch.randn(3, 2, 64, 48)
    assert net(x).shape == (3, 1, 64, 48)
    assert net.encoder[0].weight.shape[1] == 16 + 1  # 4x4 folded image + the level at folded resolution


def test_added_noise_level_input_starts_with_the_old_networks_output():
    old = _trained_like(SMALL)
    new = RedCnnShuffle(2, 1, 1, **SMALL, noise_level_input=True)
    new.load_state_dict(add_noise_level_input(old.state_dict()))
    new.eval()
    x = torch.randn(2, 1, 32, 32) * 0.05
    with torch.no_grad():
        reference = old(x)
        for level_hu in (5.0, 30.0, 120.0):
            level = torch.full_like(x, level_hu * NOISE_LEVEL_SCALE)
            assert torch.allclose(new(torch.cat([x, level], dim=1)), reference, atol=1e-6)
        # and the level does change the output once its weights are not zero
        new.encoder[0].weight[:, -1] = 0.5
        low, high = (new(torch.cat([x, torch.full_like(x, v)], dim=1)) for v in (0.1, 2.0))
    assert float((low - high).abs().max()) > 1e-3


def test_old_weights_still_load_without_the_option():
    old = _trained_like(SMALL)
    plain = RedCnnShuffle(2, 1, 1, **SMALL)
    plain.load_state_dict(old.state_dict())  # strict: same keys and shapes as before the option existed
    assert not plain.noise_level_input


@pytest.mark.parametrize("std", [10.0, 40.0])
def test_slice_noise_std_measures_known_white_noise(std):
    rng = np.random.default_rng(1)
    slices = np.stack([_body(256) + rng.normal(0, std, (256, 256)).astype(np.float32) for _ in range(2)])
    measured = [slice_noise_std(s, 0.8) for s in slices]
    assert all(m is not None and abs(m / std - 1) < 0.05 for m in measured)
    air = np.full((256, 256), -1000.0, np.float32)  # no flat soft tissue: the nearest measured slice's value
    profile = noise_profile(np.stack([air, slices[0], air]), 0.8)
    assert profile[0] == profile[1] == profile[2] == pytest.approx(measured[0])


def _bundle(tmp_path, n: int = 2, noise_hu: float = 30.0):
    rng = np.random.default_rng(2)
    images = np.stack([_body(128) + rng.normal(0, 5, (128, 128)) for _ in range(n)])
    noise = [rng.normal(0, noise_hu, images.shape)]
    path = tmp_path / "phantom-1.npz"
    save_bundle(path, images, noise, 0.8, "test", ["smooth"] * n)
    return path


def test_level_table_is_the_measured_noise_of_the_training_input(tmp_path):
    path = _bundle(tmp_path)
    doses = (0.05, 0.25, 1.0)
    bundle_noise_levels(path, doses)
    bundle = Bundle.load(path, torch.device("cpu"))
    assert bundle.levels.shape == (1, 2, 3)
    for k in range(2):
        for d in doses:  # at a table dose: exactly what the inference estimator reads on that input
            expected = slice_noise_std(bundle.pair(k, 0, d, 1.0)[0].numpy(), 0.8)
            assert bundle.noise_level(k, 0, d) == pytest.approx(expected, rel=1e-6)
        # between table doses the log-dose interpolation stays within 5 % of a fresh measurement
        direct = slice_noise_std(bundle.pair(k, 0, 0.1, 1.0)[0].numpy(), 0.8)
        assert bundle.noise_level(k, 0, 0.1) == pytest.approx(direct, rel=0.05)
    # normal-dose noise 5 HU, quarter-dose extra noise 30 HU: at dose 1 the input is the normal-dose image
    assert bundle.noise_level(0, 0, 1.0) == pytest.approx(5.0, rel=0.1)


def test_noise_bank_gives_the_level_channel(tmp_path):
    path = _bundle(tmp_path)
    bundle_noise_levels(path, (0.05, 0.25, 1.0))
    bundle = Bundle.load(path, torch.device("cpu"))
    bank = NoiseBank([bundle], patch=64, noise_level_input=True, seed=3)
    x, y = bank.sample(4)
    assert x.shape == (4, 2, 64, 64) and y.shape == (4, 2, 64, 64)
    levels = x[:, 1].reshape(4, -1)
    assert torch.all(levels.max(1).values == levels.min(1).values)  # constant per patch
    lo, hi = (bundle.noise_level(0, 0, d) * NOISE_LEVEL_SCALE for d in (0.5, 0.1))
    assert torch.all((levels[:, 0] > 0.8 * lo) & (levels[:, 0] < 1.2 * hi))
    val = validation_pairs([bundle], 0.25, noise_level_input=True)
    assert val[0][0].shape[1] == 2
    assert float(val[0][0][0, 1, 0, 0]) == pytest.approx(bundle.noise_level(0, 0, 0.25) * NOISE_LEVEL_SCALE)


def test_bank_without_tables_refuses_the_level_input(tmp_path):
    bundle = Bundle.load(_bundle(tmp_path), torch.device("cpu"))
    with pytest.raises(ValueError, match="noise-level table"):
        NoiseBank([bundle], patch=64, noise_level_input=True).sample(1)


def test_inference_measures_the_level_or_takes_it_given():
    net = _trained_like({**SMALL, "noise_level_input": True})
    with torch.no_grad():
        net.encoder[0].weight[:, -1] = 0.5
    rng = np.random.default_rng(4)
    vol = np.stack([_body(128) + rng.normal(0, 25, (128, 128)).astype(np.float32) for _ in range(2)])
    measured = noise_profile(vol, 0.8)
    cpu = torch.device("cpu")
    auto = denoise_slices(net, vol, NORMALIZATION, cpu, pixel_mm=0.8)
    given = denoise_slices(net, vol, NORMALIZATION, cpu, noise_std=measured)
    other = denoise_slices(net, vol, NORMALIZATION, cpu, noise_std=3 * measured)
    assert np.allclose(auto, given, atol=1e-4)
    assert np.abs(auto - other).max() > 0.1
    with pytest.raises(ValueError, match="pixel size"):
        denoise_slices(net, vol, NORMALIZATION, cpu)
