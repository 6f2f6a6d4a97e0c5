"""Chest X-ray classifier figures: patient-grouped k-fold cross-validation of the training recipe on the real
Kermany radiographs, and the shipped model's inference time per image on the CPU.

    nice -n 10 /work/venv/bin/python Testing/benchmarks/eval_xray.py            # 5 folds, ~15 min on 2 cores
    /work/venv/bin/python Testing/benchmarks/eval_xray.py --timing-only         # inference time only

Writes benchmark-out/xray-cv.json (used by ``python -m lungai.xray.release --cv``) and prints the figures beside
the published ones (Kermany et al. 2018: 92.8 % normal vs pneumonia, 90.7 % bacterial vs viral, on their own
624-image test split with an ImageNet-pretrained network trained on 5232 images: not comparable one to one).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cxr" / "kermany-224"


def timing(data: Path, repeats: int) -> dict:
    """Per-image wall time of read + checks + classification + Grad-CAM with the registered model."""
    from lungai.xray.classifier import XrayClassifier, classify_file

    files = sorted(data.glob("*/*.jpeg"))[:repeats]
    started = time.perf_counter()
    classifier = XrayClassifier.from_registry()
    load_seconds = time.perf_counter() - started
    classify_file(files[0], classifier)  # warm-up
    seconds = []
    for path in files:
        t0 = time.perf_counter()
        classify_file(path, classifier)
        seconds.append(time.perf_counter() - t0)
    return {"model": f"{classifier.model_name}@{classifier.model_version}", "images": len(seconds),
            "model_load_s": round(load_seconds, 3), "mean_s": round(float(np.mean(seconds)), 4),
            "max_s": round(float(np.max(seconds)), 4), "threads": torch.get_num_threads()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmark-out" / "xray-cv.json")
    parser.add_argument("--timing-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.data.is_dir():
        print(f"data folder {args.data} is absent", file=sys.stderr)
        return 2
    if args.timing_only:
        print(json.dumps(timing(args.data, 40), indent=2))
        return 0

    from lungai.xray.dataset import load_radiograph_folder
    from lungai.xray.release import PUBLISHED, flat_figures
    from lungai.xray.training import TrainSettings, cross_validate

    settings = TrainSettings(epochs=args.epochs, seed=args.seed)
    data = load_radiograph_folder(args.data, settings.network.input_size)
    started = time.perf_counter()
    cv = cross_validate(data, args.folds, settings, log=lambda m: print(m, flush=True))
    summary = flat_figures(cv.report)
    summary["expected calibration error before temperature scaling"] = round(cv.report_uncalibrated["ece"], 4)
    result = {"data": str(args.data), "images": len(data), "patients": len(set(data.patients)),
              "folds": args.folds, "settings": settings.to_dict(), "seconds": round(time.perf_counter() - started),
              "summary": summary, "per_fold": cv.folds, "report": cv.report,
              "report_uncalibrated": cv.report_uncalibrated, "published": PUBLISHED,
              "out_of_fold": [{"file": f, "label": int(y), "fold": int(k), "probabilities": p.round(4).tolist()}
                              for f, y, k, p in zip(data.files, data.labels, cv.fold_of, cv.probabilities)]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\n{args.folds}-fold patient-grouped cross-validation, {len(data)} images, {result['seconds']} s")
    for key, value in summary.items():
        print(f"  {key:<55} {value}")
    print(f"  published (Kermany 2018, own test split): normal vs pneumonia {PUBLISHED['normal_vs_pneumonia_accuracy']}, "
          f"bacterial vs viral {PUBLISHED['bacterial_vs_viral_accuracy']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
