"""Lung segmentation on real CT (reference masks) and through the ``lungai lungs`` command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from lungai.cli.main import main
from lungai.io import read_image, read_segmentation
from lungai.labels import AIRWAYS, LEFT_LUNG, RIGHT_LUNG
from lungai.lung import segment_lungs


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))


def test_cip_two_slice_crop_matches_reference(shared_data):
    folder = shared_data / "ct" / "cip-crop-2slices"
    image = read_image(folder / "ct.nrrd", check="volume")
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "left_right_cip.nrrd"))) % 256  # 13 R, 10 L
    result = segment_lungs(image, method="classic")
    assert result.details["planar"]
    assert dice(reference == 13, result.labels.array == RIGHT_LUNG) >= 0.97
    assert dice(reference == 10, result.labels.array == LEFT_LUNG) >= 0.97


def test_lung_bases_match_totalsegmentator(shared_data):
    folder = shared_data / "ct" / "abdomen-lung-bases"
    image = read_image(folder / "ct.nii.gz")
    lab = segment_lungs(image, method="classic").labels.array

    def mask(*names):
        return np.any([sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"{n}.nii.gz"))) > 0.5 for n in names],
                      axis=0)

    right = mask("lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right")
    left = mask("lung_upper_lobe_left", "lung_lower_lobe_left")
    # bowel gas fills much of this field of view: none of it may be taken for lung
    assert dice(right, lab == RIGHT_LUNG) > 0.93
    assert dice(left, lab == LEFT_LUNG) > 0.9


def test_full_chest_ct_is_plausible(shared_data):
    image = read_image(shared_data / "ct" / "chest-ct-141" / "ct.nii.gz")
    result = segment_lungs(image, method="classic")
    f = result.figures
    assert result.details["trachea_found"]
    assert 4000 < f["total"]["volume_ml"] < 7000
    assert 1.05 < f["right_left_ratio"] < 1.3
    assert 20 < f["airways_volume_ml"] < 150
    assert -900 < f["total"]["mean_hu"] < -700
    # nothing outside the chest wall: every lung voxel is within the body, none in the bottom (abdominal) slab
    lab = result.labels.array
    assert not np.isin(lab[:, :, :40], (RIGHT_LUNG, LEFT_LUNG)).any()  # lateral room air / table side
    trachea_slices = np.flatnonzero((lab == AIRWAYS).any(axis=(1, 2)))
    assert trachea_slices[-1] >= image.shape[0] - 3  # the trachea is followed to the top of the scan


def test_cli_writes_every_output(shared_data, tmp_path, capsys):
    source = shared_data / "ct" / "cip-crop-2slices" / "ct.nrrd"
    code = main(["--json", "--progress", "json", "lungs", str(source), "-o", str(tmp_path / "out"),
                 "--method", "classic"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    outputs = result["outputs"]
    assert set(outputs) == {"lungs_seg", "zones_seg", "lungs_labelmap", "figures"}
    for path in outputs.values():
        assert (tmp_path / "out").resolve() in __import__("pathlib").Path(path).parents
    progress = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    assert progress and progress[-1]["progress"] == pytest.approx(1.0)
    labels, segments = read_segmentation(outputs["lungs_seg"])
    assert {s.name for s in segments} == {"right lung", "left lung", "airways"}
    assert np.isin(labels.array, (RIGHT_LUNG, LEFT_LUNG)).sum() > 10000
    zones, zone_segments = read_segmentation(outputs["zones_seg"])
    assert len(zone_segments) == 12
    labelmap = read_image(outputs["lungs_labelmap"], check="none")
    np.testing.assert_array_equal(labelmap.array, labels.array)
    figures = json.loads(open(outputs["figures"]).read())
    assert figures["provenance"]["method"] == "lungs-classic"
    assert figures["figures"]["right_lung"]["volume_ml"] > 0


def test_cli_refuses_an_mr_image_with_exit_code_2(tmp_path, capsys):
    rng = np.random.default_rng(0)
    mr = sitk.GetImageFromArray(rng.uniform(0, 800, (12, 48, 48)).astype(np.float32))
    path = tmp_path / "mr.nii.gz"
    sitk.WriteImage(mr, str(path))
    code = main(["lungs", str(path), "-o", str(tmp_path / "out")])
    assert code == 2
    assert "not a CT in Hounsfield units" in capsys.readouterr().err
    assert not (tmp_path / "out" / "lungs.seg.nrrd").exists()
