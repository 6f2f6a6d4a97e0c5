"""The labelled radiograph folder (Kermany et al. layout: ``labels.csv`` with file, label, subtype) and
patient-grouped, class-stratified folds for cross-validation."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from lungai.errors import InputError
from lungai.io import read_xray
from lungai.progress import Progress, ensure
from lungai.xray.classes import CLASS_NAMES, class_index
from lungai.xray.preprocess import model_input

_PATIENT_PATTERNS = (re.compile(r"^(person\d+)_"), re.compile(r"^((?:NORMAL2-)?IM-\d+)-"))


def patient_id(file_name: str) -> str:
    """Patient key of a Kermany file name (``person12_virus_3.jpeg`` -> ``person12``, ``IM-0011-0001-0001``
    -> ``IM-0011``), so that no patient's images land on both sides of a split; else the file stem."""
    name = Path(file_name).name
    for pattern in _PATIENT_PATTERNS:
        match = pattern.match(name)
        if match:
            return match.group(1)
    return Path(name).stem


@dataclass
class RadiographSet:
    """Radiographs resampled to the model size, with class labels and patient keys."""

    images: np.ndarray  # (N, size, size) float32 in 0..1
    labels: np.ndarray  # (N,) int64 class indices (see CLASS_NAMES)
    patients: List[str]
    files: List[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: Sequence[int]) -> "RadiographSet":
        index = np.asarray(index, dtype=int)
        return RadiographSet(self.images[index], self.labels[index], [self.patients[i] for i in index],
                             [self.files[i] for i in index])

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(CLASS_NAMES))


def read_labels(folder: Path) -> List[Tuple[str, int]]:
    """``(relative file, class index)`` rows of ``folder/labels.csv``."""
    table = folder / "labels.csv"
    if not table.is_file():
        raise InputError(table, "labels.csv is missing: the radiograph folder needs columns file,label,subtype")
    rows = []
    with open(table, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", "subtype"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(table, f"missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            try:
                rows.append((row["file"], class_index(row["subtype"])))
            except ValueError as exc:
                raise InputError(table, f"line {line}: {exc}") from None
    if not rows:
        raise InputError(table, "lists no radiographs")
    return rows


def load_radiograph_folder(folder: Path, size: int, progress: Optional[Progress] = None) -> RadiographSet:
    """Read every radiograph listed in ``folder/labels.csv`` and resample it to ``size`` x ``size``."""
    progress = ensure(progress)
    folder = Path(folder)
    rows = read_labels(folder)
    images = np.empty((len(rows), size, size), dtype=np.float32)
    for n, (name, _) in enumerate(rows):
        images[n] = model_input(read_xray(folder / name), size)
        progress.update((n + 1) / len(rows), f"read {n + 1}/{len(rows)} radiographs")
    return RadiographSet(images, np.array([c for _, c in rows], dtype=np.int64),
                         [patient_id(name) for name, _ in rows], [name for name, _ in rows])


def patient_folds(labels: np.ndarray, patients: Sequence[str], k: int, seed: int = 0) -> List[np.ndarray]:
    """Split sample indices into ``k`` folds keeping each patient in one fold and class proportions even.

    Patients (labelled by their most frequent class) are shuffled, then dealt largest first to the fold that is
    furthest below its share of that class.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    by_patient: dict = {}
    for index, patient in enumerate(patients):
        by_patient.setdefault(patient, []).append(index)
    keys = list(by_patient)
    rng.shuffle(keys)
    keys.sort(key=lambda p: -len(by_patient[p]))
    n_classes = int(labels.max()) + 1
    fold_counts = np.zeros((k, n_classes))
    folds: List[List[int]] = [[] for _ in range(k)]
    for patient in keys:
        members = by_patient[patient]
        cls = int(np.bincount(labels[members], minlength=n_classes).argmax())
        target = int(np.lexsort((fold_counts.sum(axis=1), fold_counts[:, cls]))[0])
        folds[target].extend(members)
        np.add.at(fold_counts[target], labels[members], 1)
    return [np.array(sorted(f), dtype=int) for f in folds]
