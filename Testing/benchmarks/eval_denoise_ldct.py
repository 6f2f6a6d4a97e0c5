"""Low-dose CT on the real AAPM-Mayo pairs of ``shared/data/ldct``: dose-simulation calibration and denoising.

Usage (from the repository root; long runs with ``nice -n 10``)::

    python Testing/benchmarks/eval_denoise_ldct.py calibrate            # fit + report the dose simulation
    python Testing/benchmarks/eval_denoise_ldct.py train --fold L143     # CNN trained without patient L143
    python Testing/benchmarks/eval_denoise_ldct.py evaluate             # input / NLM / CNN per kernel, 2-fold

``calibrate`` fits the kernel transfer and noise gain of :mod:`lungai.denoise.dose` on all pairs (the printed
literal is what ``CALIBRATIONS`` holds), then reports, per pair, real versus simulated quarter-dose noise (std in
flat soft tissue; NPS mean frequency) both in-sample and leave-one-patient-out (calibrated on the other patient).
``evaluate`` reports PSNR/SSIM/RMSE in the [-160, 240] HU and lung (-600/1500) windows, noise std and edge
sharpness of the quarter-dose input, non-local means and the CNN, per kernel. The CNN for patient P is the one
trained without P (2-fold by patient: it never sees P's images, and never any real quarter-dose image).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("LUNGAI_SHARED_DATA", REPO.parent / "shared" / "data")) / "ldct"
WORK = Path(os.environ.get("LUNGAI_BENCH_DIR", REPO.parent / "bench-denoise"))
PATIENTS = ("L143", "L192")


def _pairs(**kw):
    from lungai.denoise.ldct import load_pairs

    return load_pairs(DATA, **kw)


def calibrate(args: argparse.Namespace) -> None:
    from lungai.denoise import dose

    pairs = _pairs()
    fitted = {g: dose.calibrate_kernel([p for p in pairs if p.kernel_group == g], g) for g in dose.KERNEL_GROUPS}
    print("# CALIBRATIONS literal for lungai/denoise/dose.py")
    for g, cal in fitted.items():
        print(f'    "{g}": KernelCalibration("{g}", "{cal.examples}", {tuple(float(v) for v in cal.frequencies)}, {tuple(float(v) for v in cal.transfer)}, '
              f"{cal.noise_gain}, {cal.typical_flux:.4g}, {cal.nps_mean_frequency:.4f}),")
    rows = []
    for mode in ("in-sample", "leave-one-patient-out"):
        for g in dose.KERNEL_GROUPS:
            for test in PATIENTS:
                if mode == "in-sample":
                    cal = fitted[g]
                else:
                    cal = dose.calibrate_kernel([p for p in pairs if p.kernel_group == g and p.patient != test], g)
                for p in [p for p in pairs if p.kernel_group == g and p.patient == test]:
                    r = dose.compare_pair(p, cal, seed=args.seed)
                    q_err = r.extra["sim_quarter_std"] / r.extra["real_quarter_std"] - 1
                    f_err = r.sim_mean_frequency / r.real_mean_frequency - 1
                    rows.append({"mode": mode, "kernel": p.kernel, "patient": p.patient,
                                 "quarter_std_real": r.extra["real_quarter_std"],
                                 "quarter_std_sim": r.extra["sim_quarter_std"], "quarter_std_error": q_err,
                                 "inserted_std_real": r.real_std, "inserted_std_sim": r.sim_std,
                                 "nps_mean_f_real": r.real_mean_frequency, "nps_mean_f_sim": r.sim_mean_frequency,
                                 "nps_mean_f_error": f_err, "nps_shape_l1": r.shape_difference})
    print(f"\n{'mode':22s} {'kernel':6s} {'pat':5s} {'QD std real':>11s} {'sim':>6s} {'err':>7s} "
          f"{'NPS f real':>10s} {'sim':>6s} {'err':>7s}")
    for r in rows:
        print(f"{r['mode']:22s} {r['kernel']:6s} {r['patient']:5s} {r['quarter_std_real']:11.1f} "
              f"{r['quarter_std_sim']:6.1f} {100 * r['quarter_std_error']:+6.1f}% {r['nps_mean_f_real']:10.3f} "
              f"{r['nps_mean_f_sim']:6.3f} {100 * r['nps_mean_f_error']:+6.1f}%")
    print("\nsummary: |error| median / max / share within 15%")
    for mode in ("in-sample", "leave-one-patient-out"):
        for kernel in ("B30f", "D45f"):
            sel = [r for r in rows if r["mode"] == mode and r["kernel"] == kernel]
            for key in ("quarter_std_error", "nps_mean_f_error"):
                e = np.abs([r[key] for r in sel])
                print(f"  {mode:22s} {kernel} {key:18s} {100 * np.median(e):5.1f}% / {100 * e.max():5.1f}% / "
                      f"{np.mean(e <= 0.15) * 100:5.1f}%")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("calibrate", help="fit and check the dose simulation on the real pairs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the per-pair table here")
    p.set_defaults(func=calibrate)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    if not DATA.is_dir():
        sys.exit(f"LDCT data folder {DATA} is absent")
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
