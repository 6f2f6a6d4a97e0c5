"""``.seg.nrrd`` written by lungai, read back by slicerio (as Slicer would) and by lungai."""

from __future__ import annotations

import nrrd
import numpy as np
import pytest
import slicerio

from io_testdata import oblique_flipped_direction
from lungai.errors import InputError
from lungai.image import Image
from lungai.io import Segment, read_segmentation, write_segmentation
from lungai.io.segmentation import labels_on_grid
from lungai.labels import LOBE_LABELS, LUNG_LABELS, segments_for
from lungai.terminology import structure


def lung_labels() -> Image:
    """Right lung 1 on the patient's right (low i for identity LPS), left lung 2, airway 3; non-cubic grid."""
    labels = np.zeros((5, 6, 9), np.uint8)
    labels[1:4, 1:5, 1:4] = 1
    labels[1:4, 1:5, 5:8] = 2
    labels[0:5, 2:4, 4] = 3
    return Image(labels, (0.7, 0.8, 2.5), (-10.5, 20.25, -300.0), oblique_flipped_direction())


def test_slicerio_reads_names_colours_labels_terminology_and_geometry(tmp_path):
    labels = lung_labels()
    path = write_segmentation(labels, segments_for(LUNG_LABELS), tmp_path / "lungs.seg.nrrd")
    seg = slicerio.read_segmentation(str(path))
    assert np.allclose(seg["ijkToLPS"], labels.index_to_lps_matrix(), atol=1e-12)
    assert np.array_equal(seg["voxels"], labels.array.transpose(2, 1, 0))  # slicerio: [i, j, k]
    by_name = {s["name"]: s for s in seg["segments"]}
    assert sorted(by_name) == ["airways", "left lung", "right lung"]
    for value, key in LUNG_LABELS.items():
        sdef = structure(key)
        entry = by_name[sdef.name]
        assert entry["labelValue"] == value
        assert np.allclose(entry["color"], sdef.color)
        assert entry["terminology"] == sdef.terminology()
        assert entry["extent"] == [0, 8, 0, 5, 0, 4]  # i, j, k extents of the 9x6x5 grid
    assert by_name["right lung"]["terminology"]["typeModifier"] == ["SCT", "24028007", "Right"]
    header = nrrd.read_header(str(path))
    assert header["space"] == "left-posterior-superior" and list(header["sizes"]) == [9, 6, 5]


def test_lungai_reads_its_own_segmentation_back(tmp_path):
    labels = lung_labels()
    segments = segments_for(LUNG_LABELS)
    segments[0].tags["lungai.method"] = "unit test"
    path = write_segmentation(labels, segments, tmp_path / "lungs.seg.nrrd", metadata={"method": "unit test"})
    image, back = read_segmentation(path)
    assert image.same_grid(labels, tol=1e-12) and np.array_equal(image.array, labels.array)
    assert [(s.label, s.name) for s in back] == [(s.label, s.name) for s in segments]
    assert all(np.allclose(a.color, b.color) and a.terminology == b.terminology for a, b in zip(back, segments))
    assert back[0].tags == {"lungai.method": "unit test"}
    assert nrrd.read_header(str(path))["lungai_method"] == "unit test"


def test_label_values_lacking_a_segment_are_refused(tmp_path):
    labels = lung_labels()
    with pytest.raises(ValueError, match=r"label values \[3\] have no segment description"):
        write_segmentation(labels, segments_for({1: "right_lung", 2: "left_lung"}), tmp_path / "x.seg.nrrd")
    with pytest.raises(ValueError, match="share a label value"):
        write_segmentation(labels, [Segment(1, "a", (1, 0, 0)), Segment(1, "b", (0, 1, 0)),
                                    Segment(2, "c", (0, 0, 1)), Segment(3, "d", (1, 1, 0))], tmp_path / "x.seg.nrrd")
    with pytest.raises(ValueError, match="colour"):
        write_segmentation(labels.like(np.zeros_like(labels.array)), [Segment(1, "a", (255, 0, 0))],
                           tmp_path / "x.seg.nrrd")
    assert list(tmp_path.iterdir()) == []


def test_large_label_values_use_uint16(tmp_path):
    labels = lung_labels()
    array = labels.array.astype(np.uint16) * 300
    segments = [Segment(v * 300, f"s{v}", (0.1 * v, 0.2, 0.3)) for v in (1, 2, 3)]
    image, back = read_segmentation(write_segmentation(labels.like(array), segments, tmp_path / "big.seg.nrrd"))
    assert np.array_equal(image.array, array) and [s.label for s in back] == [300, 600, 900]


def test_overlapping_layers_are_merged(tmp_path):
    labels = lung_labels()
    layers = np.zeros((2,) + labels.size, np.uint8)  # [layer, i, j, k] as Slicer stores overlaps
    layers[0, 1:4, 1:3, 1:3] = 1
    layers[1, 2:5, 2:4, 1:3] = 1
    seg = {"voxels": layers, "ijkToLPS": labels.index_to_lps_matrix(),
           "segments": [{"id": "a", "labelValue": 1, "layer": 0, "name": "nodule", "color": [1, 0, 0]},
                        {"id": "b", "labelValue": 1, "layer": 1, "name": "lesion", "color": [0, 1, 0]}]}
    slicerio.write_segmentation(str(tmp_path / "layers.seg.nrrd"), seg)
    image, back = read_segmentation(tmp_path / "layers.seg.nrrd")
    assert [(s.label, s.name) for s in back] == [(1, "nodule"), (2, "lesion")]
    expected = np.zeros(labels.size, np.uint16)
    expected[layers[0] == 1] = 1
    expected[layers[1] == 1] = 2  # later segments win where they overlap
    assert np.array_equal(image.array, expected.transpose(2, 1, 0)) and image.same_grid(labels)


def test_lobes_table_round_trips(tmp_path):
    labels = np.zeros((4, 5, 6), np.uint8)
    for value in LOBE_LABELS:
        labels[0, 0, value] = value
    image, back = read_segmentation(write_segmentation(Image.from_array(labels), segments_for(LOBE_LABELS),
                                                       tmp_path / "lobes.seg.nrrd"))
    assert [s.name for s in back] == ["right upper lobe", "right middle lobe", "right lower lobe",
                                      "left upper lobe", "left lower lobe"]
    assert np.array_equal(image.array, labels)


def test_unreadable_segmentations(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_segmentation(tmp_path / "none.seg.nrrd")
    (tmp_path / "bad.seg.nrrd").write_text("NRRD0004\ngarbage\n")
    with pytest.raises(InputError, match="cannot be read as a segmentation") as err:
        read_segmentation(tmp_path / "bad.seg.nrrd")
    assert err.value.path == str(tmp_path / "bad.seg.nrrd")


def test_cropped_segmentation_is_placed_on_the_reference_grid(tmp_path):
    full = lung_labels()
    crop = Image(full.array[1:4, 1:5, 1:8], full.spacing, tuple(full.index_to_lps((1, 1, 1))), full.direction)
    path = write_segmentation(crop, segments_for(LUNG_LABELS), tmp_path / "cropped.seg.nrrd")
    placed, _ = read_segmentation(path, reference=full)
    expected = np.zeros_like(full.array)
    expected[1:4, 1:5, 1:8] = full.array[1:4, 1:5, 1:8]
    assert placed.same_grid(full) and np.array_equal(placed.array, expected)
    # a grid reaching beyond the reference is cropped to it
    wide = Image(np.pad(full.array, 2), full.spacing, tuple(full.index_to_lps((-2, -2, -2))), full.direction)
    assert np.array_equal(labels_on_grid(wide, full).array, full.array)


def test_labels_on_another_grid_are_resampled_nearest_neighbour():
    fine = Image(np.zeros((4, 8, 8), np.uint8), (0.5, 0.5, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    coarse = Image(np.zeros((4, 4, 4), np.uint8), (1.0, 1.0, 1.0), (0.25, 0.25, 0.0), np.eye(3))
    fine.array[:, 2:6, 2:6] = 1  # LPS x, y from 1.0 to 2.5 mm
    out = labels_on_grid(fine, coarse)
    expected = np.zeros((4, 4, 4), np.uint8)
    expected[:, 1:3, 1:3] = 1  # coarse centres at 1.25 and 2.25 mm
    assert out.same_grid(coarse) and np.array_equal(out.array, expected)
