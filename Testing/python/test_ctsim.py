"""Projection-domain CT noise: FBP calibration, dose scaling, lower-dose simulation of a real-like scan."""

from __future__ import annotations

import numpy as np
import pytest

from lungai.ctsim import ScannerModel, add_noise, project, reconstruct, simulate_dose
from lungai.image import Image


def _cylinder(radius_mm: float, n: int = 96, pixel: float = 4.0, slices: int = 4) -> Image:
    c = (np.arange(n) - (n - 1) / 2) * pixel
    xx, yy = np.meshgrid(c, c)
    hu = np.full((slices, n, n), -1000.0, dtype=np.float32)
    hu[:, xx ** 2 + yy ** 2 < radius_mm ** 2] = 0.0
    return Image.from_array(hu, spacing=(pixel, pixel, 2.0))


def _centre_sd(image: Image, clean: Image, half: int = 8) -> float:
    n = image.shape[1] // 2
    diff = image.array - clean.array
    return float(diff[:, n - half:n + half, n - half:n + half].std())


def test_fbp_recovers_attenuation_of_a_disk():
    n = 128
    c = np.arange(n) - (n - 1) / 2
    xx, yy = np.meshgrid(c, c)
    disk = ((xx ** 2 + yy ** 2) < 40 ** 2).astype(np.float32) * 0.02
    rec = reconstruct(project(disk[None], 1.0, 180), n, 1.0, "standard")[0]
    assert rec[64, 64] == pytest.approx(0.02, rel=0.05)
    assert abs(rec[64, 10]) < 0.001


def test_noise_sd_scales_as_inverse_sqrt_dose_and_is_unbiased():
    clean = _cylinder(150.0, slices=8)
    quantum_only = ScannerModel(electronic_noise=0.0)
    sd_full = _centre_sd(add_noise(clean, 1.0, quantum_only, seed=1), clean)
    low = add_noise(clean, 0.25, quantum_only, seed=1)
    sd_quarter = _centre_sd(low, clean)
    assert 1.85 < sd_quarter / sd_full < 2.15
    # with electronic noise the ratio grows a little beyond 2 where few photons arrive
    ratio = _centre_sd(add_noise(clean, 0.25, seed=1), clean) / _centre_sd(add_noise(clean, 1.0, seed=1), clean)
    assert 1.85 < ratio < 2.5
    n = clean.shape[1] // 2
    assert abs(float((low.array - clean.array)[:, n - 8:n + 8, n - 8:n + 8].mean())) < 0.3 * sd_quarter
    assert low.metadata["dose_fraction"] == 0.25


def test_bigger_patient_noisier_centre():
    small, large = _cylinder(80.0), _cylinder(180.0)
    assert _centre_sd(add_noise(large, 1.0, seed=2), large) > 1.5 * _centre_sd(add_noise(small, 1.0, seed=2), small)


def test_simulate_dose_adds_only_the_missing_noise():
    clean = _cylinder(150.0)
    scanner = ScannerModel()
    full = add_noise(clean, 1.0, scanner, seed=3)
    direct = _centre_sd(add_noise(clean, 0.25, scanner, seed=4), clean)
    simulated = _centre_sd(simulate_dose(full, 0.25, scanner, seed=5), clean)
    assert simulated == pytest.approx(direct, rel=0.15)
    same = simulate_dose(full, 1.0)
    assert np.array_equal(same.array, full.array) and same.array is not full.array
    with pytest.raises(ValueError):
        simulate_dose(full, 1.5)


def test_thicker_slices_less_noise_and_kernel_choice():
    thin = _cylinder(150.0)
    thick = Image(thin.array.copy(), thin.spacing, thin.origin, thin.direction, {"slice_thickness_mm": 8.0})
    sd_thin = _centre_sd(add_noise(thin, 1.0, seed=6), thin)
    sd_thick = _centre_sd(add_noise(thick, 1.0, seed=6), thick)
    assert sd_thick == pytest.approx(sd_thin / 2.0, rel=0.15)  # 4x the photons
    sharp = _centre_sd(add_noise(thin, 1.0, ScannerModel(kernel="sharp"), seed=6), thin)
    assert sharp > sd_thin
    with pytest.raises(ValueError):
        ScannerModel(kernel="bone-plus")
