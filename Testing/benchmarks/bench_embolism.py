"""Time ``detect_emboli`` on a 512x512x300 CTPA (phantom, 0.7 x 0.7 x 1.0 mm) with 2 torch threads.

    nice -n 10 python Testing/benchmarks/bench_embolism.py [--cache /tmp/lungai-pe-bench.npz]

Target: under 60 s on 2 CPU cores. The phantom is made once and cached (several minutes).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lungai.embolism import detect_emboli
from lungai.embolism.cohort import load_case
from lungai.progress import Progress

SIZE, SPACING = (512, 512, 300), (0.7, 0.7, 1.0)


def _case(cache: Path):
    if not cache.is_file():
        from lungai.embolism.cohort import _make

        print(f"making the {SIZE} phantom CTPA (once) ...", flush=True)
        np.savez_compressed(cache, **_make("pe", 77, SIZE, SPACING))
    return load_case(cache)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lungai-pe-bench.npz"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    case = _case(args.cache)
    steps = []
    progress = Progress(lambda f, m: steps.append((round(time.perf_counter() - t0, 2), round(f, 3), m)))
    t0 = time.perf_counter()
    result = detect_emboli(case.ct, progress=progress)
    seconds = time.perf_counter() - t0
    print(json.dumps({"size": list(case.ct.size), "spacing_mm": list(case.ct.spacing),
                      "seconds": round(seconds, 1), "target_seconds": 60,
                      "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
                      "candidates": len(result.candidates), "accepted": len(result.accepted),
                      "truth_emboli": len(case.records), "steps": steps}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
