"""Write then read NIfTI, NRRD and MHA: array, spacing, origin and direction come back (oblique and flipped too)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import SimpleITK as sitk

from io_testdata import oblique_flipped_direction, synthetic_ct
from lungai.cli.main import main
from lungai.errors import InputError
from lungai.image import Image
from lungai.io import read_image, write_image

# NRRD and MHA store doubles as text; NIfTI stores the geometry as float32 (qform/sform)
GEOMETRY_TOL = {".nrrd": 1e-12, ".mha": 1e-12, ".nii": 1e-5, ".nii.gz": 1e-5}
DIRECTIONS = {"identity": np.eye(3), "axis_flipped": np.diag([-1.0, 1.0, -1.0]),
              "oblique_flipped": oblique_flipped_direction()}


@pytest.mark.parametrize("suffix", list(GEOMETRY_TOL))
@pytest.mark.parametrize("direction", list(DIRECTIONS))
@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint8])
def test_round_trip_keeps_values_and_geometry(tmp_path, suffix, direction, dtype):
    rng = np.random.default_rng(1)
    array = rng.integers(0, 200, (5, 6, 7)).astype(dtype)
    image = Image(array, (0.7, 0.8, 2.5), (-100.123456789, 50.5, -300.25), DIRECTIONS[direction])
    path = write_image(image, tmp_path / f"image{suffix}")
    back = read_image(path, check="none")
    assert back.array.dtype == array.dtype
    assert np.array_equal(back.array, array)
    tol = GEOMETRY_TOL[suffix]
    assert np.allclose(back.spacing, image.spacing, atol=tol, rtol=0)
    assert np.allclose(back.origin, image.origin, atol=tol * 100, rtol=0)
    assert np.allclose(back.direction, image.direction, atol=tol, rtol=0)
    assert np.allclose(back.ijk_to_ras(), image.ijk_to_ras(), atol=tol * 100)


def test_real_ct_round_trips_through_nrrd_and_mha(shared_data, tmp_path):
    original = read_image(shared_data / "ct/ctpa-crop/ct.nii.gz")
    for suffix in (".nrrd", ".mha"):
        back = read_image(write_image(original, tmp_path / f"ct{suffix}"))
        assert np.array_equal(back.array, original.array) and back.same_grid(original, tol=1e-9)


def test_two_dimensional_image_and_bool_mask(tmp_path):
    flat = Image.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), spacing=(0.2, 0.3), origin=(1.0, 2.0))
    back = read_image(write_image(flat, tmp_path / "flat.nrrd"), check="none")
    assert back.ndim == 2 and np.array_equal(back.array, flat.array) and back.same_grid(flat)
    mask = Image.from_array(np.eye(4, dtype=bool)[None].repeat(3, axis=0))
    back = read_image(write_image(mask, tmp_path / "mask.nii.gz"), check="none")
    assert back.array.dtype == np.uint8 and np.array_equal(back.array, mask.array.astype(np.uint8))


def test_metadata_goes_into_nrrd_and_mha_headers(tmp_path):
    image = Image.from_array(np.zeros((2, 3, 4), np.int16))
    for suffix in (".nrrd", ".mha"):
        path = write_image(image, tmp_path / f"m{suffix}", metadata={"method": "unit test", "params": {"a": 1}})
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        assert reader.GetMetaData("lungai_method") == "unit test"
        assert reader.GetMetaData("lungai_params") == '{"a": 1}'


def test_unsupported_output_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match=".nii.gz"):
        write_image(Image.from_array(np.zeros((2, 2, 2))), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def half_write(image, name, useCompression=True):
        with open(name, "wb") as handle:
            handle.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", half_write)
    with pytest.raises(RuntimeError, match="disk full"):
        write_image(Image.from_array(np.zeros((2, 2, 2))), tmp_path / "out.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_written_files_have_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = write_image(Image.from_array(np.zeros((2, 2, 2), np.int16)), tmp_path / "p.nrrd")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it, not mkstemp's 0600


def test_detached_headers_mhd_and_nhdr(tmp_path):
    sitk.WriteImage(synthetic_ct(), str(tmp_path / "ct.mhd"))
    sitk.WriteImage(synthetic_ct(), str(tmp_path / "ct.nhdr"))
    expected = sitk.GetArrayFromImage(synthetic_ct())
    for name in ("ct.mhd", "ct.nhdr"):
        assert np.array_equal(read_image(tmp_path / name).array, expected)
    for data in tmp_path.glob("*.raw*"):
        data.unlink()
    for name in ("ct.mhd", "ct.nhdr"):
        with pytest.raises(InputError, match=r"its voxel data file ct\.raw.* is missing") as err:
            read_image(tmp_path / name)
        assert err.value.path == str(tmp_path / name)


def test_nifti_without_orientation_is_flagged(tmp_path, capsys):
    path = write_image(Image.from_sitk(synthetic_ct()), tmp_path / "plain.nii")
    assert "orientation_unknown" not in read_image(path).metadata
    data = bytearray(path.read_bytes())
    data[252:256] = b"\0\0\0\0"  # qform_code = sform_code = 0 (little-endian int16 pair)
    path.write_bytes(bytes(data))
    assert read_image(path).metadata["orientation_unknown"] is True
    assert main(["info", str(path)]) == 0
    assert "states no orientation" in capsys.readouterr().out


def test_atomic_folder_replaces_whole_or_keeps_the_old_one(tmp_path) -> None:
    from lungai.io.atomic import atomic_folder

    target = tmp_path / "dataset"
    with atomic_folder(target) as staging:
        (staging / "a.txt").write_text("first")
    assert (target / "a.txt").read_text() == "first"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as staging:
            (staging / "a.txt").write_text("half")
            raise RuntimeError("crash while writing")
    assert (target / "a.txt").read_text() == "first"
    with atomic_folder(target) as staging:
        (staging / "b.txt").write_text("second")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]
