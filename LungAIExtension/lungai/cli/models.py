"""``lungai models``: list, inspect, download, import, verify, remove, run and train registry models."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional, Tuple

import click

from lungai.cli.common import emit, progress_reporter, resolve_device, settings
from lungai.errors import LungAIError


def _entries(name: Optional[str], all_versions: bool):
    from lungai.models import get_model, load_registry

    if name:
        return [get_model(name)] if not all_versions else [e for e in load_registry() if e.name == name.split("@")[0]]
    entries = load_registry()
    if all_versions:
        return entries
    newest = {}
    for e in entries:  # sorted by version, so the last one wins
        newest[e.name] = e
    return list(newest.values())


@click.group()
def models() -> None:
    """Models: registry, weights in the user cache (offline-first), inference and training.

    Nothing is downloaded unless you run `lungai models download`. Offline sites copy the weights file by hand
    and run `lungai models import NAME FILE_OR_FOLDER`. The cache is $LUNGAI_HOME/models (default
    ~/.cache/lungai/models).
    """


@models.command("list")
@click.option("--all-versions", is_flag=True, help="Show every version, not only the newest of each model.")
def list_models(all_versions: bool) -> None:
    """Every model with its version, task and weights status (ok, missing or corrupt)."""
    from lungai.models import verify_weights

    rows = []
    for entry in _entries(None, all_versions):
        status = verify_weights(entry)
        rows.append({"name": entry.name, "version": entry.version, "task": entry.task,
                     "status": status.state, "location": status.location, "origin": entry.origin,
                     "size_mb": round(int(entry.weights["size"]) / 1e6, 2), "sha256": entry.sha256,
                     "license": entry.license, "path": str(status.path) if status.path else None})
    lines = [f"{'model':<22} {'version':<8} {'task':<10} {'status':<8} {'where':<8} {'MB':>6}  licence"]
    for r in rows:
        lines.append(f"{r['name']:<22} {r['version']:<8} {r['task']:<10} {r['status']:<8} "
                     f"{r['location'] or '-':<8} {r['size_mb']:>6.2f}  {r['license']}")
    if not rows:
        lines.append("(the registry lists no models)")
    emit({"models": rows}, "\n".join(lines))


@models.command()
@click.argument("name")
def info(name: str) -> None:
    """Registry entry, weights status and model card of NAME (or NAME@VERSION)."""
    from lungai.models import get_model, verify_weights

    entry = get_model(name)
    status = verify_weights(entry)
    card = entry.card_path
    card_text = card.read_text(encoding="utf-8") if card and card.is_file() else "(model card missing)"
    result = {"entry": entry.to_dict(), "weights_status": status.to_dict(),
              "card_path": str(card) if card else None}
    emit(result, f"{entry.id} [{status.state}{' at ' + str(status.path) if status.path else ''}]\n\n{card_text}")


@models.command()
@click.argument("name")
@click.option("--url", help="Download from this address instead of the registry's (a mirror).")
@click.option("--force", is_flag=True, help="Download again even if verified weights are in the cache.")
def download(name: str, url: Optional[str], force: bool) -> None:
    """Download the weights of NAME into the user cache (SHA256-checked; nothing is kept on a mismatch)."""
    from lungai.models import download_weights, get_model

    entry = get_model(name)
    with progress_reporter(f"download {entry.name}") as progress:
        path = download_weights(entry, progress, url=url, force=force)
    emit({"model": entry.name, "version": entry.version, "outputs": {"weights": str(path.resolve())}},
         f"{entry.id}: weights verified and stored at {path}")


@models.command("import")
@click.argument("name")
@click.argument("source", type=click.Path(path_type=Path))
def import_(name: str, source: Path) -> None:
    """Import the weights of NAME from a local FILE or a FOLDER holding it (offline sites); SHA256-checked."""
    from lungai.models import get_model, import_weights

    entry = get_model(name)
    with progress_reporter(f"import {entry.name}") as progress:
        path = import_weights(entry, source, progress)
    emit({"model": entry.name, "version": entry.version, "outputs": {"weights": str(path.resolve())}},
         f"{entry.id}: weights verified and imported to {path}")


@models.command()
@click.argument("name", required=False)
@click.option("--all-versions", is_flag=True, help="Check every version, not only the newest.")
def verify(name: Optional[str], all_versions: bool) -> None:
    """Check size and SHA256 of the weights of NAME (default: every model). Exit 1 if any is corrupt."""
    from lungai.models import verify_weights

    statuses = [verify_weights(e) for e in _entries(name, all_versions)]
    lines = [f"{s.entry.id:<30} {s.state:<8} {s.path or ''} {s.detail}" for s in statuses]
    emit({"models": [s.to_dict() for s in statuses]}, "\n".join(lines) or "(no models)")
    bad = [s for s in statuses if s.state == "corrupt" or (name and s.state != "ok")]
    if bad:
        raise LungAIError("weights not usable: " + ", ".join(f"{s.entry.id} {s.state}" for s in bad))


@models.command()
@click.argument("name")
def remove(name: str) -> None:
    """Delete the cached weights of NAME (shipped weights are kept; the registry is unchanged)."""
    from lungai.models import get_model, remove_weights

    entry = get_model(name)
    removed = remove_weights(entry)
    emit({"model": entry.name, "version": entry.version, "removed": str(removed) if removed else None},
         f"removed {removed}" if removed else f"{entry.id}: no cached weights to remove")


@models.command()
@click.argument("name")
@click.argument("input_path", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), required=True,
              help="Output file: .seg.nrrd (segmentation), .nrrd, .nii.gz or .mha.")
@click.option("--tta", is_flag=True, help="Average over test-time flips (slower, sometimes more robust).")
@click.option("--check", type=click.Choice(["ct", "volume", "none"]), default="volume", show_default=True,
              help="Input checks, as for `lungai info`.")
def predict(name: str, input_path: Path, output: Path, tta: bool, check: str) -> None:
    """Run model NAME on INPUT_PATH and write its label map (or output image) with provenance in the header."""
    from lungai.io import Segment, read_image, write_image, write_segmentation
    from lungai.models import get_model, run_inference
    from lungai.terminology import STRUCTURES

    entry = get_model(name)
    image = read_image(input_path, check=check)
    with progress_reporter(f"{entry.name}") as progress:
        result = run_inference(image, entry, device=resolve_device(settings().device), tta_flips=tta,
                               progress=progress)
    meta = result.provenance.header_fields()
    if result.labels is not None and output.name.lower().endswith(".seg.nrrd"):
        segments = [Segment.from_structure(v, k) if k in STRUCTURES else Segment(v, k, (0.8, 0.5, 0.2))
                    for v, k in sorted(entry.labels.items()) if v != 0]
        write_segmentation(result.labels, segments, output, metadata=meta)
    else:
        write_image(result.labels if result.labels is not None else result.output, output, metadata=meta)
    summary = {"model": entry.name, "version": entry.version, "provenance": result.provenance.to_dict(),
               "seconds": round(result.seconds, 2), "outputs": {"result": str(output.resolve())}}
    emit(summary, f"{entry.id} -> {output} in {result.seconds:.1f} s (weights {entry.sha256[:12]}...)")


@models.command()
@click.argument("name")
@click.option("--data", "data", type=click.Path(path_type=Path), multiple=True, required=True,
              help="nnU-Net v2 data set folder (repeat to combine several).")
@click.option("--template", type=click.Path(path_type=Path), help="JSON registry entry for a new model "
              "(architecture, spacing, patch, labels...); default: the registered NAME.")
@click.option("--from-scratch", is_flag=True, help="Start from random weights instead of NAME's weights.")
@click.option("--fold", default=0, show_default=True, help="Fold of splits_final.json used for validation.")
@click.option("--epochs", default=30, show_default=True)
@click.option("--batch-size", default=2, show_default=True)
@click.option("--lr", default=1e-3, show_default=True)
@click.option("--patience", default=8, show_default=True, help="Stop after this many epochs without improvement.")
@click.option("--seed", default=0, show_default=True)
@click.option("--samples-per-case", default=8, show_default=True, help="Random patches per case and epoch.")
@click.option("--checkpoint-dir", type=click.Path(path_type=Path), help="Default: <cache>/checkpoints/NAME-<hash of the run's settings>.")
@click.option("--no-resume", is_flag=True, help="Ignore an existing checkpoint and start over.")
@click.option("--registry", type=click.Path(path_type=Path), help="Publish into this registry file "
              "(default: the user registry in the cache).")
def train(name: str, data: Tuple[Path, ...], template: Optional[Path], from_scratch: bool, fold: int,
          epochs: int, batch_size: int, lr: float, patience: int, seed: int, samples_per_case: int,
          checkpoint_dir: Optional[Path], no_resume: bool, registry: Optional[Path]) -> None:
    """Train or fine-tune segmentation model NAME on nnU-Net data set folders and publish a new version.

    The review loop's export (`lungai review export`) and converted phantom cohorts are such folders.
    Checkpoints are written every epoch; running the same command again resumes.
    """
    import torch

    from lungai.models import get_model, verify_weights
    from lungai.models.datasets import read_nnunet_dataset
    from lungai.models.registry import ModelEntry, cache_dir
    from lungai.models.segmentation_training import dataset_description, prepare_cases, train_segmentation
    from lungai.models.training import TrainConfig, publish_model

    torch.set_num_threads(min(2, torch.get_num_threads()))
    if template:
        fields = json.loads(template.read_text(encoding="utf-8"))
        fields.setdefault("name", name)
        entry = ModelEntry.from_dict(dict(fields, version="0.0.0", weights={"file": "none.pt", "sha256": "0" * 64,
                                                                            "size": 1}, card=""))
        from_scratch = True
    else:
        entry = get_model(name)
    init_state, parent = None, None
    if not from_scratch:
        if verify_weights(entry).state != "ok":
            raise click.UsageError(f"{entry.id} has no verified weights to fine-tune; download or import them, "
                                   "or pass --from-scratch")
        from lungai.models import load_network
        init_state = {k: v.cpu() for k, v in load_network(entry, "cpu", cache=False).state_dict().items()}
        parent = entry.id
    datasets = [read_nnunet_dataset(folder) for folder in data]
    train_cases, val_cases = [], []
    device = resolve_device(settings().device)
    with progress_reporter(f"train {entry.name}") as progress:
        prep = progress.span(0.0, 0.1)
        for index, ds in enumerate(datasets):
            tr, va = ds.split(fold, seed=seed)
            part = prep.span(index / len(datasets), (index + 1) / len(datasets))
            train_cases += prepare_cases(tr, entry, seed=seed, progress=part.span(0, 0.8))
            val_cases += prepare_cases(va, entry, seed=seed, progress=part.span(0.8, 1.0))
        run_key = json.dumps([parent or "scratch", [str(d.folder.resolve()) for d in datasets], fold, epochs,
                              batch_size, lr, patience, seed, samples_per_case, entry.architecture])
        run_id = hashlib.sha256(run_key.encode()).hexdigest()[:10]
        ckpt = checkpoint_dir or cache_dir() / "checkpoints" / f"{entry.name}-{run_id}"
        config = TrainConfig(max_epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, patience=patience,
                             checkpoint_dir=ckpt, device=device, resume=not no_resume)
        log = (lambda m: click.echo(m, err=True)) if settings().progress != "json" else None
        network, result = train_segmentation(entry, train_cases, val_cases, config, samples_per_case=samples_per_case,
                                             flip_axes=entry.inference.get("tta_axes", ()), init_state=init_state,
                                             progress=progress.span(0.1, 1.0), log=log)
    template_fields = dict(entry.to_dict(), parent=parent)
    published = publish_model(template_fields, network, result, dataset_description(datasets, train_cases, val_cases),
                              registry_path=registry)
    emit({"model": published.name, "version": published.version, "best_metric": result.best_metric,
          "metric": result.metric_name, "epochs_run": result.epochs_run, "seconds": result.seconds,
          "outputs": {"card": str(published.card_path.resolve()) if published.card_path else None,
                      "checkpoint_dir": str(Path(ckpt).resolve())}},
         f"published {published.id}: best val {result.metric_name} {result.best_metric:.4f} at epoch "
         f"{result.best_epoch} ({result.seconds:.0f} s); card {published.card_path}")


@models.command("cohort-to-dataset")
@click.argument("cohort", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder in which Dataset<ID>_<Name>/ is written.")
@click.option("--target", type=click.Choice(["lungs", "lesion_class"]), default="lungs", show_default=True)
@click.option("--id", "dataset_id", default=900, show_default=True, help="nnU-Net data set number.")
@click.option("--folds", default=5, show_default=True, help="Folds written to splits_final.json.")
def cohort_to_dataset(cohort: Path, out_dir: Path, target: str, dataset_id: int, folds: int) -> None:
    """Turn a phantom COHORT (`lungai phantom` output) into an nnU-Net data set for `lungai models train`."""
    from lungai.models.datasets import convert_phantom_cohort, read_nnunet_dataset

    folder = convert_phantom_cohort(cohort, out_dir, target, dataset_id=dataset_id, folds=folds)
    n = len(read_nnunet_dataset(folder).cases)
    emit({"dataset": str(folder.resolve()), "cases": n, "outputs": {"dataset": str(folder.resolve())}},
         f"wrote {folder} ({n} cases, target {target})")
