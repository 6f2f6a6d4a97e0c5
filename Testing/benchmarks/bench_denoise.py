"""Denoising benchmarks: CNN speed on a full scan, and the lesion task measure on the phantom.

Usage (repository root; ``nice -n 10`` on a shared machine)::

    python Testing/benchmarks/bench_denoise.py speed [--slices 300] [--threads 2]
    python Testing/benchmarks/bench_denoise.py task [--seeds 1 3 4 7] [--dose 0.25] [--weights RUN/best.pt ...]
    python Testing/benchmarks/bench_denoise.py regions [--seed 1] [--doses 1 0.5 0.25 0.1 0.05] [--weights ...]

``speed`` times the registered CNN (``lungai.denoise.cnn.denoise_cnn``) on a 512x512xN scan (the real chest CT
stacked to N slices) and the NLM baseline on a few slices, printing wall seconds, the machine's load, and the
CPU seconds used (CPU seconds / threads estimates the wall time on an otherwise idle machine).

``task`` makes covid-moderate phantoms, scans each at normal dose (flux set for ``--normal-noise`` HU, a clinical
smooth-kernel level) and at a low dose (``--dose``, default a quarter) with the calibrated noise,
denoises the low dose with NLM and with the CNN, and segments lesions on all four with the project's
classic pneumonia lesion segmentation (``lungai.pneumonia.segmentation.segment_lesions_classic``) inside the
phantom's true lungs. It prints lesion Dice and per-lesion detection against the phantom truth, and PSNR/SSIM
against the noise-free phantom. Done when Dice on both denoised images is closer to the normal-dose Dice than
the noisy input's. To tell that from chance it also scans each phantom a second time at normal dose (another
noise realization: how much Dice moves with the noise alone) and prints, per seed, the Dice of every image and,
per method, the paired gain ``|low - normal| - |method - normal|`` (mean, standard error, seeds where it is
positive). Seeds whose phantom has no lesion (of 10 voxels or more) are skipped.

``regions`` scans one covid-moderate phantom at several doses and prints, for the noisy input, the CNN and the
CNN applied to its own output, the std of image minus the noise-free phantom in flat soft tissue, in lung at least
4 voxels from lesions, and in lesions: where and at which noise levels the CNN leaves noise.
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
SHARED = Path(os.environ.get("LUNGAI_SHARED_DATA", REPO.parent / "shared" / "data"))


def speed(args: argparse.Namespace) -> None:
    import torch

    from lungai.denoise.cnn import default_model, denoise_cnn
    from lungai.denoise.nlm import denoise_nlm
    from lungai.image import Image
    from lungai.io import read_image

    torch.set_num_threads(args.threads)
    chest = read_image(SHARED / "ct" / "chest-ct-141" / "ct.nii.gz", check="ct")
    reps = int(np.ceil(args.slices / chest.shape[0]))
    vol = np.concatenate([chest.array] * reps)[: args.slices].astype(np.float32)
    image = Image(vol, chest.spacing, chest.origin, chest.direction)
    entry = default_model()
    denoise_cnn(Image(vol[:4], chest.spacing, chest.origin, chest.direction), entry=entry)  # load + warm up
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    denoise_cnn(image, entry=entry)
    cnn_s, cnn_cpu = time.perf_counter() - t0, time.process_time() - c0
    few = Image(vol[:4], chest.spacing, chest.origin, chest.direction)
    t0 = time.perf_counter()
    denoise_nlm(few)
    nlm_s = (time.perf_counter() - t0) / 4 * args.slices
    result = {"scan": f"512x512x{args.slices}", "threads": args.threads, "model": entry.id,
              "cnn_seconds": round(cnn_s, 1), "cnn_slices_per_second": round(args.slices / cnn_s, 2),
              # CPU seconds over threads: what the run costs on an otherwise idle machine of that many cores
              "cnn_cpu_seconds": round(cnn_cpu, 1),
              "cnn_seconds_if_idle_estimate": round(cnn_cpu / args.threads, 1),
              "nlm_seconds_extrapolated": round(nlm_s, 1), "load_average_before": round(load0, 2),
              "load_average_after": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count()}
    print(json.dumps(result, indent=1))


def _cnn(image, weights=None):
    """The registered CNN, or the network of a training run (``weights``: its best.pt, params.json beside it)."""
    import torch

    from lungai.denoise.cnn import denoise_cnn, denoise_slices
    from lungai.denoise.training import NORMALIZATION, build_network

    if not weights:
        return denoise_cnn(image)[0]
    params = Path(weights).parent / "params.json"
    net = build_network(json.loads(params.read_text()) if params.is_file() else None)
    net.load_state_dict(torch.load(weights, weights_only=True))
    return image.like(denoise_slices(net.eval(), image.array.astype(np.float32), NORMALIZATION,
                                     torch.device("cpu"), pixel_mm=float(np.mean(image.spacing[:2]))))


def regions(args: argparse.Namespace) -> None:
    """Error (image minus the noise-free phantom) per region at several doses: input, CNN, CNN applied twice."""
    import torch
    from scipy import ndimage

    from lungai import quality
    from lungai.denoise import dose
    from lungai.phantom import PhantomConfig, make_phantom

    torch.set_num_threads(args.threads)
    case = make_phantom(PhantomConfig(seed=args.seed, size=(352, 352, args.slices), spacing=(0.9, 0.9, 3.0),
                                      preset="covid-moderate", noise=False))
    clean = case.clean_ct.array.astype(np.float32)
    lesions = case.truth["lesion_class"].array > 0
    lung = (case.truth["lungs"].array > 0) & ~ndimage.binary_dilation(lesions, iterations=4)
    rois = quality.uniform_rois(clean, 0.9)
    flux = dose.flux_for_noise(case.clean_ct, args.normal_noise, "smooth", seed=args.seed)
    models = {"CNN": None, **{Path(w).parent.name: w for w in args.weights}}

    def errors(image) -> Dict[str, float]:
        diff = image.array - clean
        return {"soft": round(float(quality.noise_std(diff, rois)), 1), "lung": round(float(diff[lung].std()), 1),
                "lesions": round(float(diff[lesions].std()), 1)}

    print(f"seed {args.seed}: std (HU) of image minus noise-free phantom in flat soft tissue / lung (4 voxels "
          "from lesions) / lesions")
    for d in args.doses:
        low = dose.add_calibrated_noise(case.clean_ct, d, "smooth", flux=flux, seed=args.seed + 1)
        row = {"dose": d, "input": errors(low)}
        for name, weights in models.items():
            once = _cnn(low, weights)
            row[name] = errors(once)
            row[f"{name} twice"] = errors(_cnn(once, weights))
        print(json.dumps(row), flush=True)


REPEAT = "normal (repeat)"  # the same phantom at normal dose with another noise realization


def task(args: argparse.Namespace) -> None:
    import torch

    from lungai import quality
    from lungai.denoise import dose
    from lungai.denoise.nlm import denoise_nlm
    from lungai.phantom import PhantomConfig, make_phantom
    from lungai.pneumonia.regions import regions_from_labels
    from lungai.pneumonia.segmentation import segment_lesions_classic

    torch.set_num_threads(args.threads)
    rows: List[Dict] = []
    for seed in args.seeds:
        case = make_phantom(PhantomConfig(seed=seed, size=tuple(args.size), spacing=tuple(args.spacing),
                                          preset="covid-moderate", noise=False))
        truth = case.truth["lesion_class"].array > 0
        if quality.lesion_detection(truth, truth, min_voxels=10)["lesions"] == 0:
            print(f"seed {seed}: the phantom has no lesion of 10 voxels or more, skipped", flush=True)
            continue
        lungs = case.truth["lungs"].array
        clean = case.clean_ct
        flux = dose.flux_for_noise(clean, args.normal_noise, args.group, seed=seed)
        images = {"normal dose": dose.add_calibrated_noise(clean, 1.0, args.group, flux=flux, seed=seed),
                  REPEAT: dose.add_calibrated_noise(clean, 1.0, args.group, flux=flux, seed=seed + 1000),
                  "low dose": dose.add_calibrated_noise(clean, args.dose, args.group, flux=flux, seed=seed + 1)}
        images["low + NLM"] = denoise_nlm(images["low dose"])
        if args.registered or not args.weights:
            images["low + CNN"] = _cnn(images["low dose"])
        for weights in args.weights:  # training runs: named by their folder
            images[f"low + {Path(weights).parent.name}"] = _cnn(images["low dose"], weights)
        for name, image in images.items():
            regions = regions_from_labels(image, lungs)
            seg = segment_lesions_classic(image, regions)
            labels = seg.labels
            det = quality.lesion_detection(labels > 0, truth, min_voxels=10)
            rows.append({"seed": seed, "image": name, "dice": quality.dice(labels > 0, truth),
                         "sensitivity": det["sensitivity"], "false_positives": det["false_positives"],
                         "lesions": det["lesions"],
                         "psnr_soft_db": quality.psnr(image.array, clean.array),
                         "ssim_soft": quality.ssim(image.array, clean.array),
                         "noise_std_hu": quality.noise_std(image.array - clean.array,
                                                           quality.uniform_rois(clean.array, args.spacing[0]))})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'image':22s} {'Dice':>6s} {'sens':>6s} {'FP':>5s} {'PSNR':>6s} {'SSIM':>6s} {'noise':>6s}  (mean over seeds)")
    for name in images:
        sel = [r for r in rows if r["image"] == name]
        print(f"{name:22s} {np.mean([r['dice'] for r in sel]):6.3f} {np.mean([r['sensitivity'] for r in sel]):6.2f} "
              f"{np.mean([r['false_positives'] for r in sel]):5.1f} {np.mean([r['psnr_soft_db'] for r in sel]):6.2f} "
              f"{np.mean([r['ssim_soft'] for r in sel]):6.3f} {np.mean([r['noise_std_hu'] for r in sel]):6.1f}")
    _per_seed(rows, list(images))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def _per_seed(rows: List[Dict], names: List[str]) -> None:
    """Per-seed Dice, and per image the paired gain in closeness to the normal-dose Dice over the noisy input."""
    seeds = sorted({r["seed"] for r in rows})
    dice = {(r["seed"], r["image"]): r["dice"] for r in rows}
    print("\nDice per seed\n" + f"{'seed':>4s} " + " ".join(f"{n:>20s}" for n in names))
    for seed in seeds:
        print(f"{seed:4d} " + " ".join(f"{dice[seed, n]:20.4f}" for n in names))
    print("\npaired gain |low - normal| - |image - normal| (positive: closer to normal dose than the input)")
    for name in names:
        if name in ("normal dose", "low dose"):
            continue
        gain = np.array([abs(dice[s, "low dose"] - dice[s, "normal dose"]) - abs(dice[s, name] - dice[s, "normal dose"])
                         for s in seeds])
        se = gain.std(ddof=1) / np.sqrt(len(gain)) if len(gain) > 1 else float("nan")
        print(f"{name:22s} mean {gain.mean():+.4f} +- {se:.4f} (standard error), positive in {int((gain > 0).sum())} "
              f"of {len(gain)} seeds; |image - normal| mean {np.mean([abs(dice[s, name] - dice[s, 'normal dose']) for s in seeds]):.4f}")


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("speed", help="CNN time on a 512x512xN scan")
    p.add_argument("--slices", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=speed)
    p = sub.add_parser("task", help="lesion Dice/detection on phantom low-dose, denoised and normal-dose images")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 3, 4, 7])
    p.add_argument("--size", type=int, nargs=3, default=[352, 352, 24])
    p.add_argument("--spacing", type=float, nargs=3, default=[0.9, 0.9, 3.0])
    p.add_argument("--group", choices=["smooth", "sharp"], default="smooth")
    p.add_argument("--normal-noise", type=float, default=12.0,
                   help="noise std (HU) of the normal-dose phantom; quarter dose then has about twice that")
    p.add_argument("--dose", type=float, default=0.25, help="dose fraction of the low-dose scan")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--weights", nargs="+", default=[], help="training runs' best.pt, instead of the registered CNN")
    p.add_argument("--registered", action="store_true", help="with --weights: the registered CNN as well")
    p.add_argument("--json", help="also write the rows here")
    p.set_defaults(func=task)
    p = sub.add_parser("regions", help="per-region error of the CNN on a phantom at several doses (and applied twice)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--slices", type=int, default=8)
    p.add_argument("--doses", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.1, 0.05])
    p.add_argument("--normal-noise", type=float, default=12.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--weights", nargs="+", default=[], help="training runs' best.pt, besides the registered CNN")
    p.set_defaults(func=regions)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
