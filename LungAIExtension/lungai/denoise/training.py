"""Training the CNN denoiser on simulated low/normal-dose pairs with the project's :class:`Trainer`.

Pairs come from normal-dose CTs: real scans get a calibrated lower dose (:func:`lungai.denoise.dose.
simulate_low_dose`), phantoms are scanned twice with calibrated noise (normal and low dose) and bring their
lesion masks for the optional lesion-aware loss (squared error weighted ``1 + lesion_weight`` inside lesions).
The target is the normal-dose image, noise included, as with real pairs. Patches are drawn from the body,
flipped and rotated at random; validation is the PSNR of whole slices in the [-160, 240] HU window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lungai.denoise import dose
from lungai.denoise.network import ARCHITECTURE, RedCnnShuffle
from lungai.denoise.objective import HU_SCALE, weighted_mse, window_psnr
from lungai.image import Image
from lungai.progress import Progress, ensure

#: HU -> network units (and back): water 0, air -1.
NORMALIZATION = {"type": "scale", "scale": HU_SCALE, "offset": 0.0}
DEFAULT_PARAMS = {"features": 32, "depth": 7, "shuffle": 4, "kernel_size": 3}


@dataclass
class PairSet:
    """Axial slices: low-dose inputs, normal-dose targets (HU) and per-pixel loss weights, all [n, j, i]."""

    inputs: List[np.ndarray] = field(default_factory=list)
    targets: List[np.ndarray] = field(default_factory=list)
    weights: List[np.ndarray] = field(default_factory=list)
    sources: List[str] = field(default_factory=list)

    def add(self, low: np.ndarray, normal: np.ndarray, weight: Optional[np.ndarray], source: str) -> None:
        for k in range(low.shape[0]):
            self.inputs.append(low[k].astype(np.float32))
            self.targets.append(normal[k].astype(np.float32))
            self.weights.append(np.ones_like(low[k], np.float32) if weight is None else weight[k].astype(np.float32))
            self.sources.append(source)

    def __len__(self) -> int:
        return len(self.inputs)


def real_pairs(image: Image, doses: Sequence[float], source: str, seed: int = 0, kernel: str = "auto",
               pairs: Optional[PairSet] = None) -> PairSet:
    """Simulated lower-dose versions of a real normal-dose CT (flux calibrated once, reused for every dose)."""
    pairs = pairs if pairs is not None else PairSet()
    image = dose._with_thickness(image)
    group = dose.kernel_group_of(image) if kernel == "auto" else kernel
    cal = dose.CALIBRATIONS[group]
    flux = dose.estimate_flux(image, cal, seed)
    for n, d in enumerate(doses):
        low = dose.simulate_low_dose(image, d, seed=seed + 101 * (n + 1), calibration=cal, flux=flux)
        pairs.add(low.array, image.array, None, f"{source} ({group}, dose {d:g})")
    return pairs


def phantom_pairs(clean: Image, lesion_mask: Optional[np.ndarray], doses: Sequence[float], group: str,
                  lesion_weight: float, source: str, seed: int = 0, pairs: Optional[PairSet] = None) -> PairSet:
    """A noise-free phantom scanned at normal dose (target) and at each of ``doses`` (inputs)."""
    pairs = pairs if pairs is not None else PairSet()
    normal = dose.add_calibrated_noise(clean, 1.0, group, seed=seed)
    weight = None if lesion_mask is None else 1.0 + lesion_weight * np.asarray(lesion_mask, np.float32)
    for n, d in enumerate(doses):
        low = dose.add_calibrated_noise(clean, d, group, seed=seed + 101 * (n + 1))
        pairs.add(low.array, normal.array, weight, f"{source} ({group}, dose {d:g})")
    return pairs


class PatchDataset(Dataset):
    """Random body patches of a :class:`PairSet`, flipped/rotated; reproducible per epoch (``set_epoch``)."""

    def __init__(self, pairs: PairSet, patch: int = 80, length: int = 1024, seed: int = 0):
        if len(pairs) == 0:
            raise ValueError("no training pairs")
        self.pairs, self.patch, self.length, self.seed = pairs, patch, length, seed
        self.epoch = 0
        self.body = [np.flatnonzero(t.ravel() > -700) for t in pairs.targets]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        k = int(rng.integers(len(self.pairs)))
        x, y, w = self.pairs.inputs[k], self.pairs.targets[k], self.pairs.weights[k]
        h, wd = x.shape
        p = self.patch
        body = self.body[k]
        centre = body[int(rng.integers(len(body)))] if len(body) else int(rng.integers(h * wd))
        j = int(np.clip(centre // wd - p // 2, 0, h - p))
        i = int(np.clip(centre % wd - p // 2, 0, wd - p))
        stack = np.stack([x[j:j + p, i:i + p], y[j:j + p, i:i + p], w[j:j + p, i:i + p]])
        stack = np.rot90(stack, int(rng.integers(4)), axes=(1, 2))
        if rng.uniform() < 0.5:
            stack = stack[:, :, ::-1]
        stack = np.ascontiguousarray(stack)
        inputs = torch.from_numpy(stack[0:1] * HU_SCALE)
        targets = torch.from_numpy(np.stack([stack[1] * HU_SCALE, stack[2]]))  # target and its loss weight
        return inputs, targets


class SliceDataset(Dataset):
    """Whole slices for validation (cropped to a multiple of 4)."""

    def __init__(self, pairs: PairSet, multiple: int = 4):
        self.pairs, self.multiple = pairs, multiple

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        x, y = self.pairs.inputs[index], self.pairs.targets[index]
        h, w = (s - s % self.multiple for s in x.shape)
        return (torch.from_numpy(x[None, :h, :w] * HU_SCALE),
                torch.from_numpy(np.stack([y[:h, :w] * HU_SCALE, np.ones((h, w), np.float32)])))


def _slice_psnr(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Validation metric of the Trainer: [-160, 240] HU window PSNR per slice (targets carry a weight channel)."""
    return window_psnr(outputs, targets[:, 0:1])


def build_network(params: Optional[Dict] = None) -> RedCnnShuffle:
    return RedCnnShuffle(2, 1, 1, **{**DEFAULT_PARAMS, **(params or {})})


def train_denoiser(train: PairSet, val: PairSet, checkpoint_dir: Optional[str] = None, *, epochs: int = 20,
                   steps_per_epoch: int = 50, batch_size: int = 8, patch: int = 80, lr: float = 1e-3, seed: int = 0,
                   params: Optional[Dict] = None, device: str = "cpu", progress: Optional[Progress] = None,
                   init_state: Optional[Dict] = None, log=print):
    """Fit the network with :class:`lungai.models.training.Trainer`; returns ``(network, TrainResult)``.

    ``init_state``: weights to start from (a warm restart, e.g. continuing an earlier run at a lower rate).
    """
    from lungai.models.training import TrainConfig, Trainer, seed_everything

    seed_everything(seed)
    net = build_network(params)
    if init_state is not None:
        net.load_state_dict(init_state)
    config = TrainConfig(max_epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, patience=epochs,
                         checkpoint_dir=checkpoint_dir, device=device, higher_is_better=True,
                         metric_name="psnr_soft_tissue_db", scheduler="cosine", grad_clip=1.0,
                         steps_per_epoch=steps_per_epoch, weight_decay=0.0)
    train_loader = DataLoader(PatchDataset(train, patch, steps_per_epoch * batch_size, seed), batch_size=batch_size,
                              shuffle=False, num_workers=0)
    val_loader = DataLoader(SliceDataset(val), batch_size=1, shuffle=False)
    trainer = Trainer(net, weighted_mse, _slice_psnr, config, ensure(progress), log=log)
    result = trainer.fit(train_loader, val_loader)
    return trainer.network, result


def registry_template(params: Optional[Dict] = None, description: str = "") -> Dict:
    """Registry fields of the denoiser (everything but version, weights, card)."""
    return {"name": "denoise-redcnn", "task": "denoise",
            "description": description or "RED-CNN-style residual encoder-decoder (pixel-unshuffle x4) for "
                                          "low-dose chest CT, slice-wise, HU in and out",
            "architecture": {"name": ARCHITECTURE, "params": {**DEFAULT_PARAMS, **(params or {})}},
            "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "spacing": None, "patch_size": None,
            "orientation": "LPS", "normalization": NORMALIZATION, "output": "regression", "labels": {},
            "inference": {"sw_batch_size": 8}, "license": "Apache-2.0"}
