"""Image quality measures against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from lungai import quality


def _disk(n: int = 128, hu: float = 40.0, background: float = -1000.0, radius: float = 0.42) -> np.ndarray:
    jj, ii = np.mgrid[0:n, 0:n]
    r = np.hypot(jj - n / 2, ii - n / 2)
    return np.where(r < radius * n, hu, background).astype(np.float32)


def test_rmse_and_psnr_match_hand_values():
    ref = np.zeros((32, 32), np.float32)
    test = ref + 10.0
    assert quality.rmse(test, ref) == pytest.approx(10.0)
    assert quality.psnr(test, ref, (-160, 240)) == pytest.approx(20 * np.log10(400 / 10))
    # both clipped to the window: differences below -160 HU vanish
    assert quality.rmse(np.full((4, 4), -900.0), np.full((4, 4), -1000.0), (-160, 240)) == 0.0
    assert quality.psnr(ref, ref) == float("inf")
    # lung window is centre -600, width 1500
    assert quality.CHEST_WINDOW == quality.window_from_centre(-600, 1500)


def test_ssim_is_one_for_identical_and_drops_with_noise():
    ref = _disk()
    assert quality.ssim(ref, ref) == pytest.approx(1.0)
    noisy = ref + np.random.default_rng(0).normal(0, 40, ref.shape)
    assert quality.ssim(noisy, ref) < 0.9
    result = quality.compare(noisy, ref)
    assert set(result) == {"chest", "soft_tissue", "unwindowed"}
    assert result["soft_tissue"]["window_hu"] == [-160.0, 240.0]


def test_noise_std_and_mean_in_uniform_regions():
    rng = np.random.default_rng(1)
    image = np.stack([_disk(160) + rng.normal(0, 20, (160, 160)) for _ in range(2)])
    rois = quality.uniform_rois(image, spacing_mm=1.0, size_mm=12)
    assert len(rois) >= 6
    for r in rois:  # inside the disk
        assert np.all(r.take(image) > -500)
    assert quality.noise_std(image, rois) == pytest.approx(20.0, rel=0.1)
    assert quality.mean_hu(image, rois) == pytest.approx(40.0, abs=2.0)


def test_nps_integrates_to_variance_and_blur_lowers_its_frequency():
    rng = np.random.default_rng(2)
    white = rng.normal(0, 10, (1, 256, 256))
    rois = [quality.Roi(0, j, i, 64) for j in range(0, 193, 64) for i in range(0, 193, 64)]
    freq, nps = quality.noise_power_spectrum(white, rois, pixel_mm=0.5, n_bins=16)
    assert np.std(nps) / np.mean(nps) < 0.2  # white noise: flat spectrum
    assert np.mean(nps) == pytest.approx(100.0 * 0.5 * 0.5, rel=0.1)  # variance * pixel area
    blurred = ndimage.gaussian_filter(white, (0, 1.5, 1.5))
    f_b, nps_b = quality.noise_power_spectrum(blurred, rois, pixel_mm=0.5, n_bins=16)
    assert quality.nps_shape(f_b, nps_b)["mean_frequency"] < 0.6 * quality.nps_shape(freq, nps)["mean_frequency"]
    assert quality.nps_shape_difference(freq, nps, nps * 3.0) == pytest.approx(0.0, abs=1e-9)
    assert quality.nps_shape_difference(f_b, nps_b, nps) > 0.5


def test_edge_sharpness_detects_blur():
    ref = _disk(128)
    assert quality.edge_sharpness(ref, ref) == pytest.approx(1.0)
    assert quality.edge_sharpness(ndimage.gaussian_filter(ref, 2.0), ref) < 0.6


def test_dice_and_lesion_detection():
    truth = np.zeros((20, 20, 20), bool)
    truth[2:6, 2:6, 2:6] = True        # lesion 1 (64 voxels)
    truth[12:16, 12:16, 12:16] = True  # lesion 2
    pred = np.zeros_like(truth)
    pred[2:6, 2:6, 2:5] = True         # 48 of lesion 1
    pred[0:2, 17:20, 17:20] = True     # a false positive
    assert quality.dice(pred, truth) == pytest.approx(2 * 48 / (48 + 18 + 128))
    assert quality.dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    det = quality.lesion_detection(pred, truth)
    assert det == {"lesions": 2, "detected": 1, "sensitivity": 0.5, "false_positives": 1}
