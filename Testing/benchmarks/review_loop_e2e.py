"""End to end review loop on phantom cases: AI proposes, a simulated annotator corrects, the model is retrained,
and the correction effort goes down across two rounds.

    nice -n 10 python Testing/benchmarks/review_loop_e2e.py --work /tmp/review-e2e

Everything runs through the ``lungai`` command line (as the LungAIReview module does) with a private model cache
(``LUNGAI_HOME=<work>/home``), so nothing touches the user's models. Steps:

0. a deliberately weak first lung model (v1.0.0) is trained briefly on two phantom cases;
1. round 1: v1 proposes on new phantom cases; the simulated annotator corrects each proposal to the phantom's exact
   truth (saved as a .seg.nrrd, as Slicer would), submits; a reviewer approves;
2. ``lungai review retrain`` exports the approved cases and fine-tunes the model into v1.1.0;
3. round 2: v1.1.0 proposes on further new cases, which are corrected and approved the same way;
4. ``lungai review agreement`` writes the per-model table and plot; the script prints the edited fraction and
   Dice per model version and the ratio round 2 / round 1 (below 1 = less to correct).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ARCH = {
    "name": "lungs-e2e", "task": "lungs",
    "description": "Review-loop demonstration model: a tiny 3D U-Net at 6 mm (not for clinical use).",
    "architecture": {"name": "UNet", "params": {"channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 1}},
    "spatial_dims": 3, "spacing": [6.0, 6.0, 6.0], "patch_size": [64, 64, 48], "orientation": "LPS",
    "normalization": {"type": "ct_window", "window": [-1000, 400]}, "output": "softmax",
    "labels": {"0": "background", "1": "right_lung", "2": "left_lung", "3": "airways"},
    "inference": {"overlap": 0.25, "sw_batch_size": 1, "blend": "gaussian", "tta_axes": []},
    "license": "Apache-2.0",
}
SIZE, SPACING = (96, 96, 56), (3.6, 3.6, 5.0)


def cli(*args: str) -> dict:
    from lungai.cli.main import main
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["--json", "--progress", "none", *args])
    if code != 0:
        raise SystemExit(f"lungai {' '.join(args)} failed with exit code {code}")
    text = buffer.getvalue().strip()
    return json.loads(text[text.rfind("\n{") + 1:] if "\n{" in text else text) if text else {}


def make_cases(folder: Path, seeds: list) -> list:
    from lungai.phantom import PhantomConfig, make_phantom, save_case

    paths = []
    for seed in seeds:
        case = make_phantom(PhantomConfig(seed=seed, size=SIZE, spacing=SPACING,
                                          preset=("healthy", "covid-moderate", "covid-severe")[seed % 3]))
        save_case(case, folder / f"case{seed}")
        paths.append(folder / f"case{seed}")
    return paths


def annotate_round(store: Path, cases: list, model: str, annotator: str) -> None:
    """Add cases, let the model propose, correct each proposal to the truth, submit and approve."""
    from lungai.io import read_image, write_segmentation
    from lungai.labels import LUNG_LABELS, segments_for

    for case in cases:
        cli("review", "add", str(store), str(case / "ct.nii.gz"), "--case-id", case.name)
        cli("review", "propose", str(store), case.name, "--method", "model", "--model", model)
        truth = read_image(case / "truth" / "lungs.nii.gz", check="none")
        correction = case / "correction.seg.nrrd"
        write_segmentation(truth, segments_for(LUNG_LABELS), correction)
        cli("review", "save", str(store), case.name, str(correction), "--annotator", annotator,
            "--note", "corrected to the phantom truth")
        cli("review", "submit", str(store), case.name, "--user", annotator)
        cli("review", "approve", str(store), case.name, "--user", "reviewer")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("review-e2e-out"))
    parser.add_argument("--cases-per-round", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    os.environ["LUNGAI_HOME"] = str(args.work / "home")
    import torch

    torch.set_num_threads(2)
    started = time.perf_counter()
    n = args.cases_per_round
    from lungai.models.datasets import convert_phantom_cohort
    from lungai.phantom import make_cohort

    make_cohort(args.work / "seed-cohort", 2, seed=500, size=SIZE, spacing=SPACING)
    seed_data = convert_phantom_cohort(args.work / "seed-cohort", args.work / "seed-data", "lungs", folds=2)
    template = args.work / "template.json"
    template.write_text(json.dumps(ARCH))
    cli("models", "train", "lungs-e2e", "--template", str(template), "--data", str(seed_data), "--epochs", "2",
        "--samples-per-case", "2", "--patience", "2")
    store = args.work / "store"
    cli("review", "init", str(store), "--task", "lungs")
    round1 = make_cases(args.work / "round1", list(range(10, 10 + n)))
    annotate_round(store, round1, "lungs-e2e", "annotator-1")
    trained = cli("review", "retrain", str(store), "--model", "lungs-e2e", "--epochs", str(args.epochs))
    round2 = make_cases(args.work / "round2", list(range(30, 30 + n)))
    annotate_round(store, round2, "lungs-e2e", "annotator-2")
    result = cli("review", "agreement", str(store), "-o", str(args.work / "agreement"))
    by_model = result["by_model"]
    print(f"review loop on {2 * n} phantom cases in {time.perf_counter() - started:.0f} s "
          f"(retrained to {trained.get('model')} {trained.get('version')})")
    for row in by_model:
        print(f"  {row['model']} {row['model_version']}: {row['cases']} cases, Dice proposal vs corrected "
              f"{row['mean_dice']:.3f}, voxels edited {100 * row['mean_edited_fraction']:.1f}%")
    if len(by_model) >= 2:
        ratio = by_model[-1]["mean_edited_fraction"] / max(by_model[0]["mean_edited_fraction"], 1e-9)
        print(f"  correction effort round 2 / round 1: {ratio:.2f} (below 1 = less to correct)")
    print(f"  plot: {result['outputs']['agreement.png']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
