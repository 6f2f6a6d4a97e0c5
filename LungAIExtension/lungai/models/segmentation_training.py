"""Training any registry segmentation model (2D or 3D) from nnU-Net data set folders with :class:`Trainer`.

Cases are preprocessed exactly as :func:`lungai.models.run_inference` does (orientation, spacing, intensity
normalisation), kept in memory at the model's grid, and sampled as random patches centred on a random class's
voxel (so small structures such as airways or consolidation are seen) or anywhere. A 2D model trained on 3D
cases learns from their axial slices. Validation runs sliding-window inference on whole validation cases
(slices) and scores the mean foreground Dice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from lungai.errors import InputError, LungAIError
from lungai.io import read_image
from lungai.models.datasets import DatasetCase, NnUNetDataset
from lungai.models.inference import build_network
from lungai.models.preprocess import preprocess
from lungai.models.registry import ModelEntry
from lungai.models.training import TrainConfig, Trainer, TrainResult, seed_everything
from lungai.progress import Progress, ensure

MAX_CLASS_POINTS = 20000


@dataclass
class PreparedCase:
    """A case on the model grid: normalised image and label map (2D slice or 3D volume)."""

    case_id: str
    image: np.ndarray
    label: np.ndarray


def prepare_cases(cases: Sequence[DatasetCase], entry: ModelEntry, *, seed: int = 0, background_slices: float = 0.5,
                  progress: Optional[Progress] = None) -> List[PreparedCase]:
    """Read and preprocess cases for ``entry``; for a 2D model, 3D cases become axial slices (all slices with a
    label, plus ``background_slices`` times as many without, chosen with ``seed``)."""
    progress = ensure(progress)
    rng = np.random.default_rng(seed)
    out: List[PreparedCase] = []
    for n, case in enumerate(cases):
        progress.update(n / max(len(cases), 1), f"preparing {case.case_id}")
        image = read_image(case.images[0], check="none")
        if case.label is None:
            raise InputError(case.images[0], f"case {case.case_id} has no label map to train on")
        label = read_image(case.label, check="none")
        if image.shape != label.shape or not np.allclose(image.spacing, label.spacing, atol=1e-3):
            raise InputError(case.label, f"label grid {label.shape} at {label.spacing} mm differs from the image's "
                                         f"{image.shape} at {image.spacing} mm")
        values = np.unique(label.array)
        unknown = set(values.astype(int).tolist()) - set(entry.labels)
        if unknown:
            raise InputError(case.label, f"holds label values {sorted(unknown)} that model {entry.name} does not "
                                         f"have (its labels: {entry.labels})")
        arr, lab = preprocess(image, entry, label)
        assert lab is not None
        if entry.spatial_dims == 3 or arr.ndim == 2:
            out.append(PreparedCase(case.case_id, arr, lab))
            continue
        labelled = [k for k in range(arr.shape[0]) if lab[k].any()]
        empty = [k for k in range(arr.shape[0]) if not lab[k].any()]
        n_empty = min(len(empty), int(round(background_slices * max(len(labelled), 1))))
        chosen = sorted(labelled + list(rng.choice(empty, n_empty, replace=False) if n_empty else []))
        out.extend(PreparedCase(f"{case.case_id}:{k}", arr[k], lab[k]) for k in chosen)
    progress.update(1.0, "cases ready")
    return out


def _pad_to(array: np.ndarray, size: Sequence[int], value: float) -> np.ndarray:
    pad = [(0, max(0, int(s) - n)) for n, s in zip(array.shape, size)]
    return np.pad(array, pad, constant_values=value) if any(p[1] for p in pad) else array


class PatchDataset(torch.utils.data.Dataset):
    """Random training patches, reproducible from ``(seed, epoch, index)``; ``set_epoch`` is called by Trainer."""

    def __init__(self, cases: Sequence[PreparedCase], patch: Sequence[int], samples_per_case: int = 4, *,
                 seed: int = 0, class_fraction: float = 0.7, flip_axes: Sequence[int] = (),
                 transpose_axes: Optional[Tuple[int, int]] = None, intensity_jitter: float = 0.0):
        if not cases:
            raise LungAIError("no training cases")
        self.patch = tuple(int(p) for p in patch)
        self.images = [_pad_to(c.image, self.patch, float(c.image.min())) for c in cases]
        self.labels = [_pad_to(c.label, self.patch, 0) for c in cases]
        self.samples_per_case, self.seed, self.epoch = samples_per_case, seed, 0
        self.class_fraction, self.flip_axes, self.jitter = class_fraction, tuple(flip_axes), intensity_jitter
        if transpose_axes is not None and self.patch[transpose_axes[0]] != self.patch[transpose_axes[1]]:
            raise ValueError("transposed axes need equal patch sizes")
        self.transpose_axes = transpose_axes
        self.class_points: List[Dict[int, np.ndarray]] = []
        rng = np.random.default_rng(seed)
        for lab in self.labels:
            points = {}
            for value in np.unique(lab):
                if value == 0:
                    continue
                where = np.argwhere(lab == value)
                if len(where) > MAX_CLASS_POINTS:
                    where = where[rng.choice(len(where), MAX_CLASS_POINTS, replace=False)]
                points[int(value)] = where
            self.class_points.append(points)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.images) * self.samples_per_case

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        case = index % len(self.images)
        image, label, points = self.images[case], self.labels[case], self.class_points[case]
        shape = np.asarray(image.shape)
        if points and rng.random() < self.class_fraction:
            chosen = points[list(points)[rng.integers(len(points))]]
            centre = chosen[rng.integers(len(chosen))]
        else:
            centre = np.array([rng.integers(s) for s in shape])
        patch = np.asarray(self.patch)
        start = np.clip(centre - patch // 2, 0, shape - patch)
        region = tuple(slice(int(a), int(a + p)) for a, p in zip(start, patch))
        x, y = image[region].copy(), label[region].copy()
        for axis in self.flip_axes:
            if rng.random() < 0.5:
                x, y = np.flip(x, axis), np.flip(y, axis)
        if self.transpose_axes is not None and rng.random() < 0.5:
            x, y = np.swapaxes(x, *self.transpose_axes), np.swapaxes(y, *self.transpose_axes)
        if self.jitter:
            x = x * (1 + rng.uniform(-self.jitter, self.jitter)) + rng.uniform(-self.jitter, self.jitter)
        return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None],
                torch.from_numpy(np.ascontiguousarray(y).astype(np.int64))[None])


class WholeCaseDataset(torch.utils.data.Dataset):
    """Whole prepared cases for validation (use batch size 1: cases differ in size)."""

    def __init__(self, cases: Sequence[PreparedCase]):
        self.cases = list(cases)

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        c = self.cases[index]
        return torch.from_numpy(c.image.astype(np.float32))[None], torch.from_numpy(c.label.astype(np.int64))[None]


def mean_foreground_dice(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Dice averaged over foreground classes present in prediction or truth, then over the batch.

    A class absent from both counts as no evidence (skipped); predicted where absent in the truth scores 0.
    """
    pred = logits.argmax(dim=1)
    truth = target[:, 0] if target.ndim == logits.ndim else target
    scores = []
    for b in range(pred.shape[0]):
        per_class = []
        for c in range(1, logits.shape[1]):
            p, t = pred[b] == c, truth[b] == c
            total = int(p.sum() + t.sum())
            if total:
                per_class.append(2.0 * float((p & t).sum()) / total)
        scores.append(float(np.mean(per_class)) if per_class else 1.0)
    return float(np.mean(scores))


def sliding_window_predictor(entry: ModelEntry, overlap: float = 0.25) -> Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]:
    """Validation predictor: sliding-window inference with the model's patch size."""
    from monai.inferers import sliding_window_inference

    roi = entry.patch_size_array

    def predict(network: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return sliding_window_inference(x, roi, 4, network, overlap=overlap, mode="gaussian")

    return predict


def train_segmentation(entry: ModelEntry, train_cases: Sequence[PreparedCase], val_cases: Sequence[PreparedCase],
                       config: TrainConfig, *, samples_per_case: int = 4, flip_axes: Sequence[int] = (),
                       transpose_axes: Optional[Tuple[int, int]] = None,
                       init_state: Optional[Dict[str, torch.Tensor]] = None, progress: Optional[Progress] = None,
                       log: Optional[Callable[[str], None]] = None) -> Tuple[torch.nn.Module, TrainResult]:
    """Fit the network of ``entry`` (from scratch, or from ``init_state`` to fine-tune) with Dice + CE loss."""
    from monai.losses import DiceCELoss

    if entry.output != "softmax" or entry.patch_size is None:
        raise LungAIError(f"{entry.id}: segmentation training needs a softmax model with a patch size")
    seed_everything(config.seed)
    network = build_network(entry)
    if init_state is not None:
        network.load_state_dict(init_state)
    train_ds = PatchDataset(train_cases, entry.patch_size_array, samples_per_case, seed=config.seed,
                            flip_axes=flip_axes, transpose_axes=transpose_axes, intensity_jitter=0.03)
    generator = torch.Generator().manual_seed(config.seed)
    train_loader = torch.utils.data.DataLoader(train_ds, batch_size=config.batch_size, shuffle=True,
                                               generator=generator, num_workers=0)
    val_loader = torch.utils.data.DataLoader(WholeCaseDataset(val_cases), batch_size=1, shuffle=False)
    loss = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False)
    trainer = Trainer(network, loss, mean_foreground_dice, config, progress,
                      predict_fn=sliding_window_predictor(entry), log=log)
    result = trainer.fit(train_loader, val_loader)
    return trainer.network, result


def dataset_description(datasets: Sequence[NnUNetDataset], train: Sequence[PreparedCase],
                        val: Sequence[PreparedCase], extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """What :func:`lungai.models.training.publish_model` records about the data."""
    description = {
        "name": " + ".join(d.name for d in datasets),
        "source": "; ".join(f"{d.folder} ({d.description or 'no description'})" for d in datasets),
        "cases_train": len({c.case_id.split(':')[0] for c in train}),
        "cases_val": len({c.case_id.split(':')[0] for c in val}),
        "samples_train": len(train), "samples_val": len(val),
        "licence": "; ".join(sorted({d.licence for d in datasets if d.licence})),
        "validation_cases": sorted({c.case_id.split(':')[0] for c in val})}
    versions = [_export_version(d.folder) for d in datasets]
    if any(versions):
        description["dataset_version"] = "; ".join(f"{d.name} {v}" for d, v in zip(datasets, versions) if v)
    description.update(extra or {})
    return description


def _export_version(folder: Path) -> Optional[str]:
    """The data set version a review-store export recorded (``lungai_export.json``), if any."""
    path = Path(folder) / "lungai_export.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("dataset_version")
