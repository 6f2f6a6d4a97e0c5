"""The review store: versions never lost, locks serialise writers, crash safety, agreement, next case, export."""

from __future__ import annotations

import json
import multiprocessing as mp
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lungai.image import Image
from lungai.review import ReviewStore, StoreError, agreement_table, compare_labels, export_nnunet, next_case
from lungai.review.selection import label_disagreement

LABELS = {1: "right_lung", 2: "left_lung"}


def _image(seed: int = 0) -> Image:
    rng = np.random.default_rng(seed)
    array = rng.normal(-800, 30, size=(6, 10, 12)).astype(np.float32)
    direction = np.array([[0, 1, 0], [1, 0, 0], [0, 0, -1]], dtype=float)  # non-identity on purpose
    return Image(array, (0.8, 0.9, 2.5), (10.0, -20.0, 30.0), direction)


def _labels(image: Image, right: int = 3, left: int = 3) -> Image:
    a = np.zeros(image.shape, np.uint8)
    a[1:4, 2:6, 1:1 + right] = 1
    a[1:4, 2:6, 7:7 + left] = 2
    return image.like(a)


@pytest.fixture()
def store(tmp_path: Path) -> ReviewStore:
    s = ReviewStore.create(tmp_path / "store", task="lungs", labels=LABELS)
    s.add_case(_image(), "case01", user="admin")
    return s


def test_status_flow_and_versions(store: ReviewStore) -> None:
    img = store.load_image("case01")
    assert img.same_grid(_image())
    store.add_proposal("case01", _labels(img), {"method": "model", "model_name": "lungs-unet", "model_version": "1"},
                       uncertainty=0.1)
    with pytest.raises(StoreError, match="save a version before submitting"):
        store.submit("case01", "ann")
    v1 = store.save_version("case01", _labels(img, right=4), "ann", time_spent_s=30, note="extend right")
    v2 = store.save_version("case01", _labels(img, right=5), "ann", time_spent_s=10)
    assert (v1.number, v2.number) == (1, 2) and v1.parent == "p0001" and v2.parent == "v0001"
    store.submit("case01", "ann")
    with pytest.raises(StoreError, match="reopen it"):
        store.save_version("case01", _labels(img), "ann")
    store.approve("case01", "rev")
    record = store.case("case01")
    assert record.status == "approved" and record.approved_version.number == 2
    store.reopen("case01", "rev", "missed a region")
    store.save_version("case01", _labels(img, right=6), "ann")
    record = store.case("case01")
    assert [v.number for v in record.versions] == [1, 2, 3]
    assert [h["event"] for h in record.history] == ["added", "proposal", "saved", "saved", "submitted",
                                                     "approved", "reopened", "saved"]
    assert int((store.load_version("case01", 1).array == 1).sum()) == 3 * 4 * 4
    assert int((store.load_version("case01").array == 1).sum()) == 3 * 4 * 6


def test_label_grid_and_values_checked(store: ReviewStore) -> None:
    img = store.load_image("case01")
    with pytest.raises(StoreError, match="does not match the image grid"):
        store.save_version("case01", Image.from_array(np.zeros((6, 10, 12), np.uint8)), "ann")
    with pytest.raises(StoreError, match=r"label values \[7\]"):
        store.save_version("case01", img.like(np.full(img.shape, 7, np.uint8)), "ann")
    assert store.case("case01").versions == []


def _save_many(folder: str, annotator: str, count: int, fill: int) -> None:
    s = ReviewStore(folder, lock_timeout=60)
    img = s.load_image("case01")
    for i in range(count):
        s.save_version("case01", _labels(img, right=1 + (i + fill) % 4), annotator, note=f"{annotator}-{i}")


def test_two_annotators_saving_at_once_lose_nothing(store: ReviewStore) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_save_many, args=(str(store.folder), name, 6, k)) for k, name in
             enumerate(["alice", "bob"])]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    record = store.case("case01")
    assert sorted(v.number for v in record.versions) == list(range(1, 13))
    notes = sorted(v.note for v in record.versions)
    assert notes == sorted([f"alice-{i}" for i in range(6)] + [f"bob-{i}" for i in range(6)])
    for v in record.versions:  # every file present and intact
        store.load_version("case01", v.number)
    assert not (store.case_dir("case01") / ".lock").exists()


CRASH = """
import os, sys
import numpy as np
from lungai.review import ReviewStore
store = ReviewStore(sys.argv[1])
img = store.load_image("case01")
labels = img.like(np.ones(img.shape, np.uint8))
real_replace = os.replace
def crash(src, dst):
    os._exit(17)  # the process dies after writing the temporary file, before the rename
os.replace = crash
store.save_version("case01", labels, "crasher")
"""


def test_crash_between_write_and_rename_keeps_previous_version(store: ReviewStore) -> None:
    img = store.load_image("case01")
    store.save_version("case01", _labels(img), "ann")
    before = (store.case_dir("case01") / "case.json").read_text()
    result = subprocess.run([sys.executable, "-c", CRASH, str(store.folder)], capture_output=True, text=True)
    assert result.returncode == 17, result.stderr
    reopened = ReviewStore(store.folder, lock_timeout=0.5)
    assert (store.case_dir("case01") / "case.json").read_text() == before
    assert [v.number for v in reopened.case("case01").versions] == [1]
    assert np.array_equal(reopened.load_version("case01").array, _labels(img).array)
    leftovers = [p for p in store.case_dir("case01").rglob(".*") if p.name != ".lock"]
    assert leftovers, "the crash should have left a temporary file"
    # the crashed writer's lock is stale only after a while; breaking it early is refused
    (store.case_dir("case01") / ".lock").unlink(missing_ok=True)
    assert sorted(reopened.repair()) == sorted(leftovers)
    v = reopened.save_version("case01", _labels(img, right=2), "ann")
    assert v.number == 2


def test_agreement_matches_hand_computed_dice(tmp_path: Path) -> None:
    img = Image.from_array(np.zeros((1, 4, 4), np.float32), spacing=(1, 1, 1))
    p = np.zeros((1, 4, 4), np.uint8)
    c = np.zeros((1, 4, 4), np.uint8)
    p[0, 0, 0:4] = 1          # 4 voxels
    c[0, 0, 0:4] = 1
    c[0, 1, 0:2] = 1          # corrected adds 2 voxels -> Dice 2*4/(4+6) = 0.8
    p[0, 3, 3] = 2            # left lung: proposal has 1 voxel, correction none -> Dice 0
    result = compare_labels(img.like(p), img.like(c), LABELS, surface=False)
    assert result["labels"]["right_lung"]["dice"] == pytest.approx(0.8)
    assert result["labels"]["left_lung"]["dice"] == 0.0
    assert result["edited_voxels"] == 3
    assert result["edited_fraction"] == pytest.approx(3 / 7)
    assert result["mean_dice"] == pytest.approx(0.4)


def test_agreement_table_per_model_version(store: ReviewStore) -> None:
    img = store.load_image("case01")
    store.add_proposal("case01", _labels(img, right=2), {"model_name": "lungs-unet", "model_version": "1"})
    store.save_version("case01", _labels(img, right=4), "ann", time_spent_s=12)
    store.submit("case01", "ann")
    store.approve("case01", "rev")
    rows = agreement_table(store)
    assert len(rows) == 1
    row = rows[0]
    # right: 2 vs 4 columns of 12 voxels -> Dice 2*24/(24+48); left identical -> 1
    assert row["dice_right_lung"] == pytest.approx(48 / 72)
    assert row["dice_left_lung"] == 1.0
    assert row["model"] == "lungs-unet" and row["model_version"] == "1" and row["time_spent_s"] == 12
    assert row["asd_mm_left_lung"] == pytest.approx(0.0)


def test_next_case_strategies(tmp_path: Path) -> None:
    s = ReviewStore.create(tmp_path / "s", "lungs", LABELS)
    for k in range(3):
        s.add_case(_image(k), f"c{k}")
    img = s.load_image("c0")
    s.add_proposal("c0", _labels(img), {"method": "classic"}, uncertainty=0.05)
    s.add_proposal("c1", _labels(img), {"method": "classic"}, uncertainty=0.40)
    assert next_case(s, "uncertain").id == "c1"
    s.save_version("c0", _labels(img), "ann")
    assert next_case(s, "least_reviewed").id == "c1"
    s.start("c1", "bob")
    # c1 is bob's and c0 is ann's (she saved it): alice gets the only open case left
    assert next_case(s, "uncertain", annotator="alice").id == "c2"
    assert next_case(s, "uncertain", annotator="ann").id == "c0"
    assert next_case(s, "random", seed=1).id in {"c0", "c1", "c2"}
    assert label_disagreement([_labels(img).array, _labels(img).array]) == 0.0
    assert label_disagreement([_labels(img, right=2).array, _labels(img, right=4).array]) > 0.0


NNUNET_IMAGE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})\.nii\.gz$")


def test_export_follows_nnunet_v2_rules(store: ReviewStore, tmp_path: Path) -> None:
    for k in range(1, 4):
        store.add_case(_image(k), f"case0{k + 1}")
    for case_id in store.case_ids():
        img = store.load_image(case_id)
        store.save_version(case_id, _labels(img), "ann")
        store.submit(case_id, "ann")
        if case_id != "case04":
            store.approve(case_id, "rev")
    info = export_nnunet(store, tmp_path / "export", dataset_id=7, name="Lungs test")
    folder = Path(info["folder"])
    assert folder.name == "Dataset007_Lungstest"
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "CT"}
    assert meta["labels"] == {"background": 0, "right_lung": 1, "left_lung": 2}
    assert meta["file_ending"] == ".nii.gz" and meta["numTraining"] == 3
    images = sorted((folder / "imagesTr").iterdir())
    labels = sorted((folder / "labelsTr").iterdir())
    cases = sorted(NNUNET_IMAGE.match(p.name).group("case") for p in images)
    assert all(NNUNET_IMAGE.match(p.name).group("channel") == "0000" for p in images)
    assert cases == sorted(p.name[: -len(".nii.gz")] for p in labels) == ["case01", "case02", "case03"]
    splits = json.loads((folder / "splits_final.json").read_text())
    for fold in splits:
        assert sorted(fold["train"] + fold["val"]) == cases and not set(fold["train"]) & set(fold["val"])
    from lungai.models.datasets import read_nnunet_dataset
    from lungai.models.segmentation_training import dataset_description
    described = dataset_description([read_nnunet_dataset(folder)], [], [])
    assert described["dataset_version"] == f"{read_nnunet_dataset(folder).name} {info['dataset_version']}"
    again = export_nnunet(store, tmp_path / "export", dataset_id=7, name="Lungs test")
    assert again["dataset_version"] == info["dataset_version"]
    assert not list((tmp_path / "export").glob(".*"))


def test_flipped_image_keeps_physical_positions() -> None:
    from lungai.review.propose import flipped

    image = _image()
    for axes in [(2,), (1,), (0, 2)]:
        f = flipped(image, axes)
        for index in [(0, 0, 0), (3, 5, 2), (11, 9, 5)]:
            original_value = image.array[index[2], index[1], index[0]]
            point = image.index_to_lps(index)
            fi = np.round(f.lps_to_index(point)).astype(int)
            assert f.array[fi[2], fi[1], fi[0]] == original_value


def test_propose_measures_disagreement_between_flipped_runs() -> None:
    from lungai.review.propose import propose

    image = _image()

    def orientation_aware(img: Image, progress) -> tuple:
        # marks the voxels whose LPS x is below 14 mm: the same physical region whatever the array order
        k, j, i = np.indices(img.shape)
        pts = np.stack([i, j, k], -1).reshape(-1, 3)
        x = (img.index_to_lps_matrix()[:3, :3] @ pts.T).T[:, 0] + img.origin[0]
        return img.like((x < 14.0).reshape(img.shape).astype(np.uint8)), {"method": "test"}

    def array_bound(img: Image, progress) -> tuple:
        a = np.zeros(img.shape, np.uint8)
        a[:, :, :4] = 1  # the first array columns, whatever anatomy they hold
        return img.like(a), {"method": "test"}

    labels, prov, u = propose(image, orientation_aware, tta=((2,), (1,)))
    assert u == 0.0 and prov == {"method": "test"} and labels.array.any()
    _, _, u2 = propose(image, array_bound, tta=((2,),))
    assert u2 == 1.0   # columns 0-3 vs 8-11: no overlap


def test_surface_distance_is_none_when_a_label_is_missing() -> None:
    img = Image.from_array(np.zeros((3, 6, 6), np.float32))
    p = np.zeros((3, 6, 6), np.uint8)
    c = p.copy()
    p[1, 1:3, 1:3] = 1
    c[1, 1:3, 1:3] = 1
    c[1, 4, 4] = 2                                      # the proposal has no left lung at all
    result = compare_labels(img.like(p), img.like(c), LABELS)
    assert result["labels"]["right_lung"]["asd_mm"] == 0.0
    assert result["labels"]["left_lung"]["asd_mm"] is None and result["labels"]["left_lung"]["dice"] == 0.0
    from lungai.io.writers import to_json_text
    assert '"asd_mm": null' in to_json_text(result)
