"""Train, evaluate and (with --ship) publish the models LungAI ships, with the project's own training engine.

    # phantom cohorts first (lungai.phantom), e.g. 20 default cases and 8 expiration cases at 3 mm:
    python -c "from lungai.phantom import make_cohort; make_cohort('/tmp/lw/cohortA', 20, seed=1000)"
    python -c "from lungai.phantom import make_cohort; make_cohort('/tmp/lw/cohortB', 8, seed=2000, \
        size=(112, 112, 96), spacing=(3.0, 3.0, 3.2), breathing='expiration')"
    nice -n 10 python Testing/benchmarks/models_train_shipped.py lungs --cohort /tmp/lw/cohortA \
        --cohort /tmp/lw/cohortB --work /tmp/lw --epochs 8 --samples 3 [--ship]
    nice -n 10 python Testing/benchmarks/models_train_shipped.py lesions --cohort /tmp/lw/cohortA \
        --work /tmp/lw --epochs 12 --folds 3 [--ship]
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
chest CT; lesions by k-fold cross-validation (--folds, default 3) over the 50 real COVID slices (each fold's
model never saw its slices; model selection on every 5th of that fold's training slices).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

from lungai.io import read_image
from lungai.models import run_inference
from lungai.models.datasets import convert_2d_slices, convert_phantom_cohort, read_nnunet_dataset
from lungai.models.registry import ModelEntry, bundled_registry_path
from lungai.models.segmentation_training import PreparedCase, dataset_description, prepare_cases, train_segmentation
from lungai.models.training import TrainConfig, publish_model

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
COVID_WINDOW = (-1060.0, 300.0)  # estimated from the slices' lung (~40) and soft-tissue (~205) grey levels
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
    "description": "Ground-glass opacity and consolidation on axial chest CT slices: a small 2D U-Net at 2 mm.",
    "architecture": {"name": "UNet", "params": {"channels": [16, 32, 64, 128], "strides": [2, 2, 2],
                                                "num_res_units": 1}},
    "spatial_dims": 2, "spacing": [2.0, 2.0], "patch_size": [96, 96], "orientation": "LPS",
    "normalization": {"type": "ct_window", "window": [-1100, 300]}, "output": "softmax",
    "labels": {"0": "background", "1": "ground_glass", "2": "consolidation"},
    "inference": {"overlap": 0.25, "sw_batch_size": 8, "blend": "gaussian", "tta_axes": [0, 1]},
    "license": "Apache-2.0 (weights); trained partly on COVID-SemiSeg slices (non-commercial research use)",
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


# -- lesions -----------------------------------------------------------------------------------------------------
def _slice_scores(network: torch.nn.Module, entry: ModelEntry, cases: List[PreparedCase]) -> Dict[str, float]:
    from monai.inferers import sliding_window_inference

    inter = {1: 0, 2: 0, "any": 0}
    total = {1: 0, 2: 0, "any": 0}
    per_slice = []
    network.eval()
    with torch.no_grad():
        for case in cases:
            x = torch.from_numpy(case.image.astype(np.float32))[None, None]
            pred = sliding_window_inference(x, entry.patch_size_array, 8, network, overlap=0.25,
                                            mode="gaussian").argmax(1)[0].numpy()
            truth = case.label
            for key, p, t in ((1, pred == 1, truth == 1), (2, pred == 2, truth == 2), ("any", pred > 0, truth > 0)):
                inter[key] += int((p & t).sum())
                total[key] += int(p.sum() + t.sum())
            d = _dice(pred > 0, truth > 0)
            if not np.isnan(d):
                per_slice.append(d)
    return {"dice_ground_glass": round(2 * inter[1] / max(total[1], 1), 4),
            "dice_consolidation": round(2 * inter[2] / max(total[2], 1), 4),
            "dice_any_lesion": round(2 * inter["any"] / max(total["any"], 1), 4),
            "mean_slice_dice_any_lesion": round(float(np.mean(per_slice)), 4), "slices": len(cases)}


def train_lesions(args) -> None:
    entry = _entry(LESIONS)
    sets = _phantom_sets(args.cohort, args.work, "lesion_class")
    covid_dir = SHARED / "covid2d" / "train" / "MultiClassInfection-Train"
    covid = read_nnunet_dataset(convert_2d_slices(
        covid_dir / "Imgs", covid_dir / "GT", args.work / "datasets", {1: "ground_glass", 2: "consolidation"},
        window=COVID_WINDOW, pixel_spacing=COVID_PIXEL_MM, dataset_id=920, name="CovidSemiSeg", folds=args.folds, licence="non-commercial research use",
        description="COVID-SemiSeg (Inf-Net) multi-class slices from MedSeg, 8-bit windowed JPEG mapped back to "
                    f"approximate HU through an estimated window {COVID_WINDOW}"))
    phantom_train, phantom_val = [], []
    for ds in sets:
        tr, va = ds.split(0)
        phantom_train += prepare_cases(tr, entry, background_slices=0.3)
        phantom_val += prepare_cases(va, entry, background_slices=0.3)
    phantom_train, phantom_val = phantom_train[::4], phantom_val[::3]
    covid_all = {c.case_id: c for c in prepare_cases(covid.cases, entry)}
    print(f"lesions: {len(phantom_train)} phantom training slices, {len(phantom_val)} phantom validation slices, "
          f"{len(covid_all)} real COVID slices", flush=True)

    def fit(covid_train: List[PreparedCase], tag: str):
        """Phantom slices + real slices; model selection on every 5th of the given real slices (never the test fold)."""
        ordered = sorted(covid_train, key=lambda c: c.case_id)
        inner_val = ordered[::5]
        inner_train = [c for c in ordered if c not in inner_val]
        config = TrainConfig(max_epochs=args.epochs, batch_size=8, lr=args.lr, seed=0, patience=args.patience,
                             checkpoint_dir=args.work / f"ckpt-lesions-{tag}", metric_name="dice")
        network, result = train_segmentation(entry, phantom_train + inner_train * args.covid_repeat, inner_val, config,
                                             samples_per_case=1, flip_axes=[0, 1], transpose_axes=(0, 1), log=print)
        return network, result, len(inner_train), len(inner_val)

    cv = []
    for fold, split in enumerate(covid.splits or []):
        if fold >= args.folds:
            break
        t0 = time.time()
        network, *_ = fit([covid_all[c] for c in split["train"]], f"fold{fold}")
        scores = _slice_scores(network, entry, [covid_all[c] for c in split["val"]])
        scores["seconds"] = round(time.time() - t0, 1)
        print(f"fold {fold}: {scores}", flush=True)
        cv.append(scores)
    summary = {k: round(float(np.mean([s[k] for s in cv])), 4) for k in cv[0] if k not in ("slices", "seconds")} if cv else {}
    if cv:
        summary["folds"] = len(cv)
    network, result, n_real_train, n_real_val = fit(list(covid_all.values()), "all")
    evaluations = {
        f"real COVID slices, {len(cv)}-fold cross-validation (pooled Dice per fold, mean of folds)": summary,
        "held-out phantom slices (fold 0 cases)": _slice_scores(network, entry, phantom_val)}
    for fold, scores in enumerate(cv):
        evaluations[f"real COVID slices, fold {fold} ({scores['slices']} held-out slices)"] = scores
    print(json.dumps(evaluations, indent=2))
    (args.work / "lesions-unet2d-figures.json").write_text(json.dumps({"history": result.history, "cv": cv,
                                                                       "evaluations": evaluations}, indent=2))
    if args.ship:
        data = dataset_description(sets + [covid], phantom_train, phantom_val, {
            "real_slices_train": n_real_train, "real_slices_validation": n_real_val,
            "description": "Axial slices of lungai.phantom chest CTs (COVID-19 mild/moderate/severe, bacterial "
                           "pneumonia and others, exact lesion truth) plus all 50 real COVID-19 slices of "
                           "COVID-SemiSeg (MedSeg; ground glass and consolidation traced by a radiologist): "
                           f"{n_real_train} real slices for training (repeated {args.covid_repeat}x per epoch) and "
                           f"{n_real_val} (every 5th) for model selection. Real slices are 8-bit windowed pictures "
                           f"mapped back to approximate HU (window {COVID_WINDOW}, {COVID_PIXEL_MM} mm pixels "
                           "assumed). 'cases' below count phantom CTs; the validation metric is on real slices.",
            "real_slices": len(covid_all), "evaluations": evaluations,
            "limitations": "50 real slices are very few; cross-validation figures are the honest estimate on "
                           "real data. Slices were 8-bit pictures, not HU, so real HU CTs differ from them. The "
                           "model does not know where the lungs are: restrict its output to a lung mask."})
        entry_out = publish_model(LESIONS, network, result, data, registry_path=bundled_registry_path(), version="1.0.0")
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
    parser.add_argument("--cohort", type=Path, action="append", required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--samples", type=int, default=3, help="3D patches per case and epoch (lungs)")
    parser.add_argument("--folds", type=int, default=3, help="cross-validation folds over the real slices (lesions)")
    parser.add_argument("--covid-repeat", type=int, default=4)
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
