"""Train the shipped ``xray-pneumonia`` model and publish it (weights, SHA256, registry entry, model card).

    python -m lungai.xray.release --data ../shared/data/cxr/kermany-224 \\
        --registry Resources/Models/registry.json --cv benchmark-out/xray-cv.json

The labelled folder is split once into training and validation images (patient-grouped, class-stratified);
the validation images choose the epoch and the calibration temperature and are listed in the model card.
``--cv`` adds the cross-validated figures of ``Testing/benchmarks/eval_xray.py`` to the card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import click

from lungai.xray.classes import CLASS_NAMES
from lungai.xray.network import ARCHITECTURE
from lungai.xray.weights import MODEL_NAME

DATA_SOURCE = ("Kermany, Zhang, Goldbaum et al. 2018, Chest X-Ray Images (Pneumonia), Mendeley Data v2 / Cell "
               "172(5):1122; paediatric (1-5 years) frontal radiographs, Guangzhou Women and Children's Medical "
               "Center; subset resized to 224x224 JPEG")
PUBLISHED = {"normal_vs_pneumonia_accuracy": 0.928, "bacterial_vs_viral_accuracy": 0.907,
             "note": "Kermany et al. 2018, ImageNet-pretrained Inception V3 on 5232 training images, official "
                     "624-image test split"}


def entry_template(params: Dict[str, Any]) -> Dict[str, Any]:
    """Registry fields of the model, except version, weights, card (filled in by ``publish_model``)."""
    return {
        "name": MODEL_NAME, "task": "xray",
        "description": "Frontal chest radiograph -> calibrated probabilities of no pneumonia, bacterial and viral "
                       "pneumonia, with a Grad-CAM heat map; trained from scratch on paediatric radiographs.",
        "architecture": {"name": ARCHITECTURE, "params": params}, "spatial_dims": 2, "in_channels": 1,
        "out_channels": len(CLASS_NAMES), "spacing": None,
        "patch_size": [params["input_size"], params["input_size"]], "orientation": "LPS",
        "normalization": {"type": "zscore", "description": "0.5-99.5 percentile window to 0..1, anti-aliased "
                                                           "resize of the whole film to a square, per-image "
                                                           "z-score (lungai.xray.preprocess)"},
        "output": "classification", "labels": {str(i): name for i, name in enumerate(CLASS_NAMES)},
        "inference": {}, "license": "CC-BY-4.0 (weights; trained on CC BY 4.0 data)"}


def _evaluations(cv_file: Optional[Path], validation: Dict[str, Any]) -> Dict[str, Any]:
    evaluations: Dict[str, Any] = {"held-out validation split of this model (also used for epoch choice and "
                                   "calibration, so slightly optimistic)": validation}
    if cv_file is not None:
        cv = json.loads(Path(cv_file).read_text(encoding="utf-8"))
        evaluations[f"{cv['folds']}-fold patient-grouped cross-validation of the same recipe "
                    f"({cv['images']} images, Testing/benchmarks/eval_xray.py)"] = cv["summary"]
    evaluations["published reference (different data size and test split; not comparable one to one)"] = PUBLISHED
    return evaluations


def flat_figures(report: Dict[str, Any]) -> Dict[str, Any]:
    """The headline numbers of :func:`lungai.xray.evaluation.classification_report` as a flat table."""
    out = {"images": report["n"], "three-class accuracy": round(report["accuracy"], 4),
           "balanced accuracy": round(report["balanced_accuracy"], 4),
           "normal vs pneumonia accuracy": round(report["normal_vs_pneumonia"]["accuracy"], 4),
           "pneumonia sensitivity": round(report["normal_vs_pneumonia"]["sensitivity"], 4),
           "pneumonia specificity": round(report["normal_vs_pneumonia"]["specificity"], 4),
           "normal vs pneumonia AUC": round(report["normal_vs_pneumonia"]["auc"], 4),
           "bacterial vs viral accuracy (true pneumonias)": round(report["bacterial_vs_viral"]["accuracy"], 4),
           "bacterial vs viral AUC": round(report["bacterial_vs_viral"]["auc"], 4)}
    for name in CLASS_NAMES:
        out[f"sensitivity {name}"] = round(report["sensitivity"][name], 4)
        out[f"AUC {name} vs rest"] = round(report["auc_one_vs_rest"][name], 4)
    out["expected calibration error (10 bins)"] = round(report["ece"], 4)
    return out


@click.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder with labels.csv (file,label,subtype) and the radiographs.")
@click.option("--registry", type=click.Path(dir_okay=False, path_type=Path),
              help="Registry file to publish into (default: the user registry).")
@click.option("--cv", "cv_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Cross-validation JSON from Testing/benchmarks/eval_xray.py to put in the model card.")
@click.option("--epochs", default=40, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--val-fraction", default=0.2, show_default=True)
@click.option("--initial-weights", type=click.Path(dir_okay=False, path_type=Path),
              help="Start from these xray-resnet (or partly matching) weights instead of random ones.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Resumable checkpoints (default: none); a finished run there is reused, not repeated.")
@click.option("--train-only", is_flag=True, help="Train (into --checkpoint-dir) without publishing.")
def main(data_dir: Path, registry: Optional[Path], cv_file: Optional[Path], epochs: int, seed: int,
         val_fraction: float, initial_weights: Optional[Path], checkpoint_dir: Optional[Path],
         train_only: bool) -> None:
    """Train the X-ray classifier on DATA and publish it as a new xray-pneumonia version."""
    from lungai.models.training import publish_model
    from lungai.xray.dataset import load_radiograph_folder
    from lungai.xray.evaluation import classification_report
    from lungai.xray.training import TrainSettings, fit_classifier, predict_probabilities, validation_split

    if train_only and checkpoint_dir is None:
        raise click.UsageError("--train-only needs --checkpoint-dir to keep the trained network")
    settings = TrainSettings(epochs=epochs, seed=seed)
    data = load_radiograph_folder(data_dir, settings.network.input_size)
    train_index, val_index = validation_split(data, val_fraction, seed)
    train, val = data.subset(train_index), data.subset(val_index)
    network, result = fit_classifier(train, val, settings, checkpoint_dir=checkpoint_dir,
                                     initial_weights=initial_weights, log=lambda m: click.echo(m, err=True))
    report = classification_report(predict_probabilities(network, val.images), val.labels)
    if train_only:
        click.echo(json.dumps(flat_figures(report), indent=2))
        return
    counts = {name: int(c) for name, c in zip(CLASS_NAMES, data.class_counts())}
    description = {
        "name": data_dir.name, "source": DATA_SOURCE, "licence": "CC BY 4.0",
        "cases_train": len(train), "cases_val": len(val),
        "description": f"{len(data)} labelled radiographs ({counts}); one patient's films never on both sides of "
                       "the split. Augmentation: affine, grid distortion, gamma, intensity, blur/sharpen, noise. "
                       f"Class-balanced cross-entropy, temperature {float(network.temperature):.3f} fitted on the "
                       "validation images.",
        "patients": len(set(data.patients)), "training_settings": json.dumps(settings.to_dict()),
        "validation_files": sorted(val.files),
        "evaluations": _evaluations(cv_file, flat_figures(report)),
        "limitations": "Paediatric films from one centre, a few hundred training images: accuracy on adult "
                       "radiographs, other hospitals' processing, portable films or lateral views is unknown and "
                       "likely lower. Bacterial vs viral is a hard call even for radiologists. Research use only.",
    }
    if initial_weights is not None:
        description["initial_weights"] = str(initial_weights)
    entry = publish_model(entry_template(settings.network.to_dict()), network, result, description,
                          registry_path=registry)
    click.echo(f"published {entry.id}: weights {entry.weights_file} sha256 {entry.sha256}; card {entry.card_path}")
    click.echo(json.dumps(flat_figures(report), indent=2))


if __name__ == "__main__":
    main()
