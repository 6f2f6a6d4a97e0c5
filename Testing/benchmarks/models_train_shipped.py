"""Train, evaluate and (with --ship) publish the models LungAI ships, with the project's own training engine.

    # phantom cohorts first (lungai.phantom), e.g. 20 default cases and 8 expiration cases at 3 mm:
    python -c "from lungai.phantom import make_cohort; make_cohort('/tmp/lw/cohortA', 20, seed=1000)"
    python -c "from lungai.phantom import make_cohort; make_cohort('/tmp/lw/cohortB', 8, seed=2000, \
        size=(112, 112, 96), spacing=(3.0, 3.0, 3.2), breathing='expiration')"
    nice -n 10 python Testing/benchmarks/models_train_shipped.py lungs --cohort /tmp/lw/cohortA \
        --cohort /tmp/lw/cohortB --work /tmp/lw --epochs 8 --samples 3 [--ship]
    # lesions-unet2d: the 50 real COVID slices and healthy slices of the real chest CT (no cohort), 5-fold CV by
    # slice, then the model on all slices (folds and final may run as separate processes with --only-fold N and
    # --skip-cv --final; the summary reads the fold results from --work):
    nice -n 10 python Testing/benchmarks/models_train_shipped.py lesions --work /tmp/lw2d --epochs 20 --samples 4 \
        --lr 2e-3 --folds 5 --final [--ship --version 1.1.0]
    # lesions-unet3d: pneumonia cohorts with seeds disjoint from bench_pneumonia.py (100+, 200+), e.g.
    python -c "from lungai.phantom import make_cohort; P = ['covid-mild', 'covid-moderate', 'covid-severe', \
        'bacterial', 'healthy']; make_cohort('/tmp/l3d/cohortA', 30, P, seed=1000, size=(192, 192, 96), \
        spacing=(1.8, 1.8, 3.5)); make_cohort('/tmp/l3d/cohortB', 5, P, seed=2000, size=(160, 160, 134), \
        spacing=(2.2, 2.2, 2.5), dose=0.5); make_cohort('/tmp/l3d/cohortC', 5, P, seed=3000, \
        size=(224, 224, 68), spacing=(1.55, 1.55, 5.0), dose=2.0)"
    LUNGAI_HOME=/tmp/l3d/home nice -n 10 python Testing/benchmarks/models_train_shipped.py lesions3d \
        --cohort /tmp/l3d/cohortA --cohort /tmp/l3d/cohortB --cohort /tmp/l3d/cohortC --work /tmp/l3d/work \
        --epochs 12 --steps 120 --samples 8 --lr 2e-3 --patience 12 [--evaluations FILE.json --ship]

Figures printed (and written to <work>/<model>-figures.json): validation Dice on held-out phantom cases, and on
real data: lungs vs TotalSegmentator masks of ../shared/data/ct/abdomen-lung-bases, lung volumes on the real
chest CT; lesions by k-fold cross-validation by slice (--folds, default 5) over the 50 real COVID slices (each
fold's model never saw its slices; fixed-length training, nothing is chosen on held-out slices), Dice on the
pictures' own pixels as lungai runs the model, and the lesion volume it calls in lungs without pneumonia.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch

from lungai.io import read_image
from lungai.models import run_inference
from lungai.models.datasets import convert_phantom_cohort, read_nnunet_dataset
from lungai.models.preprocess import preprocess
from lungai.models.registry import ModelEntry, bundled_registry_path
from lungai.models.segmentation_training import PreparedCase, dataset_description, prepare_cases, train_segmentation
from lungai.models.training import TrainConfig, publish_model

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
COVID_PIXEL_MM = 0.75  # assumed: the pictures carry no spacing; thorax widths of ~400 px suggest about this

LUNGS = {
    "name": "lungs-unet", "task": "lungs",
    "description": "Right lung, left lung and central airways on chest CT: a small 3D U-Net at 4 mm.",
    "architecture": {"name": "UNet", "params": {"channels": [8, 16, 32, 64], "strides": [2, 2, 2],
                                                "num_res_units": 1}},
    "spatial_dims": 3, "spacing": [4.0, 4.0, 4.0], "patch_size": [64, 64, 48], "orientation": "LPS",
    "normalization": {"type": "ct_window", "window": [-1000, 400]}, "output": "softmax",
    "labels": {"0": "background", "1": "right_lung", "2": "left_lung", "3": "airways"},
    "inference": {"overlap": 0.25, "sw_batch_size": 1, "blend": "gaussian", "tta_axes": [1]},
    "license": "Apache-2.0",
}
LESIONS = {
    "name": "lesions-unet2d", "task": "lesions",
    "description": "Ground-glass opacity and consolidation on axial chest CT slices: a small 2D U-Net at 1.5 mm.",
    "architecture": {"name": "UNet", "params": {"channels": [16, 32, 64, 128], "strides": [2, 2, 2],
                                                "num_res_units": 1}},
    "spatial_dims": 2, "spacing": [1.5, 1.5], "patch_size": [160, 160], "orientation": "LPS",
    "normalization": {"type": "ct_window", "window": [-1100, 300]}, "output": "softmax",
    "labels": {"0": "background", "1": "ground_glass", "2": "consolidation"},
    "inference": {"overlap": 0.25, "sw_batch_size": 8, "blend": "gaussian", "tta_axes": [0, 1]},
    "license": "Apache-2.0 (weights); trained on COVID-SemiSeg slices (non-commercial research use)",
}


def _entry(template: Dict) -> ModelEntry:
    return ModelEntry.from_dict(dict(template, version="0.0.0", card="",
                                     weights={"file": "none.pt", "sha256": "0" * 64, "size": 1}))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum() + b.sum())
    return 2.0 * float(np.logical_and(a, b).sum()) / total if total else float("nan")


def _phantom_sets(cohorts: List[Path], work: Path, target: str):
    sets = []
    for index, cohort in enumerate(cohorts):
        folder = convert_phantom_cohort(cohort, work / "datasets", target, dataset_id=900 + index + (10 if target != "lungs" else 0),
                                        name=f"Phantom{cohort.name.title()}{''.join(p.title() for p in target.split('_'))}")
        sets.append(read_nnunet_dataset(folder))
    return sets


# -- lungs -------------------------------------------------------------------------------------------------------
def evaluate_lungs_real(entry: ModelEntry, network: torch.nn.Module) -> Dict[str, Dict[str, float]]:
    out: Dict[str, Dict[str, float]] = {}
    base = SHARED / "ct" / "abdomen-lung-bases"
    if base.is_dir():
        ct = read_image(base / "ct.nii.gz", check="none")
        res = run_inference(ct, entry, network=network)
        right = sum(read_image(base / f"lung_{n}.nii.gz", check="none").array > 0
                    for n in ("upper_lobe_right", "middle_lobe_right", "lower_lobe_right"))
        left = sum(read_image(base / f"lung_{n}.nii.gz", check="none").array > 0
                   for n in ("upper_lobe_left", "lower_lobe_left"))
        pred = res.labels.array
        out["abdomen-lung-bases vs TotalSegmentator (real CT, 3 mm, lung bases only)"] = {
            "dice_right_lung": round(_dice(pred == 1, right > 0), 4),
            "dice_left_lung": round(_dice(pred == 2, left > 0), 4),
            "dice_both_lungs": round(_dice(np.isin(pred, (1, 2)), (right + left) > 0), 4),
            "reference_volume_ml": round(float(((right + left) > 0).sum()) * ct.voxel_volume_ml, 1),
            "predicted_volume_ml": round(float(np.isin(pred, (1, 2)).sum()) * ct.voxel_volume_ml, 1)}
    chest = SHARED / "ct" / "chest-ct-141" / "ct.nii.gz"
    if chest.is_file():
        ct = read_image(chest, check="none")
        res = run_inference(ct, entry, network=network)
        pred = res.labels.array
        figures = {f"{name}_volume_ml": round(float((pred == v).sum()) * ct.voxel_volume_ml, 1)
                   for v, name in ((1, "right_lung"), (2, "left_lung"), (3, "airways"))}
        lung_air = (ct.array < -500) & np.isin(pred, (1, 2))
        figures["fraction_of_predicted_lung_below_-500_HU"] = round(float(lung_air.sum()) / max(int(np.isin(pred, (1, 2)).sum()), 1), 4)
        # the right lung must lie on the patient's right (LPS x < centre): compare mean x of the two labels
        xs = {v: float(np.mean([ct.index_to_lps([i, j, k])[0] for k, j, i in np.argwhere(pred == v)[::997]]))
              for v in (1, 2) if (pred == v).any()}
        figures["right_lung_on_patient_right"] = bool(len(xs) == 2 and xs[1] < xs[2])
        figures["seconds_cpu"] = round(res.seconds, 1)
        out["chest-ct-141 (real chest CT, no reference mask)"] = figures
    return out


def train_lungs(args) -> None:
    entry = _entry(LUNGS)
    sets = _phantom_sets(args.cohort, args.work, "lungs")
    train, val = [], []
    for ds in sets:
        tr, va = ds.split(0)
        train += prepare_cases(tr, entry)
        val += prepare_cases(va, entry)
    print(f"lungs: {len(train)} training and {len(val)} validation phantom cases", flush=True)
    config = TrainConfig(max_epochs=args.epochs, batch_size=2, lr=3e-3, seed=0, patience=5,
                         checkpoint_dir=args.work / "ckpt-lungs", metric_name="dice")
    network, result = train_segmentation(entry, train, val, config, samples_per_case=args.samples, flip_axes=[1],
                                         log=print)
    network.eval()
    evaluations = {"held-out phantom cases (fold 0)": {"mean_foreground_dice": round(result.best_metric, 4)}}
    evaluations.update(evaluate_lungs_real(entry, network))
    figures = {"history": result.history, "best": result.best_metric, "seconds": result.seconds,
               "evaluations": evaluations}
    print(json.dumps(evaluations, indent=2))
    (args.work / "lungs-unet-figures.json").write_text(json.dumps(figures, indent=2))
    if args.ship:
        data = dataset_description(sets, train, val, {
            "description": "Synthetic chest CTs of lungai.phantom only (healthy, COVID-19 mild/moderate/severe, "
                           "bacterial pneumonia, embolism, nodules; inspiration and expiration; 2.5-5 mm), with "
                           "exact right lung / left lung / airway truth. No real CT was used for training.",
            "evaluations": evaluations,
            "limitations": "Trained on synthetic phantoms only. Judge it by the real-data figures above; "
                           "airways at 4 mm are the trachea and main bronchi only. Review every mask."})
        entry_out = publish_model(LUNGS, network, result, data, registry_path=bundled_registry_path(), version="1.0.0")
        print("shipped", entry_out.id, entry_out.sha256, entry_out.weights["size"])


# -- lesions (2D) ------------------------------------------------------------------------------------------------
def _covid_slices() -> List[Tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """The 50 real COVID slices: (name, HU picture, class labels 0/1/2, radiologist's binary infection mask)."""
    from PIL import Image as PILImage

    from lungai.pneumonia.pictures import picture_to_hu

    root = SHARED / "covid2d" / "train"
    out = []
    for path in sorted((root / "MultiClassInfection-Train" / "Imgs").glob("*.jpg"), key=lambda p: int(p.stem)):
        gray = np.asarray(PILImage.open(path).convert("L"))
        classes = np.asarray(PILImage.open(root / "MultiClassInfection-Train" / "GT" / f"{path.stem}.png"))
        infection = np.asarray(PILImage.open(root / "LungInfection-Train" / "Doctor-label" / "GT" / f"{path.stem}.png"))
        out.append((path.stem, picture_to_hu(gray), classes.astype(np.uint8), infection > 127))
    return out


def _picture_image(hu: np.ndarray):
    from lungai.image import Image

    return Image.from_array(hu, spacing=(COVID_PIXEL_MM, COVID_PIXEL_MM))


class AugmentedSlices(torch.utils.data.Dataset):
    """Random crops of prepared slices (model grid, normalised) with strong augmentation, reproducible from
    ``(seed, epoch, index)``: flips and transposition (the pictures are rotated against the CT's display),
    rotation +-20 degrees, scale 0.8-1.25, shift, elastic
    deformation, and intensity changes of windowed pictures and other scanners (gamma 0.7-1.5, contrast and
    brightness +-10 %, Gaussian blur of thicker slices, noise)."""

    def __init__(self, cases: List[PreparedCase], patch: Tuple[int, int], samples_per_case: int, seed: int = 0):
        from monai.transforms import Rand2DElastic, RandAffine

        self.cases, self.patch, self.samples, self.seed, self.epoch = cases, patch, samples_per_case, seed, 0
        self.affine = RandAffine(prob=0.9, rotate_range=0.35, scale_range=(0.2, 0.2), translate_range=(12, 12),
                                 padding_mode="zeros")
        self.elastic = Rand2DElastic(spacing=(24, 24), magnitude_range=(0.0, 1.5), prob=0.3, padding_mode="zeros")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.cases) * self.samples

    def __getitem__(self, index: int):
        from scipy import ndimage as ndi

        rng = np.random.default_rng([self.seed, self.epoch, index])
        case = self.cases[index % len(self.cases)]
        shape = np.array(case.image.shape)
        size = np.maximum(shape, self.patch)
        image = np.zeros(size, np.float32)
        label = np.zeros(size, np.uint8)
        image[:shape[0], :shape[1]], label[:shape[0], :shape[1]] = case.image, case.label
        lesion = np.argwhere(label > 0)
        centre = lesion[rng.integers(len(lesion))] if len(lesion) and rng.random() < 0.5 else \
            np.array([rng.integers(s) for s in size])
        start = np.clip(centre - np.array(self.patch) // 2, 0, size - self.patch)
        box = tuple(slice(int(a), int(a + p)) for a, p in zip(start, self.patch))
        x, y = image[box][None], label[box][None].astype(np.float32)
        for axis in (1, 2):  # any of the 8 axial orientations: the pictures are not all in the CT's display
            if rng.random() < 0.5:
                x, y = np.flip(x, axis), np.flip(y, axis)
        if rng.random() < 0.5:
            x, y = np.swapaxes(x, 1, 2), np.swapaxes(y, 1, 2)
        both = np.concatenate([x, y]).copy()
        for transform in (self.affine, self.elastic):
            transform.set_random_state(int(rng.integers(2 ** 31)))
            transform.randomize(both.shape[1:])
            both = np.stack([np.asarray(transform(both[c:c + 1], mode=mode, randomize=False))[0]
                             for c, mode in enumerate(("bilinear", "nearest"))])
        x, y = both[0], np.rint(both[1])
        x = np.clip(x, 0.0, 1.0) ** rng.uniform(0.7, 1.5)
        x = x * rng.uniform(0.9, 1.1) + rng.uniform(-0.05, 0.05)
        if rng.random() < 0.25:
            x = ndi.gaussian_filter(x, rng.uniform(0.3, 1.0))
        if rng.random() < 0.3:
            x = x + rng.normal(0.0, rng.uniform(0.005, 0.02), x.shape)
        return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None],
                torch.from_numpy(np.ascontiguousarray(y).astype(np.int64))[None])


def _fit_slices(entry: ModelEntry, cases: List[PreparedCase], args, tag: str):
    """Fixed-length training (no model selection on held-out slices): Dice + cross-entropy, AdamW, cosine."""
    from monai.losses import DiceCELoss

    from lungai.models.inference import build_network
    from lungai.models.segmentation_training import (WholeCaseDataset, mean_foreground_dice,
                                                     sliding_window_predictor)
    from lungai.models.training import Trainer, seed_everything

    seed_everything(0)
    network = build_network(entry)
    data = AugmentedSlices(cases, tuple(entry.patch_size_array), args.samples, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True, num_workers=0,
                                         generator=torch.Generator().manual_seed(0))
    loss = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
    config = TrainConfig(max_epochs=args.epochs, batch_size=8, lr=args.lr, seed=0, patience=args.epochs + 1,
                         checkpoint_dir=args.work / f"ckpt-lesions2d-{tag}", metric_name="train_dice",
                         weight_decay=1e-4)
    # the "validation" is a fixed batch of training slices: it tracks fitting, it chooses nothing held out
    watch = WholeCaseDataset(cases[:4])
    trainer = Trainer(network, loss, mean_foreground_dice, config, predict_fn=sliding_window_predictor(entry),
                      log=print)
    result = trainer.fit(loader, torch.utils.data.DataLoader(watch, batch_size=1))
    network.load_state_dict(torch.load(trainer.last_path, map_location="cpu", weights_only=False)["model"])
    return network, result


def _slice_dice(entry: ModelEntry, network: torch.nn.Module, slices) -> Dict[str, float]:
    """Dice on the pictures' own pixels (the model's output mapped back as the pipeline does): any lesion against
    the radiologist's infection mask (mean over slices and pooled), ground glass and consolidation pooled."""
    per_slice, inter, total = [], {1: 0, 2: 0, "any": 0}, {1: 0, 2: 0, "any": 0}
    for _name, hu, classes, infection in slices:
        pred = run_inference(_picture_image(hu), entry, network=network).labels.array
        per_slice.append(_dice(pred > 0, infection))
        for key, p, t in ((1, pred == 1, classes == 1), (2, pred == 2, classes == 2), ("any", pred > 0, infection)):
            inter[key] += int((p & t).sum())
            total[key] += int(p.sum() + t.sum())
    return {"mean_slice_dice_any_lesion": round(float(np.nanmean(per_slice)), 4),
            "pooled_dice_any_lesion": round(2 * inter["any"] / max(total["any"], 1), 4),
            "pooled_dice_ground_glass": round(2 * inter[1] / max(total[1], 1), 4),
            "pooled_dice_consolidation": round(2 * inter[2] / max(total[2], 1), 4), "slices": len(slices),
            "_per_slice": [round(float(d), 4) for d in per_slice]}


NEGATIVE_SLICES = 12  # axial slices of the real chest CT without pneumonia, evenly through its lungs


def _healthy_ct_slices(entry: ModelEntry) -> List[PreparedCase]:
    """Slices of the real chest CT (no pneumonia; its right-upper-lobe tumour is no infection either) with an
    empty label map: the COVID slices all hold infection, so without these the model never sees healthy lung."""
    chest = SHARED / "ct" / "chest-ct-141" / "ct.nii.gz"
    if not chest.is_file():
        return []
    from lungai.image import Image
    from lungai.lung import segment_lungs

    ct = read_image(chest, check="none")
    rows = np.nonzero(np.isin(np.asarray(segment_lungs(ct).labels.array), (1, 2)).any(axis=(1, 2)))[0]
    out = []
    for k in np.linspace(rows[0] + 2, rows[-1] - 2, NEGATIVE_SLICES).round().astype(int):
        hu = Image.from_array(ct.array[k].astype(np.float32), spacing=ct.spacing[:2])
        arr, lab = preprocess(hu, entry, hu.like(np.zeros(hu.shape, np.uint8)))
        out.append(PreparedCase(f"chest-ct-141:{k}", arr, lab))
    return out


def evaluate_lesions2d_healthy(entry: ModelEntry, network: torch.nn.Module) -> Dict[str, Dict[str, float]]:
    """Lungs without pneumonia never used in training: lesion volume called inside their lung masks (the real
    abdominal CT's lung bases with TotalSegmentator's lung mask; a healthy phantom's true lungs)."""
    out: Dict[str, Dict[str, float]] = {}
    base = SHARED / "ct" / "abdomen-lung-bases"
    if base.is_dir():
        ct = read_image(base / "ct.nii.gz", check="none")
        lungs = read_image(base / "lung.nii.gz", check="none").array > 0
        pred = run_inference(ct, entry, network=network).labels.array * lungs
        figures = _lesion_ml(pred, ct.voxel_volume_ml)
        figures["lung_ml"] = round(float(lungs.sum()) * ct.voxel_volume_ml, 1)
        figures["lesion_percent_of_lungs"] = round(100.0 * float((pred > 0).sum()) / max(int(lungs.sum()), 1), 3)
        out["abdomen-lung-bases (real CT at 3 mm, lung bases, no pneumonia; inside TotalSegmentator's lung mask)"] = figures
    from lungai.phantom import PhantomConfig, make_phantom

    case = make_phantom(PhantomConfig(seed=987657, preset="healthy", size=(96, 96, 48), spacing=(3.5, 3.5, 7.0)))
    lungs = np.isin(case.truth["lungs"].array, (1, 2))
    pred = run_inference(case.ct, entry, network=network).labels.array * lungs
    figures = _lesion_ml(pred, case.ct.voxel_volume_ml)
    figures["lesion_percent_of_lungs"] = round(100.0 * float((pred > 0).sum()) / max(int(lungs.sum()), 1), 3)
    out["healthy phantom (seed 987657, 3.5 x 3.5 x 7 mm; inside the true lungs)"] = figures
    return out


def train_lesions(args) -> None:
    """lesions-unet2d: k-fold cross-validation by slice over the 50 real COVID slices (each fold's model never sees
    its test slices, and nothing is chosen on them; every fold also trains on the healthy real CT slices), then the
    shipped model on all of them with the same recipe."""
    entry = _entry(LESIONS)
    slices = _covid_slices()
    prepared = []
    for name, hu, classes, _ in slices:
        arr, lab = preprocess(_picture_image(hu), entry, _picture_image(classes))
        prepared.append(PreparedCase(name, arr, lab))
    healthy = _healthy_ct_slices(entry)
    print(f"lesions-unet2d: {len(prepared)} real COVID slices, {len(healthy)} healthy real CT slices", flush=True)
    order = np.random.default_rng(0).permutation(len(slices))
    folds = np.array_split(order, args.folds)
    for fold in [] if args.skip_cv else (args.only_fold or range(args.folds)):
        t0 = time.time()
        test = set(folds[fold].tolist())
        train = [prepared[i] for i in order if i not in test] + healthy
        network, _ = _fit_slices(entry, train, args, f"{args.folds}fold{fold}")
        scores = _slice_dice(entry, network, [slices[i] for i in folds[fold]])
        scores["seconds"] = round(time.time() - t0, 1)
        print(f"fold {fold}: {scores}", flush=True)
        (args.work / f"lesions-unet2d-{args.folds}fold{fold}.json").write_text(json.dumps(scores, indent=2))
    # the summary over every fold finished so far (folds may run in separate processes)
    cv, per_slice = [], {}
    for fold, test in enumerate(folds):
        path = args.work / f"lesions-unet2d-{args.folds}fold{fold}.json"
        if path.is_file():
            scores = json.loads(path.read_text())
            per_slice.update({slices[i][0]: d for i, d in zip(test, scores.pop("_per_slice"))})
            cv.append(scores)
    summary = {}
    if cv:
        summary = {"mean_slice_dice_any_lesion": round(float(np.mean(list(per_slice.values()))), 4),
                   "median_slice_dice_any_lesion": round(float(np.median(list(per_slice.values()))), 4)}
        summary.update({k: round(float(np.mean([s[k] for s in cv])), 4) for k in cv[0] if k.startswith("pooled")})
        summary.update(folds=len(cv), slices=len(per_slice))
        print(f"{len(cv)} of {args.folds} folds, {len(per_slice)} held-out slices: {summary}", flush=True)
    if not args.final:
        return
    network, result = _fit_slices(entry, prepared + healthy, args, "all")
    evaluations = {f"real COVID slices, {len(cv)}-fold cross-validation by slice (Dice on the pictures' pixels; "
                   "mean over all slices, pooled per fold then averaged)": summary}
    for fold, scores in enumerate(cv):
        evaluations[f"real COVID slices, fold {fold} ({scores['slices']} held-out slices)"] = scores
    evaluations.update(evaluate_lesions2d_healthy(entry, network))
    print(json.dumps(evaluations, indent=2))
    (args.work / "lesions-unet2d-figures.json").write_text(json.dumps({"history": result.history, "cv": cv,
                                                                       "evaluations": evaluations}, indent=2))
    if args.ship:
        data = {"name": "COVID-SemiSeg + chest-ct-141", "cases_train": len(prepared) + len(healthy), "cases_val": 0,
                "samples_train": len(prepared) + len(healthy), "samples_val": 0,
                "licence": "non-commercial research use (COVID-SemiSeg); Apache-2.0 (chest CT)",
                "source": f"{SHARED / 'covid2d' / 'train'} (COVID-SemiSeg / Inf-Net multi-class slices from MedSeg); "
                          f"{SHARED / 'ct' / 'chest-ct-141'} (ITKElastix example chest CT, no pneumonia)",
                "description": "All 50 real COVID-19 axial slices of COVID-SemiSeg (MedSeg; ground glass and "
                               "consolidation traced by a radiologist), 8-bit lung-windowed pictures mapped back to "
                               "HU slice by slice (lungai.pneumonia.pictures: soft-tissue peak 40 HU, darkest lung "
                               f"-950 HU), {COVID_PIXEL_MM} mm pixels assumed; plus {len(healthy)} axial slices evenly "
                               "through the lungs of a real chest CT without pneumonia (empty label map) so that "
                               "healthy lung is seen. Fixed-length training (no model selection): the COVID "
                               "figures below are cross-validated by slice. No phantom data.",
                "evaluations": evaluations,
                "limitations": "50 real slices of one public set are few; the cross-validation is by slice and "
                               "slices of one patient may fall into different folds. Pictures, not HU CTs: the "
                               "calibration is approximate. Healthy lung comes from one real CT only: see the "
                               "figures on lungs without pneumonia. The model does not know where the lungs are: lungai pneumonia keeps its "
                               "output inside the lung mask. Review every mask."}
        entry_out = publish_model(LESIONS, network, result, data, registry_path=bundled_registry_path(),
                                  version=args.version)
        print("shipped", entry_out.id, entry_out.sha256, entry_out.weights["size"])


# -- lesions-unet3d ----------------------------------------------------------------------------------------------
LESIONS3D = {
    "name": "lesions-unet3d", "task": "lesions",
    "description": "Ground-glass opacity and consolidation on chest CT volumes: a small 3D U-Net at 1.8 x 1.8 x "
                   "3.5 mm, trained on synthetic phantom CTs only.",
    "architecture": {"name": "UNet", "params": {"channels": [16, 32, 64, 128], "strides": [2, 2, 2],
                                                "num_res_units": 1}},
    "spatial_dims": 3, "spacing": [1.8, 1.8, 3.5], "patch_size": [96, 96, 32], "orientation": "LPS",
    "normalization": {"type": "ct_window", "window": [-1100, 400]}, "output": "softmax",
    "labels": {"0": "background", "1": "ground_glass", "2": "consolidation"},
    "inference": {"overlap": 0.25, "sw_batch_size": 2, "blend": "gaussian", "tta_axes": [2]},
    "license": "Apache-2.0 (weights; trained on synthetic data only)",
}
LESIONS3D_VALIDATION = ("covid-mild", "covid-moderate", "bacterial")  # one case each, from the first cohort


def _lesion_ml(labels: np.ndarray, voxel_ml: float) -> Dict[str, float]:
    return {"ground_glass_ml": round(float((labels == 1).sum()) * voxel_ml, 2),
            "consolidation_ml": round(float((labels == 2).sum()) * voxel_ml, 2)}


def _lesion_neighbourhood(case: PreparedCase, margin=(8, 32, 32)) -> PreparedCase:
    """The case cropped to its lesions' box plus ``margin`` voxels (k, j, i): per-epoch validation at a third of
    the cost of the whole CT (the benchmark measures whole CTs)."""
    where = np.argwhere(case.label > 0)
    lo = np.maximum(where.min(0) - margin, 0)
    hi = np.minimum(where.max(0) + 1 + np.asarray(margin), case.label.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    return PreparedCase(case.case_id, case.image[box], case.label[box])


def evaluate_lesions3d_real(entry: ModelEntry, network: torch.nn.Module) -> Dict[str, Dict[str, float]]:
    """The real chest CT (no pneumonia expected): lesion volume the model calls inside the lungs of
    ``lungai.lung.segment_lungs`` (every voxel, before the analysis' minimum lesion size)."""
    from lungai.lung import segment_lungs

    chest = SHARED / "ct" / "chest-ct-141" / "ct.nii.gz"
    if not chest.is_file():
        return {}
    ct = read_image(chest, check="none")
    lungs = np.isin(segment_lungs(ct).labels.array, (1, 2))
    res = run_inference(ct, entry, network=network)
    inside = np.where(lungs, res.labels.array, 0)
    figures = {"lung_volume_ml": round(float(lungs.sum()) * ct.voxel_volume_ml, 1)}
    figures.update(_lesion_ml(inside, ct.voxel_volume_ml))
    figures["lesion_percent_of_lungs"] = round(100.0 * float((inside > 0).sum()) / max(int(lungs.sum()), 1), 3)
    figures["seconds_cpu"] = round(res.seconds, 1)
    return {"chest-ct-141 (real chest CT 512x512x141, no pneumonia expected; lesion voxels inside the lungs)": figures}


def train_lesions3d(args) -> None:
    """3D lesion model on phantom cohorts (make them with seeds disjoint from bench_pneumonia.py's 100+ and 200+).

    Without --ship the model is published to the user registry ($LUNGAI_HOME), so that bench_pneumonia.py can
    measure it; --evaluations FILE adds those figures ({title: {metric: value}}) to the shipped card. A finished
    run resumes from its checkpoint folder without training again.
    """
    entry = _entry(LESIONS3D)
    sets = _phantom_sets(args.cohort, args.work, "lesion_class")
    train_cases, val_cases = [], []
    for index, ds in enumerate(sets):
        presets = {c["case_id"]: c["preset"] for c in json.loads((ds.folder / "dataset.json").read_text())
                   .get("cohort", {}).get("cases", [])}
        for case in ds.cases:
            preset = presets.get(case.case_id, "")
            held = index == 0 and preset in LESIONS3D_VALIDATION and preset not in {presets[v.case_id] for v in val_cases}
            (val_cases if held else train_cases).append(case)
    train = prepare_cases(train_cases, entry)
    val = [_lesion_neighbourhood(c) for c in prepare_cases(val_cases, entry)]
    print(f"lesions3d: {len(train)} training and {len(val)} validation phantom CTs "
          f"({', '.join(c.case_id for c in val)})", flush=True)
    config = TrainConfig(max_epochs=args.epochs, batch_size=2, lr=args.lr, seed=0, patience=args.patience,
                         checkpoint_dir=args.work / "ckpt-lesions3d", metric_name="dice",
                         steps_per_epoch=args.steps)
    network, result = train_segmentation(entry, train, val, config, samples_per_case=args.samples, flip_axes=[2],
                                         log=print)
    network.eval()
    evaluations = {"held-out phantom CTs, lesion neighbourhood (validation, also used for epoch choice)": {
        "mean_foreground_dice": round(result.best_metric, 4), "cases": len(val)}}
    evaluations.update(evaluate_lesions3d_real(entry, network))
    if args.evaluations:
        evaluations.update(json.loads(Path(args.evaluations).read_text()))
    print(json.dumps(evaluations, indent=2), flush=True)
    (args.work / "lesions-unet3d-figures.json").write_text(json.dumps({"history": result.history,
                                                                       "evaluations": evaluations}, indent=2))
    cohorts = [json.loads((ds.folder / "dataset.json").read_text()).get("cohort", {}) for ds in sets]
    data = dataset_description(sets, train, val, {
        "cases_train": len(train), "cases_val": len(val),  # case ids repeat across cohorts: count CTs
        "description": "Synthetic chest CTs of lungai.phantom only (presets covid-mild, covid-moderate, covid-severe, "
                       "bacterial, healthy; exact ground-glass / consolidation truth). No real CT was used. "
                       "Cohorts (seeds, size, spacing, dose): " + "; ".join(
                           f"seeds {c.get('seed')}..{c.get('seed', 0) + c.get('n', 1) - 1}, {c.get('overrides')}"
                           for c in cohorts) + ". The seeds are disjoint from the benchmark's (bench_pneumonia.py "
                       "phantom: 100 + seed; followup: 200 + seed). Patches centred on a lesion voxel 70 % of the "
                       "time, left-right flips, small intensity jitter; noise and blur vary with the cohorts' dose "
                       "and slice thickness.",
        "evaluations": evaluations,
        "limitations": "A first version, trained for 12 short epochs on 2 shared CPU cores: on unseen phantoms it "
                       "finds the lesions (recall 0.98) but misses the issue's targets: about 15 false lesions per "
                       "CT (precision 0.32, healthy phantoms called positive), lobar consolidation under-called "
                       "(bacterial Dice 0.18-0.38 with the automatic lung mask), involvement too low in severe "
                       "disease. Prefer the classic method for figures; use this model to compare and as a start "
                       "for fine-tuning on reviewed cases. Trained on synthetic phantoms only: on real CTs, vessels, "
                       "fissures, atelectasis, tumours, motion and scanner textures may be called lesion (the real "
                       "chest CT above has a right-upper-lobe tumour and no pneumonia). One CT channel: the lung "
                       "mask is applied after the network (lungai pneumonia keeps the output inside the lungs). "
                       "Review every mask."})
    registry = bundled_registry_path() if args.ship else None
    entry_out = publish_model(LESIONS3D, network, result, data, registry_path=registry, version="1.0.0")
    print("published", entry_out.id, "to", "the bundled registry" if args.ship else "the user registry",
          entry_out.sha256, entry_out.weights["size"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=["lungs", "lesions", "lesions3d"])
    parser.add_argument("--cohort", type=Path, action="append", default=[], help="phantom cohort (lungs, lesions3d)")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--samples", type=int, default=3, help="3D patches per case and epoch (lungs)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds over the real slices (lesions)")
    parser.add_argument("--only-fold", type=int, action="append", help="run only this fold (repeatable; lesions)")
    parser.add_argument("--skip-cv", action="store_true", help="no fold training; summarise folds already in --work")
    parser.add_argument("--final", action="store_true", help="also train the model on all real slices (lesions)")
    parser.add_argument("--version", default=None, help="version to publish (default: the next minor one)")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (lesions)")
    parser.add_argument("--patience", type=int, default=4, help="early-stopping patience (lesions)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None, help="training batches per epoch (lesions3d)")
    parser.add_argument("--evaluations", type=Path, help="JSON {title: {metric: value}} for the card (lesions3d)")
    parser.add_argument("--ship", action="store_true", help="publish into Resources/Models/registry.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    {"lungs": train_lungs, "lesions": train_lesions, "lesions3d": train_lesions3d}[args.model](args)


if __name__ == "__main__":
    main()
