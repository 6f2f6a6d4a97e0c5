"""Radiograph reading: PNG 8/16-bit, JPEG, colour, DICOM DX (MONOCHROME1, windowing), real Kermany JPEGs."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image as PILImage

from io_testdata import gradient, write_dx
from lungai.errors import InputError
from lungai.io import read_xray


def test_png_8_bit_is_divided_by_255(tmp_path):
    pixels = gradient().astype(np.uint8)
    PILImage.fromarray(pixels).save(tmp_path / "cxr.png")
    image = read_xray(tmp_path / "cxr.png")
    assert image.shape == (80, 96) and image.array.dtype == np.float32
    assert np.allclose(image.array, pixels / 255.0)
    assert image.metadata["bits"] == 8 and image.metadata["pixel_spacing_known"] is False


def test_png_16_bit_is_stretched_to_its_range(tmp_path):
    pixels = (gradient(top=4000) + 95).astype(np.uint16)  # 12-bit detector values 95..4095
    PILImage.fromarray(pixels).save(tmp_path / "cxr16.png")
    image = read_xray(tmp_path / "cxr16.png")
    assert image.metadata["bits"] == 16
    assert np.allclose(image.array, (pixels - 95) / 4000.0, atol=1e-6)


def test_jpeg_and_rgb_become_grey(tmp_path):
    pixels = gradient().astype(np.uint8)
    PILImage.fromarray(pixels).save(tmp_path / "cxr.jpg", quality=95)
    assert np.abs(read_xray(tmp_path / "cxr.jpg").array - pixels / 255.0).max() < 0.03
    rgb = np.zeros((80, 96, 3), np.uint8)
    rgb[..., 0] = 255  # pure red -> ITU-R 601 luma 0.299 * 255 = 76
    rgb[40:, :, 1] = 255  # red + green -> (0.299 + 0.587) * 255 = 226
    PILImage.fromarray(rgb).save(tmp_path / "colour.png")
    grey = read_xray(tmp_path / "colour.png").array
    assert grey.ndim == 2 and grey[0, 0] == pytest.approx(76 / 255) and grey[79, 0] == pytest.approx(226 / 255)


def test_dicom_monochrome1_is_inverted_with_its_window(tmp_path):
    raw = np.tile(np.arange(0, 4000, 50), (70, 1))  # 80 columns, 0..3950
    path = write_dx(tmp_path / "mono1.dcm", raw, photometric="MONOCHROME1", window=(2048, 1025))
    image = read_xray(path)
    # DICOM linear window: (x - (c - 0.5)) / (w - 1) + 0.5 clipped to 0..1; MONOCHROME1 then inverted
    expected = 1.0 - np.clip((raw - 2047.5) / 1024.0 + 0.5, 0, 1)
    assert np.allclose(image.array, expected, atol=1e-6)
    assert image.array[0, 0] == 1.0 and image.array[0, -1] == 0.0  # low stored value = bright in MONOCHROME1
    assert image.spacing == pytest.approx((0.15, 0.2))  # (column, row) spacing
    assert image.metadata["photometric"] == "MONOCHROME1" and image.metadata["voi"].startswith("window 2048/1025")


def test_dicom_monochrome2_rescale_sigmoid_and_no_window(tmp_path):
    raw = np.tile(np.arange(0, 4000, 50), (70, 1))
    sigmoid = read_xray(write_dx(tmp_path / "s.dcm", raw, window=(1000, 500), function="SIGMOID",
                                 slope=2.0, intercept=-100.0)).array
    values = raw * 2.0 - 100.0
    assert np.allclose(sigmoid, 1 / (1 + np.exp(-4 * (values - 1000) / 500)), atol=1e-6)
    plain = read_xray(write_dx(tmp_path / "p.dcm", raw)).array
    assert np.allclose(plain, raw / 3950.0, atol=1e-6)


def test_ct_dicom_is_not_a_radiograph(tmp_path):
    path = write_dx(tmp_path / "ct.dcm", gradient(top=4000), modality="CT")
    with pytest.raises(InputError, match="modality is CT, not a radiograph") as err:
        read_xray(path)
    assert err.value.path == str(path)


def test_bad_radiograph_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_xray(tmp_path / "none.png")
    PILImage.fromarray(gradient().astype(np.uint8)).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="unreadable or truncated"):
        read_xray(tmp_path / "cut.png")
    PILImage.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(InputError, match="only 32x32 pixels"):
        read_xray(tmp_path / "tiny.png")
    with pytest.raises(InputError, match="is a folder"):
        read_xray(tmp_path)
    path = write_dx(tmp_path / "short.dcm", gradient(top=4000))
    path.write_bytes(path.read_bytes()[:-3000])
    with pytest.raises(InputError, match="pixel data cannot be decoded"):
        read_xray(path)


def test_real_kermany_jpegs(shared_data):
    folder = shared_data / "cxr/kermany-224"
    with open(folder / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in (rows[0], rows[-1]):
        image = read_xray(folder / row["file"])
        with PILImage.open(folder / row["file"]) as pic:
            expected = np.asarray(pic.convert("L"), np.float32) / 255.0
        assert image.shape == (224, 224) and np.allclose(image.array, expected)
        assert 0.0 <= image.array.min() < image.array.max() <= 1.0
