"""Weight-free lesion segmentation, follow-up and the CLI on small synthetic CTs with known lesions and vessels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lungai.image import Image
from lungai.io import read_segmentation, write_image
from lungai.pneumonia import analyze, regions_from_labels, segment_lesions
from lungai.pneumonia.followup import followup

SPACING = (1.0, 1.0, 1.0)
SHAPE = (48, 64, 80)  # k, j, i


def _grid():
    return np.mgrid[0:SHAPE[0], 0:SHAPE[1], 0:SHAPE[2]].astype(np.float32)


def _ball(centre_kji, radius):
    k, j, i = _grid()
    return (k - centre_kji[0]) ** 2 + (j - centre_kji[1]) ** 2 + (i - centre_kji[2]) ** 2 <= radius ** 2


def _tube(j0, i0, radius):
    _, j, i = _grid()
    return (j - j0) ** 2 + (i - i0) ** 2 <= radius ** 2


def make_ct(lesions, seed=0, shift=(0, 0, 0)):
    """Two box lungs at -860 HU with noise, a vessel (+40 HU) in each lung, and ``lesions`` (centre, radius, hu)."""
    rng = np.random.default_rng(seed)
    ct = np.full(SHAPE, 40.0, dtype=np.float32)  # soft tissue around the lungs
    lungs = np.zeros(SHAPE, dtype=np.uint8)
    sk, sj, si = shift
    lungs[4 + sk:44 + sk, 6 + sj:58 + sj, 4 + si:38 + si] = 1
    lungs[4 + sk:44 + sk, 6 + sj:58 + sj, 42 + si:76 + si] = 2
    ct[lungs > 0] = -860.0
    truth = np.zeros(SHAPE, dtype=np.uint8)
    vessels = (_tube(20 + sj, 30 + si, 1.6) | _tube(40 + sj, 50 + si, 2.2)) & (lungs > 0)
    ct[vessels] = 40.0
    for (k, j, i), radius, hu in lesions:
        ball = _ball((k + sk, j + sj, i + si), radius) & (lungs > 0)
        ct[ball] = hu
        truth[ball] = 1 if hu < -300 else 2
    from scipy import ndimage as ndi

    ct = ndi.gaussian_filter(ct, 0.8) + rng.normal(0, 15, SHAPE).astype(np.float32)
    air = np.zeros(SHAPE, dtype=bool)
    air[:, :2] = True
    ct[air] = -1000.0
    return Image.from_array(ct, spacing=SPACING), lungs, truth, vessels


LESIONS = [((24, 30, 16), 6.0, -550.0), ((20, 40, 64), 5.0, -20.0), ((34, 20, 58), 4.0, -500.0)]


def dice(a, b):
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture(scope="module")
def synthetic():
    return make_ct(LESIONS)


def test_classic_finds_lesions_not_vessels(synthetic):
    image, lungs, truth, vessels = synthetic
    regions = regions_from_labels(image, lungs, zones=lungs.copy(), fill=False)
    seg = segment_lesions(image, regions, method="classic")
    assert dice(seg.labels > 0, truth > 0) >= 0.85
    # classes: the consolidation ball is consolidation, the ground-glass balls ground glass
    assert np.mean(seg.labels[truth == 2] == 2) > 0.9
    assert np.mean(seg.labels[truth == 1] == 1) > 0.85
    # vessels away from lesions are not disease
    far = vessels & ~np.isin(np.arange(SHAPE[0])[:, None, None], range(14, 36))
    assert np.mean(seg.labels[far] > 0) < 0.05


def test_analysis_counts_and_call(synthetic):
    image, lungs, truth, _ = synthetic
    regions = regions_from_labels(image, lungs, fill=False)
    result = analyze(image, regions=regions, min_size_mm=5.0)
    assert len(result.lesions) == 3
    largest = result.lesions[0]
    assert largest.type == "ground_glass" and largest.side == "right"
    assert largest.volume_ml == pytest.approx(4 / 3 * np.pi * 6 ** 3 / 1000, rel=0.15)
    assert {les.type for les in result.lesions} == {"ground_glass", "consolidation"}
    assert result.call.positive
    assert abs(result.involvement.percent_opacity - 100 * np.count_nonzero(truth) / np.count_nonzero(lungs)) < 0.5
    healthy = analyze(make_ct([])[0], regions=regions, min_size_mm=5.0)
    assert healthy.lesions == [] and not healthy.call.positive


def test_followup_new_grown_and_resolved():
    earlier_lesions = [((24, 30, 16), 5.0, -550.0), ((20, 40, 60), 5.0, -20.0)]
    later_lesions = [((24, 30, 16), 7.0, -550.0), ((34, 20, 58), 5.0, -500.0)]
    e_img, e_lungs, _, _ = make_ct(earlier_lesions, seed=1)
    l_img, l_lungs, _, _ = make_ct(later_lesions, seed=2, shift=(2, -3, 1))
    e = analyze(e_img, regions=regions_from_labels(e_img, e_lungs, fill=False))
    l_ = analyze(l_img, regions=regions_from_labels(l_img, l_lungs, fill=False))
    result = followup(e_img, l_img, earlier_result=e, later_result=l_)
    assert result.registration.lung_dice_after > 0.97 > result.registration.lung_dice_before
    assert result.counts() == {"new": 1, "grown": 1, "shrunk": 0, "stable": 0, "resolved": 1}
    both = result.changes[0]
    assert both.region == "both lungs" and both.change_ml > 0
    assert set(np.unique(result.change_map).tolist()) == {0, 1, 2, 3}


def _analyzed_pair(kept, appearing):
    """An earlier scan with lesion `kept` and a later one where `appearing` joins it, both analysed."""
    e_img, e_lungs, _, _ = make_ct([kept], seed=1)
    l_img, l_lungs, _, _ = make_ct([kept, appearing], seed=2)
    e = analyze(e_img, regions=regions_from_labels(e_img, e_lungs, fill=False))
    l_ = analyze(l_img, regions=regions_from_labels(l_img, l_lungs, fill=False))
    assert len(e.lesions) == 1 and len(l_.lesions) == 1  # joined in the later scan
    return e_img, l_img, e, l_


def test_followup_lesion_appearing_joined_to_a_neighbour_is_new():
    """The later lesion A touches lesion N (one connected component): by volume the group only grew (x 1.6), but
    A holds a 5 mm ball more than 2 mm away from N, so the group is new, not grown."""
    e_img, l_img, e, l_ = _analyzed_pair(((24, 30, 16), 5.0, -550.0), ((24, 30, 25), 4.5, -550.0))
    assert 1.25 < l_.lesions[0].volume_ml / e.lesions[0].volume_ml < 4.0
    result = followup(e_img, l_img, earlier_result=e, later_result=l_)
    assert [c.status for c in result.lesion_changes] == ["new"]
    # and the other way round: the lesion that went is resolved
    back = followup(l_img, e_img, earlier_result=l_, later_result=e)
    assert [c.status for c in back.lesion_changes] == ["resolved"]


def test_followup_small_change_beside_a_large_lesion_stays_stable():
    """An 8 mm lesion appears joined to a 20 mm one: the group's volume rises by 6 %, within the stable band
    (x 1.25) where outlines of one lesion vary between scans, so the group is stable; the change map still shows
    the part that appeared as new (1)."""
    e_img, l_img, e, l_ = _analyzed_pair(((24, 36, 17), 10.0, -550.0), ((24, 36, 31), 4.0, -550.0))
    assert 1.0 < l_.lesions[0].volume_ml / e.lesions[0].volume_ml < 1.25
    result = followup(e_img, l_img, earlier_result=e, later_result=l_)
    assert [c.status for c in result.lesion_changes] == ["stable"]
    assert np.mean(result.change_map[_ball((24, 36, 32), 2.0)] == 1) > 0.9


def test_cli_analyze_writes_every_output(tmp_path, synthetic):
    from lungai.cli.main import main

    image, lungs, _, _ = synthetic
    write_image(image, tmp_path / "ct.nii.gz")
    write_image(image.like(lungs), tmp_path / "lungs.nii.gz")
    out = tmp_path / "out"
    code = main(["--json", "--progress", "none", "pneumonia", "analyze", str(tmp_path / "ct.nii.gz"), "-o", str(out),
                 "--lungs", str(tmp_path / "lungs.nii.gz"), "--no-pdf"])
    assert code == 0
    for name in ("lesions.seg.nrrd", "lesions.csv", "histogram.csv", "histogram.png", "results.json", "report.html"):
        assert (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())
    assert results["summary"]["lesion_count"] == 3 and results["patient_call"]["positive"]
    labels, segments = read_segmentation(out / "lesions.seg.nrrd")
    assert {s.name for s in segments} == {"ground-glass opacity", "consolidation"}
    assert np.count_nonzero(labels.array) == sum(les["voxels"] for les in results["lesions"])
    assert "supports" in (out / "report.html").read_text() or "support" in (out / "report.html").read_text()


def test_cli_rejects_a_lung_mask_with_foreign_labels(tmp_path, synthetic):
    from lungai.cli.main import main

    image, lungs, _, _ = synthetic
    write_image(image, tmp_path / "ct.nii.gz")
    write_image(image.like((lungs * 7).astype(np.uint8)), tmp_path / "bad.nii.gz")
    code = main(["--progress", "none", "pneumonia", "analyze", str(tmp_path / "ct.nii.gz"), "-o",
                 str(tmp_path / "out"), "--lungs", str(tmp_path / "bad.nii.gz")])
    assert code == 2 and not (tmp_path / "out" / "results.json").exists()


def test_cli_followup_writes_every_output(tmp_path):
    from lungai.cli.main import main

    e_img, e_lungs, _, _ = make_ct([((24, 30, 16), 5.0, -550.0)], seed=3)
    l_img, l_lungs, _, _ = make_ct([((24, 30, 16), 5.0, -550.0), ((34, 20, 58), 5.0, -500.0)], seed=4)
    for name, image in (("e", e_img), ("l", l_img)):
        write_image(image, tmp_path / f"{name}.nii.gz")
    write_image(e_img.like(e_lungs), tmp_path / "el.nii.gz")
    write_image(l_img.like(l_lungs), tmp_path / "ll.nii.gz")
    out = tmp_path / "fu"
    code = main(["--json", "--progress", "none", "pneumonia", "followup", str(tmp_path / "e.nii.gz"),
                 str(tmp_path / "l.nii.gz"), "-o", str(out), "--earlier-lungs", str(tmp_path / "el.nii.gz"),
                 "--later-lungs", str(tmp_path / "ll.nii.gz"), "--no-pdf"])
    assert code == 0
    for name in ("followup.json", "changes.csv", "change.seg.nrrd", "report.html"):
        assert (out / name).stat().st_size > 0, name
    data = json.loads((out / "followup.json").read_text())
    assert data["summary"]["lesion_changes"]["new"] == 1 and data["summary"]["lesion_changes"]["stable"] == 1


def test_model_branch_keeps_model_labels_inside_the_lungs(monkeypatch, synthetic):
    """The model method uses the newest 'lesions' model of the registry and clips its output to the lungs."""
    from lungai import models
    from lungai.models.inference import InferenceResult
    from lungai.provenance import Provenance

    image, lungs, _, _ = synthetic

    class Entry:
        name, version, task, created, output = "lesions-test", "1.2.0", "lesions", "2026-01-01", "softmax"
        id, spatial_dims, labels = "lesions-test@1.2.0", 3, {1: "ground_glass", 2: "consolidation"}

    def fake_inference(img, entry, device="cpu", progress=None):
        assert entry.name == "lesions-test" and device == "cpu"
        labels = np.zeros(img.shape, dtype=np.uint8)
        labels[:, :, :] = 1  # ground glass everywhere, also outside the lungs
        labels[20:30] = 2
        return InferenceResult(Provenance(method="model lesions-test", model_name="lesions-test",
                                          model_version="1.2.0"), labels=img.like(labels))

    monkeypatch.setattr(models, "load_registry", lambda: [Entry()])
    monkeypatch.setattr(models, "get_model", lambda name: Entry())
    monkeypatch.setattr(models, "run_inference", fake_inference)
    regions = regions_from_labels(image, lungs, fill=False)
    seg = segment_lesions(image, regions, method="model")
    assert np.array_equal(seg.labels > 0, lungs > 0)
    assert set(np.unique(seg.labels[20:30][lungs[20:30] > 0]).tolist()) == {2}
    assert seg.provenance.model_name == "lesions-test"


def test_model_branch_without_a_model_says_what_to_do(monkeypatch, synthetic):
    from lungai import models
    from lungai.errors import LungAIError

    image, lungs, _, _ = synthetic
    monkeypatch.setattr(models, "load_registry", lambda: [])
    with pytest.raises(LungAIError, match="no lesion model is registered"):
        segment_lesions(image, regions_from_labels(image, lungs, fill=False), method="model")


def test_cli_followup_passes_the_model_name_on(tmp_path, capsys):
    """``followup --method model --model NAME`` asks the registry for NAME (an unknown one fails, naming it)."""
    from lungai.cli.main import main

    e_img, e_lungs, _, _ = make_ct([((24, 30, 16), 5.0, -550.0)], seed=3)
    for name in ("e", "l"):
        write_image(e_img, tmp_path / f"{name}.nii.gz")
    write_image(e_img.like(e_lungs), tmp_path / "lungs.nii.gz")
    out = tmp_path / "fu"
    code = main(["--progress", "none", "pneumonia", "followup", str(tmp_path / "e.nii.gz"), str(tmp_path / "l.nii.gz"),
                 "-o", str(out), "--earlier-lungs", str(tmp_path / "lungs.nii.gz"), "--later-lungs",
                 str(tmp_path / "lungs.nii.gz"), "--method", "model", "--model", "no-such-lesion-model", "--no-pdf"])
    assert code != 0 and "no-such-lesion-model" in capsys.readouterr().err
    assert not (out / "followup.json").exists()
