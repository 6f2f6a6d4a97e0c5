"""``lungai review``: the review and training loop from the command line."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import List, Optional, Tuple

import click

from lungai.cli.common import emit, progress_reporter, resolve_device, settings
from lungai.labels import LESION_LABELS, LOBE_LABELS, LUNG_LABELS
from lungai.review import ReviewStore, agreement_table, export_nnunet, next_case
from lungai.review.agreement import plot_agreement, summarize_by_model
from lungai.review.labels_io import read_correction
from lungai.review.selection import STRATEGIES

TASK_LABELS = {"lungs": LUNG_LABELS, "lobes": LOBE_LABELS, "lesions": LESION_LABELS}
STORE = click.argument("store", type=click.Path(path_type=Path, file_okay=False))


@click.group()
def review() -> None:
    """Keep AI proposals and every correction of a set of cases, export approved ones, retrain.

    A store is a plain folder (a shared drive works): every save adds a version, a per-case lock keeps two
    annotators from overwriting each other, and approved cases export as an nnU-Net v2 data set.
    """


@review.command()
@STORE
@click.option("--task", type=click.Choice(sorted(TASK_LABELS)), required=True, help="What the labels mark.")
@click.option("--description", default="", help="Free text kept in store.json.")
def init(store: Path, task: str, description: str) -> None:
    """Create an empty review store in STORE."""
    s = ReviewStore.create(store, task, TASK_LABELS[task], description)
    emit({"store": str(s.folder), "task": task, "labels": s.labels}, f"created review store {s.folder} ({task})")


@review.command()
@STORE
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--case-id", help="Case id (only with one image; default: the file name).")
@click.option("--user", default="admin", show_default=True)
def add(store: Path, images: Tuple[Path, ...], case_id: Optional[str], user: str) -> None:
    """Add IMAGES (CT files or DICOM folders) as new cases."""
    if case_id and len(images) > 1:
        raise click.UsageError("--case-id goes with a single image")
    s = ReviewStore(store)
    added = [s.add_case(path, case_id, user=user, check="ct").id for path in images]
    emit({"added": added}, "added " + ", ".join(added))


@review.command(name="list")
@STORE
def list_cases(store: Path) -> None:
    """List the cases with status, versions and assignment."""
    s = ReviewStore(store)
    rows = [{"case": r.id, "status": r.status, "assigned_to": r.assigned_to, "proposals": len(r.proposals),
             "versions": len(r.versions), "approved_version": r.approved_version.number if r.approved_version
             else None} for r in s.cases()]
    lines = [f"{'case':<20} {'status':<12} {'assigned':<12} proposals versions"] + [
        f"{r['case']:<20} {r['status']:<12} {str(r['assigned_to'] or '-'):<12} {r['proposals']:>9} {r['versions']:>8}"
        for r in rows]
    emit({"store": str(s.folder), "cases": rows}, "\n".join(lines))


@review.command()
@STORE
@click.argument("case_id")
@click.argument("labels", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--annotator", required=True, help="Who made this correction.")
@click.option("--time-spent", type=float, default=0.0, help="Seconds spent on this correction.")
@click.option("--note", default="")
def save(store: Path, case_id: str, labels: Path, annotator: str, time_spent: float, note: str) -> None:
    """Save LABELS (.seg.nrrd from Slicer, or a label map) as a new version of CASE_ID."""
    s = ReviewStore(store)
    correction = read_correction(labels, s.labels, reference=s.load_image(case_id))
    version = s.save_version(case_id, correction, annotator, time_spent, note)
    emit({"case": case_id, "version": version.number}, f"{case_id}: saved version {version.number}")


def _status_command(name: str, method: str, help_text: str, needs_note: bool = False) -> click.Command:
    @click.command(name=name, help=help_text)
    @STORE
    @click.argument("case_id")
    @click.option("--user", required=True, help="Annotator or reviewer name.")
    @click.option("--note", default="", required=needs_note)
    def command(store: Path, case_id: str, user: str, note: str) -> None:
        record = getattr(ReviewStore(store), method)(case_id, user, note)
        emit({"case": case_id, "status": record.status}, f"{case_id}: {record.status}")
    return command


review.add_command(_status_command("submit", "submit", "Submit the latest version of CASE_ID for review."))
review.add_command(_status_command("approve", "approve", "Approve the latest version of a submitted case."))
review.add_command(_status_command("send-back", "send_back", "Return a submitted case to its annotator.", True))
review.add_command(_status_command("reopen", "reopen", "Reopen an approved case for more corrections.", True))


@review.command()
@STORE
@click.argument("case_ids", nargs=-1)
@click.option("--method", default="auto", show_default=True,
              help="Segmentation method of the task (lungs: auto, classic, model, ...; lesions: classic, model).")
@click.option("--model", "model_name", help="Registry model name for --method model.")
@click.option("--tta/--no-tta", default=True, show_default=True,
              help="Also run on a left-right flipped copy to measure uncertainty (for `next --strategy uncertain`).")
def propose(store: Path, case_ids: Tuple[str, ...], method: str, model_name: Optional[str], tta: bool) -> None:
    """Let the AI propose labels for CASE_IDS (default: every case without a proposal)."""
    from lungai.review.propose import propose as run_proposal, segmenter_for

    s = ReviewStore(store)
    targets = list(case_ids) or [r.id for r in s.cases() if not r.proposals]
    segment = segmenter_for(s.task, method, model_name, resolve_device(settings().device))
    done = []
    with progress_reporter("AI proposals") as progress:
        for n, case_id in enumerate(targets):
            part = progress.span(n / max(1, len(targets)), (n + 1) / max(1, len(targets)))
            labels, provenance, uncertainty = run_proposal(s.load_image(case_id), segment, ((2,),) if tta else (),
                                                           part)
            proposal = s.add_proposal(case_id, labels, provenance, uncertainty)
            done.append({"case": case_id, "proposal": proposal.number, "uncertainty": uncertainty})
    emit({"proposals": done}, "\n".join(f"{d['case']}: proposal {d['proposal']}"
                                        + (f", uncertainty {d['uncertainty']:.3f}" if d["uncertainty"] is not None
                                           else "") for d in done) or "nothing to propose")


@review.command(name="next")
@STORE
@click.option("--strategy", type=click.Choice(STRATEGIES), default="least_reviewed", show_default=True)
@click.option("--annotator", help="Skip cases in progress with someone else.")
@click.option("--seed", type=int, help="For --strategy random.")
def next_cmd(store: Path, strategy: str, annotator: Optional[str], seed: Optional[int]) -> None:
    """Print the next case to annotate."""
    record = next_case(ReviewStore(store), strategy, annotator, seed)
    emit({"case": record.id if record else None, "strategy": strategy},
         record.id if record else "no open case left")


def _write_csv(rows: List[dict], path: Path) -> None:
    from lungai.io.atomic import atomic_output

    keys: List[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


@review.command()
@STORE
@click.option("-o", "--output", "out", type=click.Path(path_type=Path, file_okay=False), required=True)
def agreement(store: Path, out: Path) -> None:
    """AI proposal vs correction per case and per model version: CSV tables and a plot."""
    s = ReviewStore(store)
    rows = agreement_table(s)
    if not rows:
        raise click.ClickException("no case has both an AI proposal and a saved correction yet")
    summary = summarize_by_model(rows)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(rows, out / "agreement.csv")
    _write_csv(summary, out / "agreement_by_model.csv")
    plot_agreement(summary, out / "agreement.png")
    outputs = {name: str((out / name).resolve()) for name in ("agreement.csv", "agreement_by_model.csv",
                                                             "agreement.png")}
    emit({"cases": rows, "by_model": summary, "outputs": outputs},
         "\n".join(f"{m['model']} {m['model_version']}: {m['cases']} cases, Dice {m['mean_dice']:.3f}, "
                   f"edited {100 * m['mean_edited_fraction']:.1f}%" for m in summary))


@review.command()
@STORE
@click.option("-o", "--output", "out", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--dataset-id", type=click.IntRange(1, 999), default=501, show_default=True)
@click.option("--name", help="Data set name (default from the task).")
def export(store: Path, out: Path, dataset_id: int, name: Optional[str]) -> None:
    """Export approved cases as an nnU-Net v2 data set (imagesTr, labelsTr, dataset.json, splits)."""
    info = export_nnunet(ReviewStore(store), out, dataset_id, name)
    emit({**info, "outputs": {"dataset": info["folder"]}},
         f"exported {len(info['cases'])} approved cases to {info['folder']} (data set version "
         f"{info['dataset_version']})")


@review.command()
@STORE
@click.option("--model", "model_name", required=True, help="Registry model to fine-tune (e.g. lungs-unet).")
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--samples-per-case", type=int, default=8, show_default=True, help="Random patches per case and epoch.")
@click.option("--dataset-id", type=click.IntRange(1, 999), default=501, show_default=True)
@click.option("--from-scratch", is_flag=True, help="Start from random weights instead of the model's.")
@click.pass_context
def retrain(ctx: click.Context, store: Path, model_name: str, epochs: int, samples_per_case: int, dataset_id: int,
            from_scratch: bool) -> None:
    """Export the approved cases (STORE/exports) and train a new version of --model on them.

    The new version's model card names the exported data set and its version.
    """
    from lungai.cli.models import train

    s = ReviewStore(store)
    info = export_nnunet(s, s.folder / "exports", dataset_id)
    if not settings().json_output:
        click.echo(f"exported {len(info['cases'])} approved cases (data set version {info['dataset_version']})",
                   err=True)
    ctx.invoke(train, name=model_name, data=(Path(info["folder"]),), from_scratch=from_scratch, epochs=epochs,
               samples_per_case=samples_per_case)
