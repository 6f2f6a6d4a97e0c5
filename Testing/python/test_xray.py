"""X-ray classifier building blocks against hand-computed answers: folds, metrics, calibration, preprocessing,
plausibility checks, weights files, Grad-CAM localisation and a short training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from lungai.errors import InputError
from lungai.image import Image
from lungai.xray import plausibility
from lungai.xray.calibration import fit_temperature, softmax
from lungai.xray.dataset import RadiographSet, patient_folds, patient_id
from lungai.xray.evaluation import classification_report, expected_calibration_error, roc_auc
from lungai.xray.heatmap import grad_cam, overlay_rgb
from lungai.xray.network import NetworkConfig, XrayNet, build_network
from lungai.xray.preprocess import model_input, standardize, window_to_unit
from lungai.xray.weights import config_from_state, load_initial_weights, load_weights_file

TINY = NetworkConfig(input_size=64, widths=(8, 16, 16, 32), blocks=(1, 1, 1, 1), dropout=0.0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- data set and folds ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, patient", [
    ("PNEUMONIA/person12_virus_3.jpeg", "person12"), ("person1000_bacteria_2931.jpeg", "person1000"),
    ("NORMAL/IM-0011-0001-0001.jpeg", "IM-0011"), ("IM-0011-0001.jpeg", "IM-0011"),
    ("NORMAL2-IM-0372-0001.jpeg", "NORMAL2-IM-0372"), ("other_film.png", "other_film")])
def test_patient_id(name, patient):
    assert patient_id(name) == patient


def test_patient_folds_keep_patients_together_and_balance_classes():
    rng = np.random.default_rng(3)
    patients, labels = [], []
    for p in range(90):
        cls = p % 3
        for _ in range(1 + rng.integers(0, 3)):
            patients.append(f"p{p}")
            labels.append(cls)
    labels = np.array(labels)
    folds = patient_folds(labels, patients, 5, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(labels)))
    owner = {}
    for k, fold in enumerate(folds):
        for i in fold:
            assert owner.setdefault(patients[i], k) == k
    for cls in range(3):
        share = [np.sum(labels[f] == cls) for f in folds]
        assert max(share) - min(share) <= 3  # at most one patient's films (<= 3) apart
    assert patient_folds(labels, patients, 5, seed=1)[2].tolist() == folds[2].tolist()  # deterministic


# -- metrics and calibration ----------------------------------------------------------------------------------------
def test_roc_auc_hand_computed():
    # positives 0.35, 0.8 against negatives 0.1, 0.4: 3 of 4 pairs ranked right
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert np.isnan(roc_auc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_expected_calibration_error_hand_computed():
    p = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.6, 0.4, 0.0], [0.4, 0.6, 0.0]])
    y = np.array([0, 1, 0, 1])
    # bin 0.9: accuracy 0.5 vs confidence 0.9 (half the images); bin 0.6: accuracy 1 vs 0.6 (other half)
    assert expected_calibration_error(p, y) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)


def test_classification_report_on_a_known_confusion():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    predicted = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 0])
    p = np.full((10, 3), 0.1)
    p[np.arange(10), predicted] = 0.8
    p[9] = [0.8, 0.15, 0.05]  # the viral film called normal leans bacterial between the two pneumonias
    r = classification_report(p, y)
    assert r["accuracy"] == pytest.approx(7 / 10)
    assert r["sensitivity"] == pytest.approx({"normal": 3 / 4, "bacterial": 2 / 3, "viral": 2 / 3})
    assert r["confusion"]["counts"] == [[3, 1, 0], [0, 2, 1], [1, 0, 2]]
    binary = r["normal_vs_pneumonia"]
    assert binary["accuracy"] == pytest.approx(8 / 10)  # one normal called bacterial, one viral called normal
    assert binary["sensitivity"] == pytest.approx(5 / 6) and binary["specificity"] == pytest.approx(3 / 4)
    assert r["bacterial_vs_viral"]["accuracy"] == pytest.approx(4 / 6)  # films 6 and 9 of the six pneumonias wrong


def test_fit_temperature_recovers_the_generating_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(6000, 3))
    true_p = softmax(logits, 2.5)
    labels = np.array([rng.choice(3, p=row) for row in true_p])
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(2.5, rel=0.08)
    assert expected_calibration_error(softmax(logits, t), labels) < expected_calibration_error(softmax(logits), labels)


# -- preprocessing ----------------------------------------------------------------------------------------------------
def test_window_and_model_input_ignore_exposure_and_shape():
    rng = np.random.default_rng(1)
    base = rng.random((300, 240)).astype(np.float32)
    a = model_input(Image.from_array(base), 64)
    b = model_input(Image.from_array(base * 0.3 + 0.5), 64)  # other exposure: same input
    assert a.shape == (64, 64) and np.allclose(a, b, atol=1e-5)
    unit = window_to_unit(np.arange(1000, dtype=np.float32))
    assert unit.min() == 0.0 and unit.max() == 1.0 and unit[500] == pytest.approx(0.5, abs=0.01)
    z = standardize(torch.rand(2, 1, 8, 8))
    assert torch.allclose(z.mean(dim=(-2, -1)), torch.zeros(2, 1), atol=1e-5)


# -- plausibility ------------------------------------------------------------------------------------------------------
def chest_like(rows=200, cols=180) -> np.ndarray:
    """A crude frontal chest film: bright body, two dark lung fields, bright mediastinum between them."""
    y, x = np.mgrid[0:rows, 0:cols] / np.array([rows, cols])[:, None, None]
    img = 0.75 - 0.1 * y
    for cx in (0.3, 0.7):
        img = np.where(((x - cx) / 0.15) ** 2 + ((y - 0.45) / 0.3) ** 2 < 1, 0.25, img)
    return img.astype(np.float32)


def test_layout_correlation_tells_chest_from_inverted_and_ct_like():
    reference = plausibility.coarse_layout(chest_like())
    assert plausibility.layout_correlation(chest_like(240, 200), reference) > 0.9
    assert plausibility.layout_correlation(1 - chest_like(), reference) < -0.9
    y, x = np.mgrid[-1:1:200j, -1:1:200j]
    axial = np.where(x ** 2 / 0.8 + y ** 2 / 0.45 < 1, 0.6, 0.0).astype(np.float32)  # body ellipse on black air
    assert plausibility.layout_correlation(axial, reference) < plausibility.MIN_LAYOUT_CORRELATION


@pytest.mark.parametrize("array, message", [
    (np.full((200, 200), 0.5, np.float32), "blank or almost uniform"),
    (chest_like(100, 400), "width/height 4.00"),
    ((np.indices((200, 200)).sum(axis=0) % 2).astype(np.float32), "pure black or white"),
])
def test_check_pixels_refuses(array, message):
    with pytest.raises(InputError, match=message):
        plausibility.check_pixels(Image.from_array(array), "x.png")


def test_check_layout_messages():
    reference = plausibility.coarse_layout(chest_like())
    with pytest.raises(InputError, match="look inverted"):
        plausibility.check_layout(Image.from_array(1 - chest_like()), reference, "neg.png")
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="does not look like a frontal chest radiograph"):
        plausibility.check_layout(Image.from_array(rng.random((200, 200)).astype(np.float32)), reference, "n.png")
    assert plausibility.check_layout(Image.from_array(chest_like()), reference, "ok.png") > 0.9


def test_colour_pictures_are_refused_grey_rgb_passes(tmp_path):
    grey = (chest_like() * 255).astype(np.uint8)
    PILImage.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "grey_rgb.jpg")
    plausibility.check_colour(tmp_path / "grey_rgb.jpg")
    colour = np.stack([grey, np.roll(grey, 40, axis=1), 255 - grey], axis=-1)
    PILImage.fromarray(colour).save(tmp_path / "photo.png")
    with pytest.raises(InputError, match="colour picture"):
        plausibility.check_colour(tmp_path / "photo.png")


# -- weights files -----------------------------------------------------------------------------------------------------
def test_weights_file_round_trip_infers_the_layout(tmp_path):
    torch.manual_seed(0)
    net = build_network(NetworkConfig(input_size=64, widths=(8, 16, 16, 32), blocks=(1, 2, 1, 1)))
    net.temperature.fill_(1.7)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    assert config_from_state(net.state_dict(), 64).blocks == (1, 2, 1, 1)
    loaded = load_weights_file(tmp_path / "w.pt", input_size=64)
    x = torch.randn(2, 1, 64, 64)
    assert torch.allclose(loaded(x), net.eval()(x)) and float(loaded.temperature) == pytest.approx(1.7)
    (tmp_path / "junk.pt").write_bytes(b"not torch")
    with pytest.raises(InputError, match="cannot be loaded"):
        load_weights_file(tmp_path / "junk.pt")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not an xray-resnet"):
        load_weights_file(tmp_path / "other.pt")


def test_initial_weights_load_matching_tensors_only(tmp_path):
    donor = build_network(TINY)
    state = {k: v for k, v in donor.state_dict().items() if k.startswith("backbone.")}
    state["head.weight"] = torch.zeros(5, 32)  # another head: shape differs, skipped
    torch.save(state, tmp_path / "pre.pt")
    net = build_network(TINY)
    counts = load_initial_weights(net, tmp_path / "pre.pt")
    assert counts["skipped"] == 1 and counts["loaded"] == len(state) - 1
    assert torch.equal(net.backbone.conv1.weight, donor.backbone.conv1.weight)


# -- Grad-CAM ----------------------------------------------------------------------------------------------------------
def blob_images(n: int, rng, size: int = 128) -> tuple:
    """Noise images with one disc in a random quadrant (returned): plain (class 0) or checkered (class 1), both
    of the same mean brightness, so only the disc itself tells the classes apart."""
    images = rng.normal(0.4, 0.05, size=(n, size, size)).astype(np.float32)
    labels = rng.integers(0, 2, size=n)
    quadrants = rng.integers(0, 4, size=n)
    yy, xx = np.mgrid[0:size, 0:size]
    checker = ((yy // 3 + xx // 3) % 2).astype(np.float32)
    half = size // 2
    for image, label, quadrant in zip(images, labels, quadrants):
        cy = half * (quadrant // 2) + rng.integers(half // 4, 3 * half // 4)
        cx = half * (quadrant % 2) + rng.integers(half // 4, 3 * half // 4)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < (size / 10) ** 2
        image[disc] = (0.5 + 0.6 * checker[disc]) if label else 0.8
    return images, labels, quadrants


def test_grad_cam_points_at_the_evidence():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = XrayNet(NetworkConfig(input_size=128, widths=(8, 16, 16, 32), dropout=0.0), n_classes=2)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(30):
        x, y, _ = blob_images(16, rng)
        loss = torch.nn.functional.cross_entropy(net(standardize(torch.from_numpy(x)[:, None])), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    x, y, quadrants = blob_images(24, np.random.default_rng(5))
    hits = 0
    for image, label, quadrant in zip(x, y, quadrants):
        heat = grad_cam(net, standardize(torch.from_numpy(image)[None, None]), int(label))
        assert heat.shape == (128, 128) and 0.0 <= heat.min() and heat.max() == pytest.approx(1.0)
        hits += int(np.argmax(heat.reshape(2, 64, 2, 64).sum(axis=(1, 3)).ravel()) == quadrant)
    assert hits >= 15  # the disc's quadrant is the hottest in most films (chance: 6 of 24)


def test_overlay_keeps_plain_radiograph_where_there_is_no_heat():
    grey = chest_like()
    heat = np.zeros_like(grey)
    heat[50:80, 40:70] = 1.0
    rgb = overlay_rgb(grey, heat)
    assert rgb.shape == grey.shape + (3,) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[0, 0], np.full(3, round(grey[0, 0] * 255)))
    assert rgb[60, 50, 0] != rgb[60, 50, 2]  # coloured where hot


# -- a short training run on synthetic radiographs ------------------------------------------------------------------
def test_fit_classifier_calibrates_and_stores_references(tmp_path):
    from lungai.xray.training import TrainSettings, fit_classifier, predict_probabilities

    rng = np.random.default_rng(2)
    images = np.stack([window_to_unit(chest_like() + rng.normal(0, 0.05, chest_like().shape)) for _ in range(24)])
    images = np.stack([model_input(Image.from_array(i), 64) for i in images])
    labels = np.arange(24) % 3
    for image, label in zip(images, labels):  # class signal: brightness of the lower lung fields
        image[36:52] += 0.15 * label
    data = RadiographSet(images, labels, [f"p{i}" for i in range(24)], [f"f{i}" for i in range(24)])
    settings = TrainSettings(epochs=3, patience=3, batch_size=8, network=TINY)
    net, result = fit_classifier(data.subset(range(18)), data.subset(range(18, 24)), settings,
                                 checkpoint_dir=tmp_path / "ckpt")
    assert result.epochs_run == 3 and (tmp_path / "ckpt" / "best.pt").is_file()
    assert float(net.temperature) > 0 and np.isfinite(float(net.feature_limit))
    assert float(net.layout.abs().sum()) > 0
    p = predict_probabilities(net, images)
    assert p.shape == (24, 3) and np.allclose(p.sum(axis=1), 1.0)


def test_volume_files_one_slice_accepted_ct_volume_refused(tmp_path):
    from lungai.io import write_image
    from lungai.xray.classifier import load_chest_radiograph

    film = chest_like() * 3000 - 1000  # any value range: scaled to 0..1 on reading
    write_image(Image.from_array(film[None], spacing=(0.2, 0.3, 1.0)), tmp_path / "film.nrrd")
    image = load_chest_radiograph(tmp_path / "film.nrrd")
    assert image.ndim == 2 and image.spacing == (0.2, 0.3)
    assert np.allclose(image.array, (film - film.min()) / (film.max() - film.min()), atol=1e-6)
    write_image(Image.from_array(np.stack([film] * 5)), tmp_path / "ct.nii.gz")
    with pytest.raises(InputError, match="3D volume with 5 slices"):
        load_chest_radiograph(tmp_path / "ct.nii.gz")
