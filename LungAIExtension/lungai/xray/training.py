"""Training the radiograph classifier from scratch with the project's training engine.

One run: seeded network (optionally started from user-supplied weights), augmented training images,
class-balanced cross-entropy with label smoothing, AdamW with a cosine schedule, best epoch chosen by the
validation cross-entropy. Afterwards the network is calibrated (temperature on the validation images) and
given the references its plausibility checks use (training layout, embedding distribution).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from lungai.models.training import TrainConfig, Trainer, TrainResult, seed_everything
from lungai.progress import Progress, ensure
from lungai.xray.augment import training_augmentation
from lungai.xray.calibration import fit_temperature, softmax
from lungai.xray.classes import CLASS_NAMES
from lungai.xray.dataset import RadiographSet, patient_folds
from lungai.xray.evaluation import classification_report
from lungai.xray.network import NetworkConfig, XrayNet, build_network
from lungai.xray.plausibility import coarse_layout
from lungai.xray.preprocess import standardize
from lungai.xray.weights import load_initial_weights


@dataclass
class TrainSettings:
    """Hyper-parameters of one training run (recorded in the model card)."""

    epochs: int = 40
    patience: int = 40
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 1e-3
    label_smoothing: float = 0.05
    seed: int = 0
    threads: int = 1
    network: NetworkConfig = field(default_factory=NetworkConfig)

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out["network"] = self.network.to_dict()
        return out


class AugmentedRadiographs(torch.utils.data.Dataset):
    """``(1, S, S)`` standardised tensors and labels; augmented (re-seeded every epoch) when ``augment`` is on."""

    def __init__(self, data: RadiographSet, augment: bool = False, seed: int = 0):
        self.data, self.seed = data, seed
        self.transform = training_augmentation(data.images.shape[-1], seed) if augment else None

    def set_epoch(self, epoch: int) -> None:
        if self.transform is not None:
            self.transform.set_random_state(seed=self.seed * 100003 + epoch)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        image = torch.from_numpy(self.data.images[index][None].copy())
        if self.transform is not None:
            image = torch.as_tensor(self.transform(image)).float().clamp_(0.0, 1.0)
        return standardize(image), int(self.data.labels[index])


def class_weights(labels: np.ndarray) -> torch.Tensor:
    """Inverse class frequency weights, normalised to mean 1 (absent classes get weight 1)."""
    counts = np.bincount(labels, minlength=len(CLASS_NAMES)).astype(float)
    weights = np.where(counts > 0, counts.sum() / (len(counts) * np.maximum(counts, 1)), 1.0)
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def _loaders(train: RadiographSet, val: RadiographSet, settings: TrainSettings):
    train_loader = torch.utils.data.DataLoader(
        AugmentedRadiographs(train, augment=True, seed=settings.seed), batch_size=settings.batch_size,
        shuffle=True, drop_last=len(train) > settings.batch_size)
    val_loader = torch.utils.data.DataLoader(AugmentedRadiographs(val), batch_size=128, shuffle=False)
    return train_loader, val_loader


def fit_classifier(train: RadiographSet, val: RadiographSet, settings: TrainSettings = TrainSettings(),
                   progress: Optional[Progress] = None, *, checkpoint_dir: Optional[Path] = None,
                   initial_weights: Optional[Path] = None,
                   log: Optional[Callable[[str], None]] = None) -> Tuple[XrayNet, TrainResult]:
    """Train on ``train``, keep the epoch with the lowest validation cross-entropy, then calibrate on ``val``."""
    progress = ensure(progress)
    torch.set_num_threads(max(1, min(settings.threads, 2)))
    seed_everything(settings.seed)
    network = build_network(settings.network)
    if initial_weights is not None:
        loaded = load_initial_weights(network, initial_weights)
        if log:
            log(f"started from {initial_weights}: {loaded['loaded']} tensors loaded, {loaded['skipped']} skipped")
    weighted = torch.nn.CrossEntropyLoss(weight=class_weights(train.labels), label_smoothing=settings.label_smoothing)
    config = TrainConfig(max_epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.learning_rate,
                         seed=settings.seed, patience=settings.patience, checkpoint_dir=checkpoint_dir,
                         higher_is_better=False, metric_name="cross_entropy", weight_decay=settings.weight_decay,
                         scheduler="cosine", resume=checkpoint_dir is not None)
    trainer = Trainer(network, lambda logits, y: weighted(logits, y),
                      lambda logits, y: torch.nn.functional.cross_entropy(logits, y), config,
                      progress.span(0.0, 0.95), log=log)
    result = trainer.fit(*_loaders(train, val, settings))
    progress.update(0.97, "calibrating on the validation images")
    finalize(network, train, val)
    progress.update(1.0, "trained")
    return network.eval(), result


@torch.no_grad()
def embed(network: XrayNet, images: np.ndarray, batch_size: int = 64) -> Tuple[np.ndarray, np.ndarray]:
    """Raw (uncalibrated) logits ``(N, 3)`` and embeddings ``(N, C)`` of images ``(N, S, S)`` in 0..1."""
    network.eval()
    logits, features = [], []
    for start in range(0, len(images), batch_size):
        x = standardize(torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size][:, None])))
        f = network.features(x)
        features.append(f.numpy())
        logits.append(network.head(f).numpy())
    return np.concatenate(logits).astype(np.float64), np.concatenate(features).astype(np.float64)


def predict_probabilities(network: XrayNet, images: np.ndarray) -> np.ndarray:
    """Calibrated class probabilities ``(N, 3)``."""
    logits, _ = embed(network, images)
    return softmax(logits, float(network.temperature))


def finalize(network: XrayNet, train: RadiographSet, val: RadiographSet) -> None:
    """Store the calibration temperature and the plausibility references in the network's buffers."""
    val_logits, val_features = embed(network, val.images)
    _, train_features = embed(network, train.images)
    temperature = fit_temperature(val_logits, val.labels)
    mean = train_features.mean(axis=0)
    centred = train_features - mean
    covariance = centred.T @ centred / max(len(train_features) - 1, 1)
    # shrink towards the diagonal: there are fewer images than embedding dimensions
    shrunk = 0.5 * covariance + 0.5 * np.diag(np.diag(covariance)) + 1e-3 * np.eye(len(mean))
    precision = np.linalg.inv(shrunk)
    d = val_features - mean
    val_distance = np.sqrt(np.einsum("bi,ij,bj->b", d, precision, d))
    layout = np.mean([coarse_layout(image) for image in train.images], axis=0)
    layout = (layout - layout.mean()) / layout.std()
    with torch.no_grad():
        network.temperature.fill_(temperature)
        network.feature_mean.copy_(torch.from_numpy(mean).float())
        network.feature_precision.copy_(torch.from_numpy(precision).float())
        network.feature_limit.fill_(float(1.5 * np.max(val_distance)))
        network.layout.copy_(torch.from_numpy(layout).float())


def validation_split(data: RadiographSet, fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Patient-grouped, class-stratified ``(train, validation)`` indices with about ``fraction`` held out."""
    k = max(2, int(round(1.0 / fraction)))
    folds = patient_folds(data.labels, data.patients, k, seed)
    return np.setdiff1d(np.arange(len(data)), folds[0]), folds[0]


@dataclass
class CrossValidation:
    """Out-of-fold calibrated probabilities for every image and the figures computed from them."""

    probabilities: np.ndarray
    uncalibrated: np.ndarray
    fold_of: np.ndarray
    folds: List[Dict[str, Any]]
    report: Dict[str, Any]
    report_uncalibrated: Dict[str, Any]


def cross_validate(data: RadiographSet, k: int = 5, settings: TrainSettings = TrainSettings(),
                   val_fraction: float = 0.15, progress: Optional[Progress] = None,
                   log: Optional[Callable[[str], None]] = None) -> CrossValidation:
    """k-fold patient-grouped cross-validation of the whole recipe (training, epoch choice, calibration).

    Each fold's model is trained exactly as the shipped one: its training folds are split again into training
    and validation images (best epoch and temperature), and it never sees its test fold.
    """
    progress = ensure(progress)
    folds = patient_folds(data.labels, data.patients, k, settings.seed)
    probabilities = np.zeros((len(data), len(CLASS_NAMES)))
    uncalibrated = np.zeros_like(probabilities)
    fold_of = np.zeros(len(data), dtype=int)
    per_fold = []
    for n, test in enumerate(folds):
        rest = data.subset(np.setdiff1d(np.arange(len(data)), test))
        train_index, val_index = validation_split(rest, val_fraction, settings.seed + n + 1)
        network, result = fit_classifier(rest.subset(train_index), rest.subset(val_index), settings,
                                         progress.span(n / k, (n + 1) / k), log=log)
        logits, _ = embed(network, data.images[test])
        probabilities[test] = softmax(logits, float(network.temperature))
        uncalibrated[test] = softmax(logits)
        fold_of[test] = n
        report = classification_report(probabilities[test], data.labels[test])
        per_fold.append({"fold": n, "test": len(test), "train": len(train_index), "validation": len(val_index),
                         "best_epoch": result.best_epoch, "seconds": result.seconds,
                         "temperature": round(float(network.temperature), 4), "accuracy": report["accuracy"],
                         "normal_vs_pneumonia_accuracy": report["normal_vs_pneumonia"]["accuracy"]})
        if log:
            log(f"fold {n + 1}/{k}: accuracy {report['accuracy']:.3f}, normal vs pneumonia "
                f"{report['normal_vs_pneumonia']['accuracy']:.3f}, best epoch {result.best_epoch}, "
                f"T {float(network.temperature):.2f}, {result.seconds:.0f} s")
    return CrossValidation(probabilities, uncalibrated, fold_of, per_fold,
                           classification_report(probabilities, data.labels),
                           classification_report(uncalibrated, data.labels))
