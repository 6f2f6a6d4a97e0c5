"""Low-dose CT on the real AAPM-Mayo pairs of ``shared/data/ldct``: dose-simulation calibration and denoising.

Usage (from the repository root; long runs with ``nice -n 10``)::

    python Testing/benchmarks/eval_denoise_ldct.py calibrate            # fit + report the dose simulation
    python Testing/benchmarks/eval_denoise_ldct.py prepare              # simulated training pairs (cached)
    python Testing/benchmarks/eval_denoise_ldct.py train --exclude L143  # CNN trained without patient L143
    python Testing/benchmarks/eval_denoise_ldct.py train --exclude none  # the shipped model (all data)
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

CHEST_CT = DATA.parent / "ct" / "chest-ct-141" / "ct.nii.gz"
LDCT_DOSES = (0.25, 0.25, 0.18, 0.35)
OTHER_DOSES = (0.25, 0.35)
PHANTOM_SEEDS = {"smooth": 11, "sharp": 12}


def _save_pairs(pairs, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, inputs=np.stack(pairs.inputs), targets=np.stack(pairs.targets),
             weights=np.stack(pairs.weights), sources=np.array(pairs.sources))


def _load_pairs(paths):
    from lungai.denoise.training import PairSet

    out = PairSet()
    for path in paths:
        z = np.load(path)
        out.inputs += list(z["inputs"])
        out.targets += list(z["targets"])
        out.weights += list(z["weights"])
        out.sources += [str(s) for s in z["sources"]]
    return out


def prepare(args: argparse.Namespace) -> None:
    """Simulated training pairs: each LDCT patient's full-dose slices, the real chest CT, two phantoms."""
    from lungai.denoise import training
    from lungai.image import Image
    from lungai.io import read_image
    from lungai.phantom import PhantomConfig, make_phantom

    out = WORK / "pairs"
    t0 = time.time()
    for patient in PATIENTS:
        target = out / f"ldct-{patient}.npz"
        if target.exists():
            continue
        sets = training.PairSet()
        for n, p in enumerate(_pairs(patients=[patient])):
            image = p.full.like(p.full.array, slice_thickness_mm=3.0)
            training.real_pairs(image, LDCT_DOSES, f"{patient} {p.kernel} full dose", seed=args.seed + 1000 * n,
                                kernel=p.kernel_group, pairs=sets)
        _save_pairs(sets, target)
        print(f"{target.name}: {len(sets)} pairs ({time.time() - t0:.0f} s)", flush=True)
    chest = read_image(CHEST_CT, check="ct")
    for name, picks, doses in (("chest-train", slice(10, 131, 6), OTHER_DOSES), ("chest-val", slice(13, 131, 30), (0.25,))):
        target = out / f"{name}.npz"
        if target.exists():
            continue
        # the picked slices are picks.step apart: say so, or ctsim would average neighbours' attenuation
        spacing = (chest.spacing[0], chest.spacing[1], chest.spacing[2] * picks.step)
        part = Image(chest.array[picks].astype(np.float32), spacing, chest.origin, chest.direction,
                     {"slice_thickness_mm": float(chest.spacing[2])})
        sets = training.real_pairs(part, doses, f"chest-ct-141 {name}", seed=args.seed + 7)
        _save_pairs(sets, target)
        print(f"{target.name}: {len(sets)} pairs ({time.time() - t0:.0f} s)", flush=True)
    for group, seed in PHANTOM_SEEDS.items():
        target = out / f"phantom-{group}.npz"
        if target.exists():
            continue
        case = make_phantom(PhantomConfig(seed=seed, size=(352, 352, 6), spacing=(0.8, 0.8, 3.0),
                                          preset="covid-moderate", noise=False))
        sets = training.phantom_pairs(case.clean_ct, case.truth["lesion_class"].array > 0, OTHER_DOSES, group,
                                      args.lesion_weight, f"phantom seed {seed}", seed=seed)
        _save_pairs(sets, target)
        print(f"{target.name}: {len(sets)} pairs ({time.time() - t0:.0f} s)", flush=True)


BUNDLE_CHEST_VAL = (100, 112)  # chest-ct-141 slices kept out of training for validation (slices 103, 109)
#: noise-bank phantoms: training and validation seeds, apart from the task check's (bench_denoise.py task, 1-10)
PHANTOM_TRAIN_SEEDS = tuple(range(11, 19))
PHANTOM_VAL_SEED = 19


def _quarter_noise(image, group: str, seed: int):
    """Extra noise (HU) that a quarter dose adds to the normal-dose ``image``, calibrated for kernel ``group``."""
    from lungai.denoise import dose

    cal = dose.CALIBRATIONS[group]
    flux = dose.estimate_flux(image, cal, seed)
    return dose.simulate_low_dose(image, 0.25, seed=seed + 1, calibration=cal, flux=flux).array - image.array


def _volume_part(volume, picks, thickness: float):
    """Picked axial slices of ``volume`` as an image whose z spacing says how far apart they are."""
    from lungai.image import Image

    step = picks[1] - picks[0] if len(picks) > 1 else 1
    spacing = (volume.spacing[0], volume.spacing[1], volume.spacing[2] * step)
    return Image(volume.array[picks].astype(np.float32), spacing, volume.origin, volume.direction,
                 {"slice_thickness_mm": thickness})


def bundle(args: argparse.Namespace) -> None:
    """Noise-bank bundles (normal-dose slices + simulated quarter-dose noise) for ``train-bank``."""
    from lungai.denoise import dose
    from lungai.denoise.noisebank import save_bundle
    from lungai.io import read_image
    from lungai.phantom import PhantomConfig, make_phantom

    out = WORK / "bundles"
    t0 = time.time()

    def done(name: str) -> bool:
        return (out / f"{name}.npz").exists()

    def note(name: str) -> None:
        size = (out / f"{name}.npz").stat().st_size / 2 ** 20
        print(f"{name}.npz {size:.1f} MiB ({time.time() - t0:.0f} s)", flush=True)

    for patient in PATIENTS:  # each full-dose slice with realizations of its own kernel
        name = f"ldct-{patient}"
        if done(name):
            continue
        pairs = _pairs(patients=[patient])
        images, noise, kernels = [], [[] for _ in range(args.realizations)], []
        for n, p in enumerate(pairs):
            image = p.full.like(p.full.array, slice_thickness_mm=3.0)
            for r in range(args.realizations):
                noise[r].append(_quarter_noise(image, p.kernel_group, args.seed + 1000 * n + 17 * r)[0])
            images.append(p.full.array[0])
            kernels.append(p.kernel_group)
        save_bundle(out / f"{name}.npz", np.stack(images), [np.stack(n) for n in noise], pairs[0].pixel_mm,
                    f"AAPM-Mayo {patient} full dose", kernels)
        note(name)
    chest = read_image(CHEST_CT, check="ct")
    lo, hi = BUNDLE_CHEST_VAL
    for name, picks in (("chest-train", [k for k in range(0, chest.shape[0], args.chest_step) if not lo <= k < hi]),
                        ("chest-val", [103, 109])):
        if done(name):
            continue
        # alternate kernels: half of the slices get smooth-kernel noise, half sharp
        noise = np.empty((len(picks),) + chest.shape[1:], np.float32)
        kernels = []
        for g, group in enumerate(dose.KERNEL_GROUPS):
            sel = list(range(g, len(picks), 2))
            part = _volume_part(chest, [picks[s] for s in sel], float(chest.spacing[2]))
            noise[sel] = _quarter_noise(part, group, args.seed + 7 + g)
        kernels = [dose.KERNEL_GROUPS[s % 2] for s in range(len(picks))]
        save_bundle(out / f"{name}.npz", chest.array[picks], [noise], float(chest.spacing[0]),
                    f"chest-ct-141 slices {picks[0]}..{picks[-1]}", kernels)
        note(name)
    for name, path, step in (("cip", DATA.parent / "ct" / "cip-crop-2slices" / "ct.nrrd", 1),
                             ("ctpa", DATA.parent / "ct" / "ctpa-crop" / "ct.nii.gz", 4)):
        if done(name):
            continue
        volume = read_image(path, check="none")
        picks = list(range(0, volume.shape[0], step))
        part = _volume_part(volume, picks, max(1.0, float(volume.spacing[2])))
        noise = [_quarter_noise(part, group, args.seed + 31 + g) for g, group in enumerate(dose.KERNEL_GROUPS)]
        save_bundle(out / f"{name}.npz", part.array, noise, float(volume.spacing[0]), f"{path.parent.name}",
                    dose.KERNEL_GROUPS)
        note(name)
    # noise-free phantoms with lesions, scanned as in the task check (flux for 12 HU at normal dose); the target is
    # the noise-free phantom (its lungs carry no texture: there the right answer is to remove all the noise)
    for seed, name, realizations in [(s, f"phantom-{s}", 2) for s in PHANTOM_TRAIN_SEEDS] + \
            [(PHANTOM_VAL_SEED, "val-phantom", 1)]:
        if done(name):
            continue
        case = make_phantom(PhantomConfig(seed=seed, size=(352, 352, args.phantom_slices), spacing=(0.9, 0.9, 3.0),
                                          preset="covid-moderate", noise=False))
        clean = case.clean_ct
        flux = dose.flux_for_noise(clean, 12.0, "smooth", seed=seed)
        group = dose.KERNEL_GROUPS[seed % 2]
        noise = [dose.add_calibrated_noise(clean, 0.25, group, flux=flux, seed=seed + 1 + r).array - clean.array
                 for r in range(realizations)]
        save_bundle(out / f"{name}.npz", clean.array, noise, float(clean.spacing[0]), f"covid-moderate phantom {seed}",
                    [group] * realizations, lesions=case.truth["lesion_class"].array > 0, clean_target=True)
        note(name)


def _training_sets(exclude: str):
    pairs_dir = WORK / "pairs"
    train = [pairs_dir / f"ldct-{p}.npz" for p in PATIENTS if p != exclude]
    train += [pairs_dir / "chest-train.npz", pairs_dir / "phantom-smooth.npz", pairs_dir / "phantom-sharp.npz"]
    return _load_pairs(train), _load_pairs([pairs_dir / "chest-val.npz"])


def train(args: argparse.Namespace) -> None:
    """Train the CNN without patient ``--exclude`` (``none``: on everything, for the shipped model)."""
    import torch

    from lungai.denoise import training

    torch.set_num_threads(args.threads)
    train_set, val_set = _training_sets(args.exclude)
    print(f"training on {len(train_set)} slices ({sorted(set(s.split(' (')[0] for s in train_set.sources))}), "
          f"validating on {len(val_set)}", flush=True)
    folder = WORK / f"cnn-without-{args.exclude}"
    init = torch.load(args.init, weights_only=True) if args.init else None
    net, result = training.train_denoiser(train_set, val_set, str(folder / "checkpoints"), epochs=args.epochs,
                                          steps_per_epoch=args.steps, seed=args.seed, lr=args.lr, init_state=init,
                                          patch=args.patch, batch_size=args.batch,
                                          log=lambda m: print(m, flush=True))
    torch.save({k: v.cpu() for k, v in net.state_dict().items()}, folder / "best.pt")
    (folder / "result.json").write_text(json.dumps(result.to_dict(), indent=1, default=str))
    print(f"best val PSNR {result.best_metric:.2f} dB at epoch {result.best_epoch}, {result.seconds:.0f} s")


def publish(args: argparse.Namespace) -> None:
    """Register the model trained on everything in Resources/Models/registry.json (weights + card)."""
    import torch

    from lungai.denoise import training
    from lungai.models.training import TrainResult, publish_model

    folder = WORK / args.model_dir
    params = _network_params(folder)
    net = training.build_network(params)
    net.load_state_dict(torch.load(folder / "best.pt", weights_only=True))
    result = TrainResult(**json.loads((folder / "result.json").read_text()))
    evaluations = json.loads(Path(args.evaluation).read_text()) if args.evaluation else {}
    bundles = result.config.get("bundles")
    if bundles:  # trained by train_denoise_bank.py on noise-bank bundles
        phantoms = [b for b in bundles if b.startswith("phantom")]
        validation = result.config.get("validation", ["chest-val"])
        val_doses = " and ".join(f"{d:g}" for d in result.config.get("validation_doses", [0.25]))
        val_text = "chest-ct-141 slices 103 and 109 (slices 100-111 kept out of training)"
        if "val-phantom" in validation:
            val_text += f", covid-moderate phantom {PHANTOM_VAL_SEED} (8 slices), at dose {val_doses}; kept by " \
                        f"the {result.config.get('selection', 'soft')} PSNR"
        target = "target = the normal-dose image (the noise-free phantom for phantoms); " \
            if "val-phantom" in validation else "target = the normal-dose image; "
        doses = result.config.get("doses", {"log_uniform": [0.1, 0.5], "quarter_share": 0.5})
        lo, hi = doses["log_uniform"]
        dose_text = f"{doses['quarter_share']:.0%} near 0.25, the rest log-uniform {lo:g}-{hi:g}"
        extra = f"loss weight 1 + {result.config.get('lesion_weight', 3.0):g} in phantom lesions"
        if result.config.get("lung_weight"):
            extra += f", 1 + {result.config['lung_weight']:g} in lung parenchyma (-950..-400 HU)"
        data = {"name": "simulated low/normal-dose pairs (noise bank)",
                "cases_train": ", ".join(bundles) + ": 22 full-dose LDCT slices (AAPM-Mayo L143, L192; B30f and "
                               "D45f; 3 noise realizations each), 65 slices of chest-ct-141, the 2-slice CIP crop, "
                               f"28 slices of the CTPA crop, {len(phantoms)} covid-moderate phantoms (8 slices each)",
                "cases_val": val_text,
                "source": "shared/data/ldct, shared/data/ct (chest-ct-141, cip-crop-2slices, ctpa-crop), "
                          "lungai.phantom",
                "licence": "AAPM-Mayo LDCT (TCIA), ITKElastix example data (Apache-2.0), Chest Imaging Platform "
                           "(BSD-style), TotalSegmentator (CC BY 4.0), synthetic",
                "description": "quarter-dose noise simulated once per slice with lungai.denoise.dose (calibrated "
                               "projection-domain insertion, smooth and sharp kernels), then at every step scaled "
                               f"to a random dose ({dose_text}), random sign, rotation and flip; "
                               f"{target}{extra}; no real quarter-dose image was used for training",
                "evaluations": evaluations}
    else:
        data = {"name": "simulated low/normal-dose pairs",
                "cases_train": "22 full-dose LDCT slices (AAPM-Mayo L143, L192; B30f and D45f), 21 slices of "
                               "chest-ct-141, 2 covid-moderate phantoms (12 slices)",
                "cases_val": "4 other slices of chest-ct-141",
                "source": "shared/data/ldct, shared/data/ct/chest-ct-141, lungai.phantom",
                "licence": "AAPM-Mayo LDCT (TCIA), ITKElastix example data (Apache-2.0), synthetic",
                "description": "low dose simulated with lungai.denoise.dose (calibrated projection-domain noise "
                               f"insertion) at doses {LDCT_DOSES} (LDCT) and {OTHER_DOSES} (others); target = the "
                               "normal-dose image; lesion-weighted loss on phantom lesions; no real quarter-dose "
                               "image was used for training",
                "evaluations": evaluations}
    registry = Path(args.registry) if args.registry else REPO / "Resources" / "Models" / "registry.json"
    template = training.registry_template(params)
    if result.config.get("init"):  # warm-started from the earlier shipped model's run
        template["parent"] = args.parent
    entry = publish_model(template, net, result, data, registry, version=args.version)
    print(f"published {entry.id}: {entry.weights}")


def _network_params(folder: Path) -> Dict:
    """Architecture parameters a training run wrote beside its weights (the defaults when it wrote none)."""
    path = folder / "params.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _fold_network(patient: str, prefix: str = "cnn-without-"):
    """The CNN trained without ``patient`` (2-fold by patient)."""
    import torch

    from lungai.denoise import training

    path = WORK / f"{prefix}{patient}" / "best.pt"
    if not path.is_file():
        sys.exit(f"{path} is missing: run `train --exclude {patient}` first")
    net = training.build_network(_network_params(path.parent))
    net.load_state_dict(torch.load(path, weights_only=True))
    return net.eval()


def _figures(test: np.ndarray, pair) -> Dict[str, float]:
    from lungai import quality

    ref = pair.full.array
    rois = quality.uniform_rois(ref, pair.pixel_mm)
    out = {}
    for name, window in quality.WINDOWS.items():
        out[f"psnr_{name}"] = quality.psnr(test, ref, window)
        out[f"ssim_{name}"] = quality.ssim(test, ref, window)
        out[f"rmse_{name}"] = quality.rmse(test, ref, window)
    out["noise_std"] = quality.noise_std(test - ref, rois)  # residual noise against the full dose
    out["mean_hu_shift"] = quality.mean_hu(test, rois) - quality.mean_hu(ref, rois)
    out["edge_sharpness"] = quality.edge_sharpness(test, ref)
    return out


def evaluate(args: argparse.Namespace) -> None:
    """Quarter-dose input, NLM and the fold CNN against the full dose, per pair; summary per kernel."""
    import torch

    from lungai.denoise.cnn import denoise_slices
    from lungai.denoise.nlm import denoise_nlm
    from lungai.denoise.training import NORMALIZATION

    rows = []
    for patient in args.patients:
        net = _fold_network(patient, args.prefix)
        for p in _pairs(patients=[patient]):
            q = p.quarter
            outputs = {"quarter dose (input)": q.array,
                       "NLM": denoise_nlm(q).array,
                       "CNN": denoise_slices(net, q.array, NORMALIZATION, torch.device("cpu"),
                                             pixel_mm=float(np.mean(q.spacing[:2])))}
            for method, array in outputs.items():
                rows.append({"patient": patient, "kernel": p.kernel, "method": method, **_figures(array, p)})
            print(f"{patient} {p.kernel}: " + ", ".join(
                f"{r['method']} {r['psnr_soft_tissue']:.2f} dB/{r['ssim_soft_tissue']:.3f}" for r in rows[-3:]),
                flush=True)
    keys = ["psnr_soft_tissue", "ssim_soft_tissue", "rmse_soft_tissue", "psnr_chest", "ssim_chest", "rmse_chest",
            "noise_std", "mean_hu_shift", "edge_sharpness"]
    summary = {}
    for kernel in ("B30f", "D45f", "all"):
        for method in ("quarter dose (input)", "NLM", "CNN"):
            sel = [r for r in rows if r["method"] == method and kernel in (r["kernel"], "all")]
            summary[f"{kernel} | {method}"] = {k: float(np.mean([r[k] for r in sel])) for k in keys}
            summary[f"{kernel} | {method}"]["pairs"] = len(sel)
    print("\nmean over pairs; PSNR/SSIM/RMSE against full dose; soft tissue = [-160, 240] HU, "
          "chest = centre -600 width 1500; noise = std of (output - full dose) in flat soft tissue")
    print(f"{'kernel | method':30s} {'PSNR':>6s} {'gain':>6s} {'SSIM':>6s} {'RMSE':>6s} | {'PSNR':>6s} "
          f"{'SSIM':>6s} {'RMSE':>6s} | {'noise':>6s} {'dHU':>5s} {'edge':>5s}")
    for key, s in summary.items():
        base = summary[key.split(" | ")[0] + " | quarter dose (input)"]
        print(f"{key:30s} {s['psnr_soft_tissue']:6.2f} {s['psnr_soft_tissue'] - base['psnr_soft_tissue']:+6.2f} "
              f"{s['ssim_soft_tissue']:6.3f} {s['rmse_soft_tissue']:6.1f} | {s['psnr_chest']:6.2f} "
              f"{s['ssim_chest']:6.3f} {s['rmse_chest']:6.1f} | {s['noise_std']:6.1f} {s['mean_hu_shift']:+5.1f} "
              f"{s['edge_sharpness']:5.2f}")
    out = Path(args.json or WORK / "eval-ldct.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
    print(f"wrote {out}")


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("calibrate", help="fit and check the dose simulation on the real pairs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the per-pair table here")
    p.set_defaults(func=calibrate)
    p = sub.add_parser("prepare", help="simulate the training pairs (cached under the work folder)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lesion-weight", type=float, default=3.0, help="extra loss weight inside phantom lesions")
    p.set_defaults(func=prepare)
    p = sub.add_parser("bundle", help="simulate noise-bank bundles for train-bank (cached under the work folder)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--realizations", type=int, default=3, help="noise realizations per LDCT full-dose slice")
    p.add_argument("--chest-step", type=int, default=2, help="use every n-th chest-ct-141 slice")
    p.add_argument("--phantom-slices", type=int, default=8)
    p.set_defaults(func=bundle)
    p = sub.add_parser("train", help="train the CNN without one patient (or 'none' for the shipped model)")
    p.add_argument("--exclude", choices=PATIENTS + ("none",), required=True)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--patch", type=int, default=80, help="training patch side (pixels, a multiple of 4)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--init", help="weights (.pt state dict) to start from: a warm restart of an earlier run")
    p.set_defaults(func=train)
    p = sub.add_parser("evaluate", help="input / NLM / CNN on the real pairs, 2-fold by patient")
    p.add_argument("--json", help="where to write rows and summary (default: the work folder)")
    p.add_argument("--prefix", default="cnn-without-", help="fold model folders: <work>/<prefix><patient>")
    p.add_argument("--patients", nargs="+", choices=PATIENTS, default=list(PATIENTS),
                   help="test patients (default both: the 2-fold evaluation; one: a single fold's half)")
    p.set_defaults(func=evaluate)
    p = sub.add_parser("publish", help="register the model trained on everything")
    p.add_argument("--version", help="registry version (default: the next minor one)")
    p.add_argument("--evaluation", help="JSON of evaluation figures for the model card")
    p.add_argument("--model-dir", default="cnn-without-none", help="folder under the work folder")
    p.add_argument("--parent", default="denoise-redcnn@1.2.0", help="the model a warm-started run began from")
    p.add_argument("--registry", help="registry file (default: Resources/Models/registry.json)")
    p.set_defaults(func=publish)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(min(2, getattr(args, "threads", 2)))
    if not DATA.is_dir():
        sys.exit(f"LDCT data folder {DATA} is absent")
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
