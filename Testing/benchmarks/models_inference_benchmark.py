"""Time and peak memory of the shipped models on the real 512x512x141 chest CT (CPU).

    nice -n 10 python Testing/benchmarks/models_inference_benchmark.py [--threads 2] [--tta]

Prints, per model: seconds, peak resident memory of the process (MB), and the labels found.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch

from lungai.io import read_image
from lungai.models import get_model, load_network, run_inference

CHEST = Path(__file__).resolve().parents[3] / "shared" / "data" / "ct" / "chest-ct-141" / "ct.nii.gz"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--models", nargs="*", default=["lungs-unet", "lesions-unet2d"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    image = read_image(CHEST)
    print(f"input {CHEST.name}: {image.size} voxels at {tuple(round(s, 3) for s in image.spacing)} mm; "
          f"peak memory after reading {peak_mb():.0f} MB")
    for name in args.models:
        entry = get_model(name)
        load_network(entry)
        t0 = time.perf_counter()
        result = run_inference(image, entry, tta_flips=args.tta)
        seconds = time.perf_counter() - t0
        values, counts = np.unique(result.labels.array, return_counts=True)
        volumes = {entry.labels[int(v)]: round(float(c) * image.voxel_volume_ml, 1) for v, c in zip(values, counts)
                   if v != 0}
        print(f"{entry.id}: {seconds:.1f} s with {args.threads} thread(s){' and TTA' if args.tta else ''}, "
              f"peak memory {peak_mb():.0f} MB, volumes (ml) {volumes}")


if __name__ == "__main__":
    main()
