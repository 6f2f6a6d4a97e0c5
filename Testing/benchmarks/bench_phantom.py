"""Time and peak memory of making one phantom (default: 512x512x300 at 0.7 x 0.7 x 1 mm, noise included).

Prints wall time, this process's CPU time (user + system, all threads), the machine's load average (timings on a
shared machine are only comparable at similar load) and the peak resident memory, then a per-stage breakdown
from the progress messages. Usage::

    nice -n 10 python Testing/benchmarks/bench_phantom.py [--size 512 512 300] [--spacing 0.7 0.7 1]
        [--preset covid-moderate] [--threads 2] [--save OUTDIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=3, default=(512, 512, 300))
    parser.add_argument("--spacing", type=float, nargs=3, default=(0.7, 0.7, 1.0))
    parser.add_argument("--preset", default="covid-moderate")
    parser.add_argument("--contrast", default="none")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save", default=None, help="also time save_case into this folder")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from lungai.phantom import PhantomConfig, make_phantom, save_case
    from lungai.progress import Progress

    stages = []

    def record(fraction: float, message: str) -> None:
        stage = message.split(" ")[0].rstrip(":")
        if not stages or stages[-1][0] != stage:
            stages.append((stage, time.perf_counter(), time.process_time()))

    cfg = PhantomConfig(seed=args.seed, size=tuple(args.size), spacing=tuple(args.spacing), preset=args.preset,
                        contrast=args.contrast)
    load_before = os.getloadavg()[0]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    case = make_phantom(cfg, Progress(record))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    voxels = int(case.ct.array.size)
    print(f"phantom {cfg.preset} {tuple(cfg.size)} at {tuple(cfg.spacing)} mm ({voxels / 1e6:.1f} M voxels), "
          f"{args.threads} torch threads")
    print(f"wall {wall:.1f} s | process CPU {cpu:.1f} s | load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs | peak memory {peak_gb:.2f} GB")
    ends = [(t, c) for _, t, c in stages[1:]] + [(wall0 + wall, cpu0 + cpu)]
    for (name, start, cstart), (end, cend) in zip(stages, ends):
        print(f"  {name:<12s} {end - start:6.1f} s wall {cend - cstart:6.1f} s CPU")
    print(f"lungs {case.info['lung_volume_ml']['total']:.0f} ml, {len(case.info['lesions'])} lesions, "
          f"{len(case.info['emboli'])} emboli")
    if args.save:
        t0 = time.perf_counter()
        save_case(case, args.save)
        print(f"save_case {time.perf_counter() - t0:.1f} s wall")


if __name__ == "__main__":
    main()
