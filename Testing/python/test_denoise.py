"""Low-dose simulation and denoising: noise scaling with dose, HU calibration, noise-free inputs, the network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lungai import quality
from lungai.denoise import dose
from lungai.denoise.network import RedCnnShuffle
from lungai.denoise.nlm import denoise_nlm
from lungai.image import Image


def _water_body(n: int = 128, slices: int = 2, pixel_mm: float = 2.5, noise_hu: float = 0.0,
                seed: int = 0) -> Image:
    """A water ellipse (0 HU) holding a 60 HU insert and a bone rod, in air; optional white noise."""
    jj, ii = np.mgrid[0:n, 0:n] - n / 2
    body = (jj / (0.36 * n)) ** 2 + (ii / (0.45 * n)) ** 2 < 1
    a = np.where(body, 0.0, -1000.0)
    a[np.hypot(jj - 0.15 * n, ii + 0.2 * n) < 0.08 * n] = 60.0
    a[np.hypot(jj + 0.1 * n, ii - 0.25 * n) < 0.04 * n] = 700.0
    vol = np.repeat(a[None], slices, axis=0).astype(np.float32)
    if noise_hu:
        vol = vol + np.random.default_rng(seed).normal(0, noise_hu, vol.shape).astype(np.float32)
    return Image(vol, (pixel_mm, pixel_mm, 3.0), (0.0, 0.0, 0.0), np.eye(3), {"slice_thickness_mm": 3.0})


def test_network_starts_as_identity_and_keeps_size():
    net = RedCnnShuffle().eval()
    x = torch.randn(2, 1, 64, 48)
    with torch.no_grad():
        assert torch.equal(net(x), x)
    with pytest.raises(ValueError):
        RedCnnShuffle(spatial_dims=3)


def test_dose_simulation_noise_scales_with_dose():
    """Inserted noise variance is proportional to 1/d - 1 (projection-domain insertion on a full-dose scan)."""
    image = _water_body(noise_hu=8.0)
    cal = dose.CALIBRATIONS["smooth"]
    flux = dose.estimate_flux(image, cal, seed=0)
    rois = quality.uniform_rois(image.array, 2.5, size_mm=20)
    stds = {}
    for d in (0.5, 0.25, 0.1):
        low = dose.simulate_low_dose(image, d, calibration=cal, flux=flux, seed=3)
        stds[d] = quality.noise_std(low.array - image.array, rois)
        assert quality.mean_hu(low.array, rois) == pytest.approx(quality.mean_hu(image.array, rois), abs=2.0)
    assert stds[0.25] / stds[0.5] == pytest.approx(np.sqrt(3.0), rel=0.12)
    assert stds[0.1] / stds[0.5] == pytest.approx(3.0, rel=0.12)
    # at half dose the inserted noise equals the full-dose noise (x noise_gain, the calibrated bias)
    assert stds[0.5] == pytest.approx(quality.noise_std(image.array, rois), rel=0.35)


def test_dose_simulation_kernel_texture_and_noise_free_input():
    image = _water_body(n=192, slices=1, noise_hu=8.0, pixel_mm=0.8)
    rois = quality.uniform_rois(image.array, 0.8, size_mm=16)
    mean_f = {}
    for group in dose.KERNEL_GROUPS:
        noise = dose.simulate_low_dose(image, 0.25, kernel=group, seed=1).array - image.array
        f, nps = quality.noise_power_spectrum(noise, rois, 0.8)
        mean_f[group] = quality.nps_shape(f, nps)["mean_frequency"]
    assert mean_f["sharp"] > 1.1 * mean_f["smooth"]
    from lungai.errors import InputError

    with pytest.raises(InputError, match="noise-free"):
        dose.simulate_low_dose(_water_body(), 0.25, kernel="smooth")
    with pytest.raises(ValueError):
        dose.simulate_low_dose(image, 1.0)


def test_kernel_group_from_dicom_kernel_names():
    image = _water_body()
    for name, group in (("B30f", "smooth"), ("D45f", "sharp"), ("Br64", "sharp"), ("STANDARD", "smooth"),
                        ("LUNG", "sharp")):
        assert dose.kernel_group_of(image.like(image.array, kernel=name)) == group


def test_nlm_keeps_hu_and_lowers_noise():
    image = _water_body(noise_hu=25.0, seed=4)
    clean = _water_body()
    out = denoise_nlm(image)
    rois = quality.uniform_rois(clean.array, 2.5, size_mm=20)
    assert quality.noise_std(out.array, rois) < 0.5 * quality.noise_std(image.array, rois)
    assert quality.mean_hu(out.array, rois) == pytest.approx(quality.mean_hu(image.array, rois), abs=1.0)
    assert out.same_grid(image) and out.array.dtype == np.float32
    assert denoise_nlm(image, strength=0.0).array == pytest.approx(image.array)


def test_nlm_on_noise_free_image_changes_it_little():
    """Tolerance: 5 HU RMSE even when told to expect 20 HU of noise (no noise to remove, edges kept)."""
    clean = _water_body()
    out = denoise_nlm(clean, noise_std=20.0)
    assert quality.rmse(out.array, clean.array) < 5.0
    assert quality.edge_sharpness(out.array, clean.array) > 0.95


def test_cli_simulate_dose_and_nlm_denoise(tmp_path):
    from lungai.cli.main import main
    from lungai.io import read_image, write_image

    src = tmp_path / "full.nii.gz"
    write_image(_water_body(noise_hu=8.0), src)
    low, den = tmp_path / "low.nrrd", tmp_path / "den.nrrd"
    assert main(["--json", "--progress", "none", "simulate-dose", str(src), "-o", str(low), "--dose", "0.25",
                 "--kernel", "smooth", "--check", "volume"]) == 0
    assert main(["--progress", "none", "denoise", str(low), "-o", str(den), "--method", "nlm",
                 "--reference", str(src), "--check", "volume"]) == 0
    out = read_image(den, check="none")
    assert out.shape == (2, 128, 128)
    assert main(["--progress", "none", "denoise", str(low), "-o", str(tmp_path / "x.png"), "--check", "none"]) != 0
    assert main(["--progress", "none", "simulate-dose", str(tmp_path / "missing.nii.gz"), "-o", str(low),
                 "--dose", "0.25"]) == 2


def test_cli_json_reports_outputs(tmp_path, capsys):
    from lungai.cli.main import main
    from lungai.io import write_image

    src = tmp_path / "low.nii.gz"
    write_image(_water_body(noise_hu=20.0), src)
    out = tmp_path / "den.nii.gz"
    assert main(["--json", "--progress", "none", "denoise", str(src), "-o", str(out), "--method", "nlm",
                 "--check", "volume"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outputs"]["denoised"] == str(out.resolve())
    assert result["after"]["noise_std_hu"] < result["before"]["noise_std_hu"]
    assert result["provenance"]["method"].startswith("non-local means")


def test_real_pair_quarter_dose_noise_matches(shared_data):
    """Simulated quarter dose of a real full-dose slice has the real quarter-dose noise level within 15%."""
    from lungai.denoise.ldct import load_pairs

    pair = load_pairs(shared_data / "ldct", patients=["L192"], kernel_groups=["sharp"])[0]
    result = dose.compare_pair(pair, dose.CALIBRATIONS["sharp"])
    assert result.extra["sim_quarter_std"] == pytest.approx(result.extra["real_quarter_std"], rel=0.15)
    assert result.sim_mean_frequency == pytest.approx(result.real_mean_frequency, rel=0.15)


def test_cli_noise_std_for_images_without_flat_soft_tissue(tmp_path, capsys):
    from lungai.cli.main import main
    from lungai.image import Image
    from lungai.io import write_image

    rng = np.random.default_rng(5)
    lung_only = Image((rng.normal(-850.0, 20.0, (2, 96, 96))).astype(np.float32), (0.8, 0.8, 3.0), (0.0, 0.0, 0.0),
                      np.eye(3))
    src, out = tmp_path / "lung.nii.gz", tmp_path / "den.nii.gz"
    write_image(lung_only, src)
    args = ["--progress", "none", "denoise", str(src), "-o", str(out), "--method", "nlm", "--check", "volume"]
    assert main(args) == 2  # nothing to measure the noise in: an input problem that names the file
    assert "lung.nii.gz" in capsys.readouterr().err and not out.exists()
    assert main(args + ["--noise-std", "20"]) == 0
    assert out.exists()
