"""DICOM input: series folders written at test time (from a crop of the real chest CT) and the real LDCT slices."""

from __future__ import annotations

import csv

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from io_testdata import UID_ROOT, synthetic_ct, write_dicom_series
from lungai.errors import InputError
from lungai.io import describe_dicom_series, list_dicom_series, read_image


@pytest.fixture(scope="module")
def chest_crop(shared_data) -> sitk.Image:
    """64x60x12 voxels of the real chest CT (lung, chest wall and air), in HU."""
    volume = sitk.ReadImage(str(shared_data / "ct/chest-ct-141/ct.nii.gz"))
    return volume[20:84, 200:260, 60:72]


def test_series_from_real_ct_reads_back_exactly_despite_shuffled_names(tmp_path, chest_crop):
    paths = write_dicom_series(tmp_path / "series", chest_crop)
    assert [p.name for p in paths] != sorted(p.name for p in paths)  # name order is not position order
    stored = pydicom.dcmread(str(paths[0]))
    assert stored.RescaleIntercept == -1024 and stored.pixel_array.min() >= 0  # raw values are not HU
    image = read_image(tmp_path / "series")
    expected = sitk.GetArrayFromImage(chest_crop)
    assert np.array_equal(image.array, expected)  # HU through Rescale Intercept, slices in position order
    assert image.array.min() < -900 and image.array.dtype == np.int16
    assert np.allclose(image.spacing, chest_crop.GetSpacing(), atol=1e-5)
    assert np.allclose(image.origin, chest_crop.GetOrigin(), atol=1e-4)
    assert np.allclose(image.direction, np.reshape(chest_crop.GetDirection(), (3, 3)), atol=1e-6)
    assert image.metadata["modality"] == "CT" and image.metadata["files"] == 12
    assert list_dicom_series(tmp_path / "series")[f"{UID_ROOT}.1"] == [str(p) for p in paths]


def test_oblique_series_is_ordered_along_the_slice_normal(tmp_path):
    volume = synthetic_ct()
    angle = np.radians(25.0)
    rotation = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    volume.SetDirection(tuple(rotation.ravel()))
    write_dicom_series(tmp_path / "oblique", volume, seed=5)
    image = read_image(tmp_path / "oblique")
    assert np.array_equal(image.array, sitk.GetArrayFromImage(volume))
    assert np.allclose(image.direction, rotation, atol=1e-5)
    assert np.allclose(image.origin, volume.GetOrigin(), atol=1e-4)


def test_slices_stored_top_down_come_back_bottom_up_at_the_same_points(tmp_path):
    volume = synthetic_ct()
    volume.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))  # k runs towards the feet
    write_dicom_series(tmp_path / "down", volume)
    image = read_image(tmp_path / "down")
    original = sitk.GetArrayFromImage(volume)
    assert np.array_equal(image.array, original[::-1])
    assert np.allclose(image.direction, np.eye(3), atol=1e-6)
    assert np.allclose(image.origin, volume.TransformIndexToPhysicalPoint((0, 0, volume.GetDepth() - 1)), atol=1e-4)


def test_ct_series_is_picked_among_other_modalities_and_subfolders(tmp_path):
    write_dicom_series(tmp_path / "study/a_mr", synthetic_ct(), series_uid=f"{UID_ROOT}.7", modality="MR")
    write_dicom_series(tmp_path / "study/b_ct", synthetic_ct(), series_uid=f"{UID_ROOT}.8")
    image = read_image(tmp_path / "study")
    assert image.metadata["series_uid"] == f"{UID_ROOT}.8" and image.metadata["modality"] == "CT"
    summary = {s["series_uid"]: s for s in describe_dicom_series(tmp_path / "study")}
    assert summary[f"{UID_ROOT}.7"]["modality"] == "MR" and summary[f"{UID_ROOT}.8"]["files"] == 6
    assert summary[f"{UID_ROOT}.8"]["size"] == [48, 40, 6]


def test_localizer_in_the_ct_series_is_left_out(tmp_path):
    write_dicom_series(tmp_path / "scan", synthetic_ct())
    scout = sitk.Image(96, 64, sitk.sitkInt16)
    for tag, value in {"0008|0060": "CT", "0020|000e": f"{UID_ROOT}.1", "0008|0008": "ORIGINAL\\PRIMARY\\LOCALIZER",
                       "0020|0032": "-200\\0\\100", "0020|0037": "1\\0\\0\\0\\0\\-1"}.items():
        scout.SetMetaData(tag, value)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetFileName(str(tmp_path / "scan" / "scout.dcm"))
    writer.Execute(scout)
    image = read_image(tmp_path / "scan")
    assert image.shape == (6, 40, 48) and image.metadata["files"] == 6


def test_several_ct_series_need_a_series_uid(tmp_path):
    write_dicom_series(tmp_path / "two", synthetic_ct(), series_uid=f"{UID_ROOT}.21")
    write_dicom_series(tmp_path / "two", synthetic_ct(origin=(0.0, 0.0, 0.0)), series_uid=f"{UID_ROOT}.22", seed=3)
    with pytest.raises(InputError) as err:
        read_image(tmp_path / "two")
    assert err.value.path == str(tmp_path / "two")
    assert "mixed series" in err.value.problem and f"{UID_ROOT}.21" in err.value.problem
    assert f"{UID_ROOT}.22" in err.value.problem and "--series" in err.value.problem
    chosen = read_image(tmp_path / "two", series_uid=f"{UID_ROOT}.22")
    assert np.allclose(chosen.origin, (0.0, 0.0, 0.0), atol=1e-4)
    with pytest.raises(InputError, match="is not in this folder"):
        read_image(tmp_path / "two", series_uid="1.2.3")


def test_slices_of_different_sizes_are_refused(tmp_path):
    volume = synthetic_ct()
    odd = synthetic_ct(shape=(1, 30, 48))[:, :, 0]
    odd.SetOrigin(volume.TransformIndexToPhysicalPoint((0, 0, 3))[:2])
    write_dicom_series(tmp_path / "sizes", volume, slice_overrides={3: odd})
    with pytest.raises(InputError, match="mixes slices of different sizes or orientations.*5 slice.*48x40.*1 slice.*48x30"):
        read_image(tmp_path / "sizes")


def test_slices_of_different_orientations_are_refused(tmp_path):
    write_dicom_series(tmp_path / "orient", synthetic_ct(), slice_overrides={2: {"0020|0037": "1\\0\\0\\0\\0\\-1"}})
    with pytest.raises(InputError, match="different sizes or orientations"):
        read_image(tmp_path / "orient")


def test_missing_slice_is_refused(tmp_path):
    write_dicom_series(tmp_path / "gap", synthetic_ct(), skip=[3])
    with pytest.raises(InputError, match=r"uneven slice positions \(steps 2.50 to 5.00 mm.*missing"):
        read_image(tmp_path / "gap")


def test_duplicate_positions_are_refused(tmp_path):
    write_dicom_series(tmp_path / "dup", synthetic_ct(), slice_overrides={4: {"0020|0032": "-20\\-16\\-92.5"}})
    with pytest.raises(InputError, match="1 duplicate slice position"):
        read_image(tmp_path / "dup")


def test_gantry_tilt_is_refused(tmp_path):
    volume = synthetic_ct()
    shear = {k: {"0020|0032": f"-20\\{-16 + 1.5 * k}\\{-100 + 2.5 * k}"} for k in range(volume.GetDepth())}
    write_dicom_series(tmp_path / "tilt", volume, slice_overrides=shear)
    with pytest.raises(InputError, match="gantry tilt of 31.0 degrees"):
        read_image(tmp_path / "tilt")


def test_truncated_slice_is_named(tmp_path):
    paths = write_dicom_series(tmp_path / "cut", synthetic_ct())
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[: len(data) - 1000])
    with pytest.raises(InputError) as err:
        read_image(tmp_path / "cut")
    assert err.value.path == str(paths[2]) and "unreadable or truncated" in err.value.problem


def test_dicom_without_rescale_is_refused(tmp_path):
    write_dicom_series(tmp_path / "raw", synthetic_ct(), rescale=False)
    with pytest.raises(InputError, match=r"no Rescale Slope/Intercept.*24 *\.\.") as err:
        read_image(tmp_path / "raw")
    assert err.value.path == str(tmp_path / "raw")
    assert read_image(tmp_path / "raw", check="volume").array.min() == 24  # -1000 HU stored as 24


def test_mr_series_is_refused_as_ct(tmp_path):
    write_dicom_series(tmp_path / "mr", synthetic_ct(), modality="MR")
    with pytest.raises(InputError, match="modality is MR, not CT"):
        read_image(tmp_path / "mr")


def test_folders_without_usable_dicom(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="the folder is empty"):
        read_image(tmp_path / "empty")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes/readme.txt").write_text("no images here\n")
    (tmp_path / "notes/scan.nii").write_bytes(b"\0" * 400)
    with pytest.raises(InputError, match="holds no DICOM image series"):
        read_image(tmp_path / "notes")
    with pytest.raises(InputError, match="does not exist"):
        read_image(tmp_path / "nowhere")


def test_itk_warnings_do_not_reach_the_console(tmp_path, capfd):
    write_dicom_series(tmp_path / "gap", synthetic_ct(), skip=[2])
    reader = sitk.ImageSeriesReader()  # lungai.io switched ITK warnings off when it was imported
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(tmp_path / "gap")))
    reader.Execute()
    assert "WARNING" not in capfd.readouterr().err


def _ldct_rows(shared_data):
    with open(shared_data / "ldct/pairs.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_real_ldct_slices_read_in_hounsfield_units(shared_data):
    for row in _ldct_rows(shared_data)[:3]:
        path = shared_data / "ldct" / row["full_dose"]
        image = read_image(path, min_slices=1)
        ds = pydicom.dcmread(str(path))
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert image.shape == (1, ds.Rows, ds.Columns)
        assert np.array_equal(image.array[0], hu)
        assert np.allclose(image.origin, [float(v) for v in ds.ImagePositionPatient])
        assert float(image.origin[2]) == pytest.approx(float(row["z_mm"]), abs=0.01)
        assert image.spacing == pytest.approx((float(ds.PixelSpacing[1]), float(ds.PixelSpacing[0]),
                                               float(ds.SliceThickness)))
        assert image.metadata["modality"] == "CT" and image.metadata["dicom_rescale"] is True


def test_real_ldct_single_slice_needs_its_series_folder_for_3d(shared_data):
    path = shared_data / "ldct" / _ldct_rows(shared_data)[0]["full_dose"]
    with pytest.raises(InputError, match="only 1 slice.*give the folder that holds the whole series"):
        read_image(path)


def test_real_ldct_folder_of_scattered_slices_is_not_a_volume(shared_data):
    folder = (shared_data / "ldct" / _ldct_rows(shared_data)[0]["full_dose"]).parent
    with pytest.raises(InputError, match="uneven slice positions"):
        read_image(folder)


def test_folder_with_one_real_slice_takes_its_thickness(shared_data, tmp_path):
    path = shared_data / "ldct" / _ldct_rows(shared_data)[0]["full_dose"]
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / path.name).write_bytes(path.read_bytes())
    image = read_image(tmp_path / "one", min_slices=1)
    assert image.shape[0] == 1 and image.spacing[2] == pytest.approx(3.0)
    assert image.metadata["kernel"] == "D45f" and image.metadata["manufacturer"] == "SIEMENS"
