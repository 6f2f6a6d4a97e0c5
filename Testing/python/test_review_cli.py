"""``lungai review`` end to end on a tiny synthetic CT: init, add, save a Slicer .seg.nrrd, submit, approve, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lungai.cli.main import main
from lungai.image import Image
from lungai.io import Segment, write_image, write_segmentation


def _ct(path: Path) -> Image:
    a = np.full((8, 24, 24), 40.0, np.float32)
    a[:, :, :3] = -1000.0  # air beside the body
    a[2:6, 6:18, 4:10] = -850.0
    a[2:6, 6:18, 14:20] = -850.0
    image = Image(a, (1.5, 1.5, 3.0), (0, 0, 0), np.eye(3))
    write_image(image, path)
    return image


def test_review_cli_round_trip(tmp_path: Path, capsys) -> None:
    ct = _ct(tmp_path / "p1.nii.gz")
    store = tmp_path / "store"
    assert main(["review", "init", str(store), "--task", "lungs"]) == 0
    assert main(["review", "add", str(store), str(tmp_path / "p1.nii.gz")]) == 0
    labels = np.zeros(ct.shape, np.uint8)
    labels[2:6, 6:18, 4:10] = 7      # arbitrary label values as Slicer may save them; names decide
    labels[2:6, 6:18, 14:20] = 9
    seg = tmp_path / "fix.seg.nrrd"
    write_segmentation(ct.like(labels), [Segment.from_structure(7, "right_lung"),
                                         Segment.from_structure(9, "left_lung")], seg)
    assert main(["review", "save", str(store), "p1", str(seg), "--annotator", "ann", "--time-spent", "42"]) == 0
    wrong = tmp_path / "wrong.seg.nrrd"
    write_segmentation(ct.like(labels), [Segment(7, "tumour", (1, 0, 0)), Segment(9, "left lung", (0, 0, 1))], wrong)
    assert main(["review", "save", str(store), "p1", str(wrong), "--annotator", "ann"]) == 2
    assert "segment 'tumour' matches none" in capsys.readouterr().err
    assert main(["review", "approve", str(store), "p1", "--user", "rev"]) == 1   # not submitted yet
    assert main(["review", "submit", str(store), "p1", "--user", "ann"]) == 0
    assert main(["review", "approve", str(store), "p1", "--user", "rev"]) == 0
    capsys.readouterr()
    assert main(["--json", "review", "export", str(store), "-o", str(tmp_path / "out")]) == 0
    info = json.loads(capsys.readouterr().out)
    label_file = Path(info["folder"]) / "labelsTr" / "p1.nii.gz"
    from lungai.io import read_image
    saved = read_image(label_file, check="none").array
    assert set(np.unique(saved).tolist()) == {0, 1, 2}
    assert int((saved == 1).sum()) == 4 * 12 * 6 and int((saved == 2).sum()) == 4 * 12 * 6
    assert main(["--json", "review", "list", str(store)]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["cases"][0]["status"] == "approved" and listing["cases"][0]["versions"] == 1


def test_review_save_accepts_segmentation_cropped_to_painted_region(tmp_path: Path) -> None:
    ct = _ct(tmp_path / "p2.nii.gz")
    store = tmp_path / "store"
    assert main(["review", "init", str(store), "--task", "lungs"]) == 0
    assert main(["review", "add", str(store), str(tmp_path / "p2.nii.gz")]) == 0
    crop = np.zeros((4, 12, 6), np.uint8)
    crop[:] = 1
    cropped = Image(crop, ct.spacing, tuple(ct.index_to_lps((4, 6, 2))), ct.direction)  # starts at i=4, j=6, k=2
    seg = tmp_path / "crop.seg.nrrd"
    write_segmentation(cropped, [Segment.from_structure(1, "right_lung")], seg)
    assert main(["review", "save", str(store), "p2", str(seg), "--annotator", "ann"]) == 0
    from lungai.review import ReviewStore
    saved = ReviewStore(store).load_version("p2").array
    expected = np.zeros(ct.shape, np.uint8)
    expected[2:6, 6:18, 4:10] = 1
    assert np.array_equal(saved, expected)
