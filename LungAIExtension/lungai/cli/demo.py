"""``lungai demo``: the main analysis on the built-in synthetic chest CT, checked against its exact truth."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any, Dict, Tuple

import click
import numpy as np

from lungai.cli.common import emit, settings
from lungai.io import read_image, read_segmentation, write_json

PRESETS = ("covid-mild", "covid-moderate", "covid-severe", "bacterial", "healthy")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else round(2.0 * int(np.logical_and(a, b).sum()) / total, 4)


@contextlib.contextmanager
def _step(name: str, timings: Dict[str, float]):
    click.echo(f"== {name}", err=True)
    started = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - started, 2)


@click.command()
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"),
              show_default=True, help="Folder for the phantom, every output and the report.")
@click.option("--preset", type=click.Choice(PRESETS), default="covid-moderate", show_default=True,
              help="Which synthetic patient to analyse.")
@click.option("--seed", type=int, default=7, show_default=True, help="Phantom seed (same seed, same patient).")
@click.option("--size", nargs=3, type=int, default=(256, 256, 120), show_default=True,
              help="Phantom size (i j k); 512 512 300 for a full-size scan.")
@click.option("--spacing", nargs=3, type=float, default=(1.4, 1.4, 2.5), show_default=True,
              help="Phantom voxel spacing in mm (i j k).")
@click.pass_context
def demo(ctx: click.Context, outdir: Path, preset: str, seed: int, size: Tuple[int, int, int],
         spacing: Tuple[float, float, float]) -> None:
    """Make a synthetic pneumonia chest CT with exact ground truth, segment the lungs, analyse the lesions and
    write the clinical report (OUTDIR/pneumonia/report.html), then score every result against the truth.

    Runs offline in about a minute on a laptop CPU and opens nothing.
    """
    from lungai.phantom import PhantomConfig, make_phantom, save_case

    from lungai.cli.lungs import lungs as lungs_command
    from lungai.cli.pneumonia import analyze as pneumonia_command

    timings: Dict[str, float] = {}
    outdir.mkdir(parents=True, exist_ok=True)
    with _step("phantom: synthetic chest CT with ground truth", timings):
        case = make_phantom(PhantomConfig(seed=seed, size=size, spacing=spacing, preset=preset))
        save_case(case, outdir / "phantom")
    ct_path = outdir / "phantom" / "ct.nii.gz"
    json_mode = settings().json_output
    settings().json_output = False
    try:
        with contextlib.redirect_stdout(sys.stderr):
            with _step("lungs: right/left lung, airways, zones", timings):
                ctx.invoke(lungs_command, input_path=ct_path, outdir=outdir / "lungs")
            with _step("pneumonia: lesions, involvement, histograms, per-patient call, report", timings):
                ctx.invoke(pneumonia_command, input_path=ct_path, outdir=outdir / "pneumonia",
                           lungs_path=outdir / "lungs" / "lungs.nii.gz")
    finally:
        settings().json_output = json_mode
    summary = _score(case, outdir)
    summary["seconds"] = timings
    summary["outputs"] = {"report": str((outdir / "pneumonia" / "report.html").resolve()),
                          "lungs": str((outdir / "lungs" / "lungs.seg.nrrd").resolve()),
                          "lesions": str((outdir / "pneumonia" / "lesions.seg.nrrd").resolve()),
                          "phantom": str((outdir / "phantom").resolve()),
                          "summary": str((outdir / "demo_summary.json").resolve())}
    write_json(summary, outdir / "demo_summary.json")
    emit(summary, _human(summary))


def _score(case: Any, outdir: Path) -> Dict[str, Any]:
    """Dice of the lungs and lesions, and involvement, against the phantom's exact truth."""
    import json

    truth_lungs = np.asarray(case.truth["lungs"].array)
    found_lungs = read_image(outdir / "lungs" / "lungs.nii.gz", check="none").array
    results = json.loads((outdir / "pneumonia" / "results.json").read_text(encoding="utf-8"))
    truth_lesions = np.asarray(case.truth["lesion_class"].array) > 0
    scores: Dict[str, Any] = {"preset": case.info.get("preset"), "seed": case.info.get("seed"),
                              "dice_right_lung": _dice(found_lungs == 1, truth_lungs == 1),
                              "dice_left_lung": _dice(found_lungs == 2, truth_lungs == 2),
                              "truth_lesions": len(case.info.get("lesions", [])),
                              "patient_call": results["patient_call"]["positive"]}
    found_lesions, _ = read_segmentation(outdir / "pneumonia" / "lesions.seg.nrrd", reference=case.ct)
    found = np.asarray(found_lesions.array) > 0
    scores["dice_lesions"] = _dice(found, truth_lesions)
    scores["found_lesions"] = results["summary"]["lesion_count"]
    truth_ids = np.asarray(case.truth["lesions"].array)
    scores["placed_lesions_hit"] = int(np.unique(truth_ids[found & (truth_ids > 0)]).size)
    scores["percent_opacity"] = results["summary"]["percent_opacity"]
    scores["truth_percent_opacity"] = case.info["involvement_percent"]["total"]["any"]
    return scores


def _human(s: Dict[str, Any]) -> str:
    lines = [f"LungAI demo on the synthetic {s['preset']} chest CT (seed {s['seed']})",
             f"  lungs: Dice right {s['dice_right_lung']:.3f}, left {s['dice_left_lung']:.3f} against the truth",
             f"  lesions: {s['found_lesions']} reported (touching ones join), {s['placed_lesions_hit']} of"
             f" {s['truth_lesions']} placed hit"
             + f", Dice {s['dice_lesions']:.3f}",
             f"  opacity: {s['percent_opacity']:.1f} % of the lungs (truth {s['truth_percent_opacity']:.1f} %)",
             f"  per-patient call: {'positive' if s['patient_call'] else 'negative'}",
             f"  report: {s['outputs']['report']}",
             "  time: " + ", ".join(f"{k.split(':')[0]} {v:.1f} s" for k, v in s["seconds"].items())]
    return "\n".join(lines)
