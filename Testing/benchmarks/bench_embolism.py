"""Time ``detect_emboli`` on a 512x512x300 CTPA with 2 torch threads.

    nice -n 10 python Testing/benchmarks/bench_embolism.py [--cohort /tmp/lungai-pe-cohort] [--model NAME]

The scan is a phantom CTPA of the test cohort (seed 9000, made and cached if absent) resampled (linear) to
512 x 512 x 300 voxels of 0.625 x 0.625 x 0.933 mm, the size of a clinical CTPA. Target: under 60 s on 2 CPU
cores. The scorer is the one picked for that spacing (the fine-grid scorer, working on 1 x 1 x 1.25 mm, when
installed) unless ``--model`` names one (``embolism-candidates``: the 1.6 x 1.6 x 2 mm working grid).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import SimpleITK as sitk
import torch

from lungai.embolism import detect_emboli
from lungai.embolism.cohort import cohort
from lungai.image import Image
from lungai.progress import Progress

SIZE = (512, 512, 300)


def _scan(folder: Path):
    """The first positive test case, resampled to ``SIZE`` over the same field of view."""
    case = next(iter(cohort(folder, "test", 1, 0)))
    ct = case.ct
    spacing = [n * s / m for n, s, m in zip(ct.size, ct.spacing, SIZE)]
    reference = sitk.Image([int(v) for v in SIZE], sitk.sitkFloat32)
    reference.SetSpacing(spacing)
    reference.SetOrigin(ct.origin)
    reference.SetDirection(tuple(ct.direction.ravel()))
    big = sitk.Resample(ct.to_sitk(), reference, sitk.Transform(), sitk.sitkLinear, -1024.0)
    return Image.from_sitk(big, {"source": f"{case.name} resampled to {SIZE}"}), case


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", type=Path, default=Path("/tmp/lungai-pe-cohort"))
    parser.add_argument("--model", help="scorer as registry name[@version] [default: picked by spacing]")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    image, case = _scan(args.cohort)
    steps = []
    progress = Progress(lambda f, m: steps.append((round(time.perf_counter() - t0, 2), round(f, 3), m)))
    t0 = time.perf_counter()
    result = detect_emboli(image, model=args.model, progress=progress)
    seconds = time.perf_counter() - t0
    print(json.dumps({"size": list(image.size), "spacing_mm": [round(s, 4) for s in image.spacing],
                      "seconds": round(seconds, 1), "target_seconds": 60,
                      "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
                      "model": f"{result.provenance.model_name}@{result.provenance.model_version}",
                      "working_grid_mm": result.provenance.parameters["working_grid_mm"],
                      "candidates": len(result.candidates), "accepted": len(result.accepted),
                      "truth_emboli": len(case.records), "steps": steps}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
