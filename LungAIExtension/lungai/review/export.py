"""Export approved cases as an nnU-Net v2 / Medical Segmentation Decathlon style data set."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from lungai.errors import LungAIError
from lungai.io import write_json
from lungai.io.atomic import atomic_folder
from lungai.models.datasets import write_dataset_json, write_splits


def _dataset_version(entries: List[Dict[str, Any]]) -> str:
    """A content hash of which case versions went in: the same approvals give the same data set version."""
    text = json.dumps(sorted((e["case"], e["version_sha256"]) for e in entries))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def export_nnunet(store, out_dir: Union[str, Path], dataset_id: int = 501, name: Optional[str] = None,
                  val_fraction: float = 0.2, seed: int = 0, folds: int = 5) -> Dict[str, Any]:
    """Write approved cases as ``Dataset<ID>_<Name>/{imagesTr,labelsTr,dataset.json,splits_final.json}``.

    Images are ``<case>_0000.nii.gz`` (channel 0 = CT), labels ``<case>.nii.gz``; ``dataset.json`` carries
    ``channel_names``, ``labels`` (background 0 first), ``numTraining`` and ``file_ending`` as nnU-Net v2 needs.
    ``lungai_export.json`` records the data set version, split and exactly which case version went in.
    The folder is built beside its target and renamed into place at the end.
    """
    if not 1 <= dataset_id <= 999:
        raise ValueError("nnU-Net dataset ids are 1..999")
    records = [r for r in store.cases() if r.status == "approved" and r.approved_version is not None]
    if not records:
        raise LungAIError(f"{store.folder}: no approved cases to export")
    task_name = "".join(ch for ch in (name or f"LungAI{store.task.title()}") if ch.isalnum())
    final = Path(out_dir) / f"Dataset{dataset_id:03d}_{task_name}"
    with atomic_folder(final) as staging:
        meta = _write_export(store, records, staging, task_name, val_fraction, seed, folds)
    return {"folder": str(final), **meta}


def _write_export(store, records, staging: Path, task_name: str, val_fraction: float, seed: int,
                  folds: int) -> Dict[str, Any]:
    """Fill ``staging`` with the export of ``records``; returns what ``lungai_export.json`` records."""
    (staging / "imagesTr").mkdir()
    (staging / "labelsTr").mkdir()
    entries = []
    for record in records:
        version = record.approved_version
        shutil.copyfile(store.case_dir(record.id) / record.image, staging / "imagesTr" / f"{record.id}_0000.nii.gz")
        shutil.copyfile(store.case_dir(record.id) / version.file, staging / "labelsTr" / f"{record.id}.nii.gz")
        entries.append({"case": record.id, "version": version.number, "version_sha256": version.sha256,
                        "annotator": version.annotator, "approved_by": record.approvals[-1]["reviewer"]})
    cases = sorted(e["case"] for e in entries)
    write_dataset_json(staging, {0: "background", **store.labels}, len(cases), task_name,
                       description=store.meta.get("description", ""), licence="as the source images",
                       extra={"reference": "LungAI review store export"})
    write_splits(staging, cases, folds, seed)
    shuffled = cases[:]
    random.Random(seed).shuffle(shuffled)
    n_val = max(1, int(round(val_fraction * len(shuffled)))) if len(shuffled) > 1 else 0
    meta = {"dataset_version": _dataset_version(entries), "store": str(store.folder), "task": store.task,
            "cases": entries,
            "split": {"val": sorted(shuffled[:n_val]), "train": sorted(shuffled[n_val:]), "seed": seed}}
    write_json(meta, staging / "lungai_export.json")
    return meta
