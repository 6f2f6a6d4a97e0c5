"""Training data on disk: nnU-Net v2 / MSD data set folders, and the phantom-cohort converter.

An nnU-Net v2 folder holds ``imagesTr/<case>_0000.nii.gz`` (one file per channel), ``labelsTr/<case>.nii.gz`` and
``dataset.json`` (``channel_names``, ``labels`` name -> value, ``file_ending``); ``splits_final.json`` (a list of
``{"train": [...], "val": [...]}`` folds) is used when present. The MSD v1 form (``modality``, ``labels`` value ->
name, ``training`` list) is read too. The review loop's export and :func:`convert_phantom_cohort` write this
format, so both feed :mod:`lungai.models.segmentation_training`.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from lungai.errors import InputError
from lungai.io.atomic import atomic_folder
from lungai.io.writers import write_json
from lungai.labels import LESION_LABELS, LUNG_LABELS

PathLike = Union[str, Path]
COHORT_TARGETS = {"lungs": LUNG_LABELS, "lesion_class": LESION_LABELS}


@dataclass
class DatasetCase:
    """One training case: its channel image files and label map file."""

    case_id: str
    images: List[Path]
    label: Optional[Path]


@dataclass
class NnUNetDataset:
    """An nnU-Net v2 / MSD data set folder, read by :func:`read_nnunet_dataset`."""

    folder: Path
    name: str
    channel_names: Dict[int, str]
    labels: Dict[int, str]  # value -> name, background 0 included
    file_ending: str
    cases: List[DatasetCase]
    splits: Optional[List[Dict[str, List[str]]]] = None
    description: str = ""
    licence: str = ""
    meta: Dict[str, Any] = field(default_factory=dict)

    def case(self, case_id: str) -> DatasetCase:
        for c in self.cases:
            if c.case_id == case_id:
                return c
        raise KeyError(case_id)

    def split(self, fold: int = 0, val_fraction: float = 0.2, seed: int = 0) -> Tuple[List[DatasetCase], List[DatasetCase]]:
        """Training and validation cases: fold ``fold`` of ``splits_final.json``, else a seeded random split."""
        ids = [c.case_id for c in self.cases]
        if self.splits:
            if not 0 <= fold < len(self.splits):
                raise InputError(self.folder / "splits_final.json", f"has {len(self.splits)} folds, not fold {fold}")
            val = set(self.splits[fold]["val"])
            train = set(self.splits[fold]["train"])
        else:
            shuffled = sorted(ids)
            random.Random(seed).shuffle(shuffled)
            n_val = max(1, int(round(val_fraction * len(ids)))) if len(ids) > 1 else 0
            val, train = set(shuffled[:n_val]), set(shuffled[n_val:])
        return [c for c in self.cases if c.case_id in train], [c for c in self.cases if c.case_id in val]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"is not valid JSON ({exc})") from None


def _label_table(raw: Dict[str, Any], path: Path) -> Dict[int, str]:
    table: Dict[int, str] = {}
    for key, value in raw.items():
        if isinstance(value, int) and not isinstance(value, bool):  # nnU-Net v2: name -> value
            table[int(value)] = str(key)
        elif str(key).isdigit():  # MSD v1: "value" -> name
            table[int(key)] = str(value)
        else:
            raise InputError(path, f"label entry {key!r}: {value!r} is neither name -> int nor 'int' -> name "
                                   "(region-based nnU-Net labels are not supported)")
    if 0 not in table:
        raise InputError(path, "labels must include background with value 0")
    return dict(sorted(table.items()))


def read_nnunet_dataset(folder: PathLike) -> NnUNetDataset:
    """Read and check a data set folder; every problem names the file (missing label, missing channel...)."""
    folder = Path(folder)
    meta_path = folder / "dataset.json"
    if not meta_path.is_file():
        raise InputError(folder, "is not an nnU-Net data set: dataset.json is missing")
    meta = _read_json(meta_path)
    channels_raw = meta.get("channel_names") or meta.get("modality")
    if not channels_raw or "labels" not in meta:
        raise InputError(meta_path, "needs 'channel_names' (or 'modality') and 'labels'")
    channels = {int(k): str(v) for k, v in channels_raw.items()}
    labels = _label_table(meta["labels"], meta_path)
    ending = meta.get("file_ending", ".nii.gz")
    cases: List[DatasetCase] = []
    if "training" in meta and "channel_names" not in meta:  # MSD v1 list
        for item in meta["training"]:
            image, label = folder / item["image"], folder / item["label"]
            cases.append(DatasetCase(Path(item["image"]).name[: -len(ending)], [image], label))
    else:
        images_dir = folder / "imagesTr"
        if not images_dir.is_dir():
            raise InputError(folder, "has no imagesTr folder")
        suffix = f"_0000{ending}"
        for first in sorted(images_dir.glob(f"*{suffix}")):
            case_id = first.name[: -len(suffix)]
            images = [images_dir / f"{case_id}_{c:04d}{ending}" for c in sorted(channels)]
            label = folder / "labelsTr" / f"{case_id}{ending}"
            cases.append(DatasetCase(case_id, images, label))
    if not cases:
        raise InputError(folder, f"holds no training cases (imagesTr/<case>_0000{ending})")
    for case in cases:
        for path in case.images + ([case.label] if case.label else []):
            if not path.is_file():
                raise InputError(path, f"is missing (case {case.case_id} of {folder.name})")
    splits = None
    if (folder / "splits_final.json").is_file():
        splits = _read_json(folder / "splits_final.json")
        known = {c.case_id for c in cases}
        for fold in splits:
            unknown = (set(fold.get("train", [])) | set(fold.get("val", []))) - known
            if unknown:
                raise InputError(folder / "splits_final.json", f"names cases that are not in imagesTr: "
                                                               f"{sorted(unknown)[:5]}")
    return NnUNetDataset(folder, str(meta.get("name", folder.name)), channels, labels, ending, cases, splits,
                         str(meta.get("description", "")), str(meta.get("licence", meta.get("license", ""))), meta)


def write_dataset_json(folder: PathLike, labels: Dict[int, str], n_cases: int, name: str, *,
                       channel_names: Optional[Dict[int, str]] = None, description: str = "",
                       licence: str = "", extra: Optional[Dict[str, Any]] = None) -> Path:
    """nnU-Net v2 ``dataset.json`` (labels written name -> value, background first)."""
    data = {"channel_names": {str(k): v for k, v in (channel_names or {0: "CT"}).items()},
            "labels": {name_: int(value) for value, name_ in sorted(labels.items())},
            "numTraining": int(n_cases), "file_ending": ".nii.gz", "name": name, "description": description,
            "licence": licence}
    data.update(extra or {})
    return write_json(data, Path(folder) / "dataset.json")


def write_splits(folder: PathLike, case_ids: Sequence[str], folds: int = 5, seed: int = 0) -> Path:
    """``splits_final.json`` with ``folds`` seeded folds (each case validated exactly once)."""
    shuffled = sorted(case_ids)
    random.Random(seed).shuffle(shuffled)
    k = max(1, min(folds, len(shuffled)))
    splits = [{"train": sorted(c for j, c in enumerate(shuffled) if j % k != f),
               "val": sorted(c for j, c in enumerate(shuffled) if j % k == f)} for f in range(k)]
    return write_json(splits, Path(folder) / "splits_final.json")


def _cohort_cases(cohort: Path) -> List[Path]:
    return sorted(p for p in cohort.iterdir() if p.is_dir() and (p / "ct.nii.gz").is_file())


def convert_phantom_cohort(cohort_dir: PathLike, out_dir: PathLike, target: str = "lungs", *,
                           dataset_id: int = 900, name: Optional[str] = None, folds: int = 5,
                           seed: int = 0) -> Path:
    """Turn a phantom cohort (``<case>/ct.nii.gz``, ``<case>/truth/<target>.nii.gz``, ``cohort.json``) into an
    nnU-Net v2 folder ``Dataset<ID>_<Name>`` inside ``out_dir``; returns its path. Written beside, then renamed.
    """
    cohort = Path(cohort_dir)
    if target not in COHORT_TARGETS:
        raise ValueError(f"target must be one of {sorted(COHORT_TARGETS)}")
    if not cohort.is_dir():
        raise InputError(cohort, "is not a folder")
    cases = _cohort_cases(cohort)
    if not cases:
        raise InputError(cohort, "holds no phantom cases (<case>/ct.nii.gz)")
    cohort_meta = _read_json(cohort / "cohort.json") if (cohort / "cohort.json").is_file() else {}
    task = name or f"Phantom{''.join(p.title() for p in target.split('_'))}"
    final = Path(out_dir) / f"Dataset{dataset_id:03d}_{task}"
    with atomic_folder(final) as staging:
        (staging / "imagesTr").mkdir()
        (staging / "labelsTr").mkdir()
        ids = []
        for case in cases:
            truth = case / "truth" / f"{target}.nii.gz"
            if not truth.is_file():
                raise InputError(truth, f"is missing: phantom case {case.name} has no {target} ground truth")
            shutil.copyfile(case / "ct.nii.gz", staging / "imagesTr" / f"{case.name}_0000.nii.gz")
            shutil.copyfile(truth, staging / "labelsTr" / f"{case.name}.nii.gz")
            ids.append(case.name)
        labels = {0: "background", **COHORT_TARGETS[target]}
        write_dataset_json(staging, labels, len(ids), task,
                           description=f"LungAI phantom cohort {cohort.name}, target {target} (exact synthetic "
                                       "ground truth)", licence="Apache-2.0 (synthetic)",
                           extra={"reference": "lungai.phantom", "source_cohort": str(cohort.resolve()),
                                  "cohort": cohort_meta})
        write_splits(staging, ids, folds, seed)
    return final


def convert_2d_slices(images_dir: PathLike, masks_dir: PathLike, out_dir: PathLike, labels: Dict[int, str], *,
                      pixel_spacing: float, window: Optional[Tuple[float, float]] = None, dataset_id: int = 910,
                      name: str = "Slices2D", description: str = "", licence: str = "", folds: int = 5,
                      seed: int = 0) -> Path:
    """Turn 8-bit windowed CT slices (PNG/JPEG) with same-named label masks into a 2D nnU-Net folder.

    Grey values are mapped back to approximate HU so that 2D slices and real CT share one intensity
    normalisation: through the display ``window`` (lo, hi) they were made with when it is known, otherwise slice by
    slice from two landmarks of a lung-windowed picture (``lungai.pneumonia.pictures.picture_to_hu``, the
    calibration the shipped 2D lesion model was trained with). Pixel spacing is as stated (pictures carry none).
    Mask values must be label values (0..N); a {0, 255} mask is read as label 1.
    """
    import numpy as np
    import SimpleITK as sitk
    from PIL import Image as PILImage

    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    pictures = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not pictures:
        raise InputError(images_dir, "holds no PNG or JPEG slices")
    final = Path(out_dir) / f"Dataset{dataset_id:03d}_{name}"
    from lungai.pneumonia.pictures import picture_to_hu

    def to_hu(grey: np.ndarray) -> np.ndarray:
        return picture_to_hu(grey) if window is None else window[0] + grey / 255.0 * (window[1] - window[0])

    ids = []
    with atomic_folder(final) as staging:
        (staging / "imagesTr").mkdir()
        (staging / "labelsTr").mkdir()
        for picture in pictures:
            mask_path = next((masks_dir / f"{picture.stem}{ext}" for ext in (".png", picture.suffix)
                              if (masks_dir / f"{picture.stem}{ext}").is_file()), None)
            if mask_path is None:
                raise InputError(masks_dir, f"has no mask for {picture.name}")
            grey = np.asarray(PILImage.open(picture).convert("L"), dtype=np.float32)
            mask = np.asarray(PILImage.open(mask_path))
            mask = mask[..., 0] if mask.ndim == 3 else mask
            if mask.shape != grey.shape:
                raise InputError(mask_path, f"is {mask.shape}, its slice {picture.name} is {grey.shape}")
            if mask.max() == 255 and set(np.unique(mask).tolist()) <= {0, 255}:
                mask = (mask > 0).astype(np.uint8)
            unknown = set(np.unique(mask).tolist()) - set(labels) - {0}
            if unknown:
                raise InputError(mask_path, f"holds values {sorted(unknown)} that are not labels {labels}")
            case_id = f"{name.lower()}_{picture.stem}"
            for array, folder, file_name in ((to_hu(grey), "imagesTr", f"{case_id}_0000.nii.gz"),
                                             (mask.astype(np.uint8), "labelsTr", f"{case_id}.nii.gz")):
                image = sitk.GetImageFromArray(array.astype(np.float32 if folder == "imagesTr" else np.uint8))
                image.SetSpacing((pixel_spacing, pixel_spacing))
                sitk.WriteImage(image, str(staging / folder / file_name), useCompression=True)
            ids.append(case_id)
        write_dataset_json(staging, {0: "background", **labels}, len(ids), name, description=description,
                           licence=licence, extra={"source_images": str(images_dir.resolve()),
                                                   "hu_mapping": ("per-slice landmarks (lungai.pneumonia.pictures)"
                                                                  if window is None else
                                                                  f"display window {list(map(float, window))} HU"),
                                                   "assumed_pixel_spacing_mm": pixel_spacing})
        write_splits(staging, ids, folds, seed)
    return final
