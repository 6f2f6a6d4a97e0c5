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
    staging = final.with_name(f".{final.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "imagesTr").mkdir(parents=True)
    (staging / "labelsTr").mkdir()
    entries = []
    for record in records:
        version = record.approved_version
        shutil.copyfile(store.case_dir(record.id) / record.image, staging / "imagesTr" / f"{record.id}_0000.nii.gz")
        shutil.copyfile(store.case_dir(record.id) / version.file, staging / "labelsTr" / f"{record.id}.nii.gz")
        entries.append({"case": record.id, "version": version.number, "version_sha256": version.sha256,
                        "annotator": version.annotator, "approved_by": record.approvals[-1]["reviewer"]})
    cases = sorted(e["case"] for e in entries)
    labels = {"background": 0}
    labels.update({key: value for value, key in sorted(store.labels.items())})
    write_json({"channel_names": {"0": "CT"}, "labels": labels, "numTraining": len(cases),
                "file_ending": ".nii.gz", "name": task_name, "description": store.meta.get("description", ""),
                "reference": "LungAI review store export", "licence": "as the source images"},
               staging / "dataset.json")
    rng = random.Random(seed)
    shuffled = cases[:]
    rng.shuffle(shuffled)
    k = max(1, min(folds, len(shuffled)))
    splits = [{"train": sorted(c for j, c in enumerate(shuffled) if j % k != f),
               "val": sorted(c for j, c in enumerate(shuffled) if j % k == f)} for f in range(k)]
    write_json(splits, staging / "splits_final.json")
    n_val = max(1, int(round(val_fraction * len(shuffled)))) if len(shuffled) > 1 else 0
    version = _dataset_version(entries)
    meta = {"dataset_version": version, "store": str(store.folder), "task": store.task, "cases": entries,
            "split": {"val": sorted(shuffled[:n_val]), "train": sorted(shuffled[n_val:]), "seed": seed}}
    write_json(meta, staging / "lungai_export.json")
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old)
    else:
        staging.rename(final)
    return {"folder": str(final), **meta}



