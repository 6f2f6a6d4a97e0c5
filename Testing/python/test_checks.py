"""One test per kind of bad input: each InputError names the file and says what is wrong."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image as PILImage

from io_testdata import synthetic_ct
from lungai.checks import check_ct
from lungai.errors import InputError
from lungai.image import Image
from lungai.io import read_image, write_image


def ct_like(shape=(6, 40, 48), spacing=(0.8, 0.8, 2.5), dtype=np.int16) -> Image:
    return Image.from_sitk(synthetic_ct(shape, spacing)).like(sitk.GetArrayFromImage(synthetic_ct(shape, spacing))
                                                              .astype(dtype))


def refused(path, match, **kwargs) -> InputError:
    with pytest.raises(InputError, match=match) as err:
        read_image(path, **kwargs)
    assert err.value.path == str(path), "the error must name the file"
    return err.value


def test_a_good_synthetic_ct_passes(tmp_path):
    image = read_image(write_image(ct_like(), tmp_path / "ok.nrrd"))
    assert image.shape == (6, 40, 48)


def test_missing_path(tmp_path):
    refused(tmp_path / "absent.nii.gz", "does not exist")


def test_empty_file(tmp_path):
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    refused(tmp_path / "empty.nii.gz", r"the file is empty \(0 bytes\)")


def test_unreadable_file(tmp_path):
    (tmp_path / "garbage.nrrd").write_bytes(b"this is not an image\n" * 50)
    refused(tmp_path / "garbage.nrrd", "cannot be read as an image: the file is unreadable, truncated or not a")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_truncated_file(tmp_path, suffix, capfd):
    rng = np.random.default_rng(0)
    image = ct_like().like(rng.integers(-1000, 1000, (6, 40, 48)).astype(np.int16))  # incompressible
    path = write_image(image, tmp_path / f"ct{suffix}")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    refused(path, "truncated")
    assert capfd.readouterr().err == "", "ITK/MetaIO messages must not reach the console"


def test_truncated_nifti_header(tmp_path):
    path = tmp_path / "head.nii.gz"
    path.write_bytes(gzip.compress(b"\x5c\x01\x00\x00" + b"\0" * 100))
    refused(path, "truncated|cannot be read")


def test_two_dimensional_image_where_3d_is_needed(tmp_path):
    flat = write_image(Image.from_array(np.full((40, 48), -500, np.int16)), tmp_path / "flat.nrrd")
    refused(flat, r"a 3D volume is required but this is a 2D image \(size \(48, 40\)\)")
    picture = tmp_path / "slice.png"
    PILImage.fromarray(np.zeros((40, 48), np.uint8)).save(picture)
    refused(picture, "is a 2D picture")


def test_too_few_slices_and_min_slices(tmp_path):
    path = write_image(ct_like(shape=(2, 40, 48)), tmp_path / "thin.nrrd")
    refused(path, r"only 2 slice\(s\).*at least 3 slices")
    assert read_image(path, min_slices=2).shape[0] == 2
    assert read_image(path, check="volume").shape[0] == 2  # volumes need 2 by default


def test_mr_like_values_without_negatives(tmp_path):
    mr = ct_like().like(np.random.default_rng(2).integers(0, 1800, (6, 40, 48)).astype(np.int16))
    path = write_image(mr, tmp_path / "t1.nii.gz")
    refused(path, "have no negative numbers: this is not a CT in Hounsfield units")
    assert read_image(path, check="volume").array.max() > 255  # any intensities pass the volume check


def test_eight_bit_windowed_pixels(tmp_path):
    windowed = ct_like().like(np.random.default_rng(3).integers(0, 256, (6, 40, 48)).astype(np.uint8))
    refused(write_image(windowed, tmp_path / "png_stack.nrrd"), "look like 8-bit windowed pixels")


def test_mr_modality_tag(tmp_path):
    plane = sitk.Cast(synthetic_ct()[:, :, 0], sitk.sitkInt16)
    plane.SetMetaData("0008|0060", "MR")
    sitk.WriteImage(plane, str(tmp_path / "mr.dcm"))
    refused(tmp_path / "mr.dcm", "modality is MR, not CT", min_slices=1)


def test_no_air_means_not_a_chest_ct(tmp_path):
    soft = ct_like().like(np.random.default_rng(4).integers(-100, 200, (6, 40, 48)).astype(np.int16))
    refused(write_image(soft, tmp_path / "soft.mha"), "no air or lung density found")


@pytest.mark.parametrize("spacing", [(0.8, 0.8, 50.0), (0.001, 0.8, 2.5)])
def test_absurd_spacing(tmp_path, spacing):
    refused(write_image(ct_like(spacing=spacing), tmp_path / "s.nrrd"), "absurd voxel spacing")


def test_absurd_size_and_field_of_view(tmp_path):
    refused(write_image(ct_like(shape=(6, 8, 48)), tmp_path / "narrow.nrrd"),
            r"absurd image size \(48, 8, 6\): fewer than 16 voxels")
    refused(write_image(ct_like(shape=(6, 40, 160), spacing=(19.0, 0.8, 2.5)), tmp_path / "wide.nrrd"),
            "absurd field of view")


def test_four_dimensional_image(tmp_path):
    series = sitk.JoinSeries([synthetic_ct(), synthetic_ct()])
    sitk.WriteImage(series, str(tmp_path / "4d.nii.gz"))
    refused(tmp_path / "4d.nii.gz", "is a 4D image with 2 volumes")
    sitk.WriteImage(sitk.JoinSeries([synthetic_ct()]), str(tmp_path / "one.nii.gz"))
    assert read_image(tmp_path / "one.nii.gz").shape == (6, 40, 48)  # a single-volume 4D file is fine


def test_colour_volume(tmp_path):
    sitk.WriteImage(sitk.Compose([synthetic_ct()] * 3), str(tmp_path / "rgb.nrrd"))
    refused(tmp_path / "rgb.nrrd", "has 3 components per voxel")


def test_non_finite_values(tmp_path):
    values = sitk.GetArrayFromImage(synthetic_ct()).astype(np.float32)
    values[2, 5, 5] = np.nan
    values[3, 6, 6] = np.inf
    for suffix in (".nrrd", ".nii.gz", ".nii"):  # ITK's NIfTI reader alone would turn NaN into 0
        refused(write_image(ct_like().like(values), tmp_path / f"nan{suffix}"), "contains 2 non-finite voxel values")


def test_corrupt_direction():
    image = ct_like()
    image.direction = np.diag([1.0, 2.0, 1.0])
    with pytest.raises(InputError, match="direction matrix is not a rotation"):
        check_ct(image, "in-memory")


def test_binary_mask_is_not_a_ct():
    with pytest.raises(InputError, match="binary mask"):
        check_ct(ct_like().like(np.ones((6, 40, 48), bool)), "mask")


def test_real_cts_pass_the_ct_check(shared_data):
    for name in ("ctpa-crop/ct.nii.gz", "abdomen-lung-bases/ct.nii.gz"):
        image = read_image(shared_data / "ct" / name)
        assert image.ndim == 3 and image.array.min() <= -1000
    thin = read_image(shared_data / "ct/cip-crop-2slices/ct.nrrd", min_slices=2)
    assert thin.shape == (2, 349, 443)
    with pytest.raises(InputError, match="only 2 slice"):
        read_image(shared_data / "ct/cip-crop-2slices/ct.nrrd")
