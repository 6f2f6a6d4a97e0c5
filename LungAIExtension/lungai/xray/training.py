"""Training the radiograph classifier from scratch: augmented data, class-balanced loss, cosine schedule."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional

import numpy as np
import torch

from lungai.progress import Progress, ensure
from lungai.xray.augment import training_augmentation
from lungai.xray.classes import CLASS_NAMES
from lungai.xray.dataset import RadiographSet
from lungai.xray.network import NetworkConfig, XrayNet, build_network
from lungai.xray.preprocess import standardize


@dataclass
class TrainSettings:
    """Hyper-parameters of one training run (all recorded in the checkpoint and model card)."""

    epochs: int = 60
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-3
    label_smoothing: float = 0.05
    seed: int = 0
    network: NetworkConfig = field(default_factory=NetworkConfig)

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out["network"] = self.network.to_dict()
        return out


class AugmentedRadiographs(torch.utils.data.Dataset):
    """``(1, H, W)`` standardised tensors and labels, randomly augmented when ``augment`` is given."""

    def __init__(self, data: RadiographSet, augment=None):
        self.data, self.augment = data, augment

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        image = torch.from_numpy(self.data.images[index][None].copy())
        if self.augment is not None:
            image = torch.as_tensor(self.augment(image)).float().clamp_(0.0, 1.0)
        return standardize(image), int(self.data.labels[index])


def class_weights(labels: np.ndarray) -> torch.Tensor:
    """Inverse class frequency weights, normalised to mean 1 (absent classes get weight 1)."""
    counts = np.bincount(labels, minlength=len(CLASS_NAMES)).astype(float)
    weights = np.where(counts > 0, counts.sum() / (len(counts) * np.maximum(counts, 1)), 1.0)
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def train_classifier(data: RadiographSet, settings: TrainSettings = TrainSettings(),
                     progress: Optional[Progress] = None) -> XrayNet:
    """Train a fresh network on ``data`` for ``settings.epochs`` epochs and return it in eval mode."""
    progress = ensure(progress)
    torch.manual_seed(settings.seed)
    network = build_network(settings.network)
    loader = torch.utils.data.DataLoader(
        AugmentedRadiographs(data, training_augmentation(settings.network.input_size, settings.seed)),
        batch_size=settings.batch_size, shuffle=True, drop_last=len(data) > settings.batch_size,
        generator=torch.Generator().manual_seed(settings.seed))
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weights(data.labels), label_smoothing=settings.label_smoothing)
    optimizer = torch.optim.AdamW(network.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.learning_rate,
                                                   total_steps=settings.epochs * len(loader), pct_start=0.15)
    for epoch in range(settings.epochs):
        network.train()
        running, seen = 0.0, 0
        for images, labels in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(network(images), labels)
            loss.backward()
            optimizer.step()
            schedule.step()
            running += float(loss.detach()) * len(labels)
            seen += len(labels)
        progress.update((epoch + 1) / settings.epochs, f"epoch {epoch + 1}/{settings.epochs} loss {running / seen:.3f}")
    return network.eval()


@torch.no_grad()
def predict_logits(network: XrayNet, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Logits ``(N, 3)`` of radiographs ``(N, H, W)`` in 0..1 at the network's input size."""
    network.eval()
    out = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size][:, None]))
        out.append(network(standardize(batch)).numpy())
    return np.concatenate(out).astype(np.float64)
