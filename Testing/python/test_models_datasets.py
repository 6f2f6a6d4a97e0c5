"""Data set folders: nnU-Net v2 and MSD v1 reading, 2D slice conversion, patch sampling and slice preparation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image as PILImage

from lungai.errors import InputError
from lungai.io import read_image, write_image
from lungai.models.datasets import convert_2d_slices, read_nnunet_dataset
from lungai.models.registry import ModelEntry
from lungai.models.segmentation_training import PatchDataset, PreparedCase, mean_foreground_dice, prepare_cases

from test_models_helpers import TOY_TEMPLATE, toy_chest


def test_msd_v1_folder_and_label_table_forms(tmp_path):
    ct, lab = toy_chest(0)
    write_image(ct, tmp_path / "imagesTr" / "lung_001.nii.gz")
    write_image(lab, tmp_path / "labelsTr" / "lung_001.nii.gz")
    (tmp_path / "dataset.json").write_text(json.dumps({
        "name": "msd", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "right_lung", "2": "left_lung"},
        "training": [{"image": "./imagesTr/lung_001.nii.gz", "label": "./labelsTr/lung_001.nii.gz"}]}))
    ds = read_nnunet_dataset(tmp_path)
    assert [c.case_id for c in ds.cases] == ["lung_001"] and ds.labels[2] == "left_lung"
    (tmp_path / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {"lung": 1}}))
    with pytest.raises(InputError, match="background with value 0"):
        read_nnunet_dataset(tmp_path)
    with pytest.raises(InputError, match="dataset.json is missing"):
        read_nnunet_dataset(tmp_path / "imagesTr")


def test_2d_slices_convert_back_to_hu_and_train_as_2d_cases(tmp_path):
    grey = np.zeros((40, 50), np.uint8)
    grey[:, 25:] = 255
    mask = np.zeros((40, 50), np.uint8)
    mask[10:20, 30:40] = 2
    (tmp_path / "img").mkdir()
    (tmp_path / "gt").mkdir()
    PILImage.fromarray(grey).save(tmp_path / "img" / "7.png")
    PILImage.fromarray(mask).save(tmp_path / "gt" / "7.png")
    folder = convert_2d_slices(tmp_path / "img", tmp_path / "gt", tmp_path / "out",
                               {1: "ground_glass", 2: "consolidation"}, window=(-1000, 200), pixel_spacing=0.5,
                               folds=1)
    ds = read_nnunet_dataset(folder)
    image = read_image(ds.cases[0].images[0], check="none")
    assert image.ndim == 2 and image.spacing == (0.5, 0.5)
    assert image.array[0, 0] == pytest.approx(-1000) and image.array[0, -1] == pytest.approx(200)
    entry = ModelEntry.from_dict(dict(TOY_TEMPLATE, spatial_dims=2, spacing=[1.0, 1.0], patch_size=[16, 16],
                                      labels={"0": "background", "1": "ground_glass", "2": "consolidation"},
                                      version="0.0.0", card="", weights={"file": "x.pt", "sha256": "0" * 64, "size": 1}))
    (case,) = prepare_cases(ds.cases, entry)
    assert case.image.shape == (20, 25) and set(np.unique(case.label)) == {0, 2}
    # without a known window each picture is calibrated by its own landmarks, as the shipped 2D model was trained
    picture = np.full((40, 50), 200, np.uint8)  # soft-tissue peak at grey 200 -> 40 HU
    picture[5:35, 5:20] = 20                    # lung at grey 20 -> -950 HU
    PILImage.fromarray(picture).save(tmp_path / "img" / "7.png")
    folder = convert_2d_slices(tmp_path / "img", tmp_path / "gt", tmp_path / "calibrated", {1: "x", 2: "y"},
                               pixel_spacing=0.5, folds=1)
    calibrated = read_image(read_nnunet_dataset(folder).cases[0].images[0], check="none").array
    assert calibrated[0, 0] == pytest.approx(40.0) and calibrated[10, 10] == pytest.approx(-950.0)
    (tmp_path / "gt" / "7.png").unlink()
    with pytest.raises(InputError, match="no mask for 7.png"):
        convert_2d_slices(tmp_path / "img", tmp_path / "gt", tmp_path / "out", {1: "x"}, window=(0, 1),
                          pixel_spacing=1.0)


def test_3d_cases_become_labelled_axial_slices_for_a_2d_model(tmp_path):
    ct, lab = toy_chest(1)
    write_image(ct, tmp_path / "imagesTr" / "c_0000.nii.gz")
    write_image(lab, tmp_path / "labelsTr" / "c.nii.gz")
    (tmp_path / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"},
                                                       "labels": {"background": 0, "right_lung": 1, "left_lung": 2}}))
    entry = ModelEntry.from_dict(dict(TOY_TEMPLATE, spatial_dims=2, spacing=[4.0, 4.0], patch_size=[16, 16],
                                      version="0.0.0", card="", weights={"file": "x.pt", "sha256": "0" * 64, "size": 1}))
    slices = prepare_cases(read_nnunet_dataset(tmp_path).cases, entry, background_slices=0.0)
    labelled = [k for k in range(lab.shape[0]) if lab.array[k].any()]
    assert [s.case_id for s in slices] == [f"c:{k}" for k in labelled]
    assert all(s.image.ndim == 2 for s in slices)


def test_patches_are_reproducible_per_epoch_and_centred_on_classes():
    image = np.zeros((30, 30), np.float32)
    label = np.zeros((30, 30), np.uint8)
    label[2:4, 25:28] = 1  # a tiny structure in a corner
    ds = PatchDataset([PreparedCase("a", image, label)], (8, 8), samples_per_case=50, seed=5, class_fraction=1.0)
    ds.set_epoch(3)
    first = [ds[i][1] for i in range(50)]
    again = [ds[i][1] for i in range(50)]
    assert all((a == b).all() for a, b in zip(first, again))
    assert all(int(p.sum()) > 0 for p in first)  # every patch holds the structure
    ds.set_epoch(4)
    assert any(not (a == ds[i][1]).all() for i, a in enumerate(first))


def test_mean_foreground_dice_by_hand():
    import torch

    target = torch.tensor([[[0, 1, 1, 2]]])  # batch 1, 1 channel, 4 voxels (1D for clarity)
    logits = torch.zeros(1, 3, 4)
    for index, value in enumerate([0, 1, 2, 2]):
        logits[0, value, index] = 5.0
    # class 1: pred {1}, truth {1, 2} -> 2*1/3; class 2: pred {2, 3}, truth {3} -> 2*1/3
    assert mean_foreground_dice(logits, target) == pytest.approx(2 / 3)
