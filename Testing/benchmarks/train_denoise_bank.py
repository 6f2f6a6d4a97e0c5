"""Train the CNN denoiser on noise-bank bundles (``eval_denoise_ldct.py bundle``), CPU or GPU.

Usage (repository root)::

    python Testing/benchmarks/train_denoise_bank.py --bundles DIR --out DIR [--folds L143 L192 none]
        [--steps 20000] [--batch 32] [--patch 128] [--lr 1e-3] [--features 32] [--device cuda]
        [--noise-level-input]
    python Testing/benchmarks/train_denoise_bank.py --make-levels --bundles DIR

``--noise-level-input`` trains the network that also takes the measured noise level of each slice; it needs the
bundles' noise-level tables, which ``--make-levels`` measures once (a few minutes on one core; it needs the full
``lungai`` environment, the training itself does not).

Each fold trains one network: ``--folds L143`` trains without patient L143's slices (for the honest 2-fold
evaluation on the real pairs), ``none`` on everything (the model to publish). Folds run in parallel processes
(one GPU holds them all). Output per fold: ``<out>/<prefix><fold>/best.pt`` (state dict) and ``result.json``
(a :class:`lungai.models.training.TrainResult` dict), the layout ``eval_denoise_ldct.py evaluate/publish`` reads.

Only numpy and torch are needed: the ``lungai`` package is entered without its ``__init__`` (which loads
SimpleITK for image I/O), so this runs on a bare GPU machine with the repository and the bundles copied over.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import types
from pathlib import Path
from typing import List

REPO = Path(__file__).resolve().parents[2]
PATIENTS = ("L143", "L192")
#: sampling weight of each bundle family (per bundle); the chest CT bundle is large, the others small
FAMILY_WEIGHTS = {"ldct": 3.0, "chest-train": 4.0, "cip": 0.5, "ctpa": 0.5, "phantom": 0.5}
VALIDATION = ("chest-val", "val-phantom")  # validation bundles (those present are used)
METRIC_NAMES = {"soft": "psnr_soft_tissue_db", "soft+lung": "psnr_mean_soft_tissue_and_lung_db"}


def _enter_lungai_lightly() -> None:
    """Import ``lungai.denoise.network`` / ``noisebank`` without running the package ``__init__`` files."""
    root = REPO / "LungAIExtension" / "lungai"
    for name, path in (("lungai", root), ("lungai.denoise", root / "denoise"), ("lungai.models", root / "models")):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(path)]
            sys.modules[name] = module


def _family(stem: str) -> str:
    return next((f for f in FAMILY_WEIGHTS if stem.startswith(f)), "")


def _family_weight(text: str):
    family, _, weight = text.partition("=")
    if family not in FAMILY_WEIGHTS or not weight:
        raise argparse.ArgumentTypeError(f"expected FAMILY=WEIGHT with FAMILY one of {', '.join(FAMILY_WEIGHTS)}")
    return family, float(weight)


def train_fold(fold: str, args: argparse.Namespace) -> None:
    import torch

    _enter_lungai_lightly()
    from lungai.denoise.network import RedCnnShuffle, add_noise_level_input
    from lungai.denoise.noisebank import Bundle, NoiseBank, train_bank, validation_pairs

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    torch.backends.cudnn.benchmark = True
    device = torch.device(args.device)
    folder = Path(args.out) / f"{args.prefix}{fold}"
    folder.mkdir(parents=True, exist_ok=True)
    log_file = open(folder / "train.log", "w")

    def log(message: str) -> None:
        print(f"[{fold}] {message}", flush=True)
        log_file.write(message + "\n")
        log_file.flush()

    train, used = [], []
    for path in sorted(Path(args.bundles).glob("*.npz")):
        family = _family(path.stem)
        if not family or path.stem == f"ldct-{fold}":
            continue
        train.append(Bundle.load(path, device))
        used.append(path.stem)
    weights = {**FAMILY_WEIGHTS, **args.family_weight}
    for bundle in train:
        bundle.weight = weights[_family(bundle.name)]
    val_names = [name for name in VALIDATION if (Path(args.bundles) / f"{name}.npz").exists()]
    val_bundles = [Bundle.load(Path(args.bundles) / f"{name}.npz", device) for name in val_names]
    val = [pair for dose in args.val_doses
           for pair in validation_pairs(val_bundles, dose, noise_level_input=args.noise_level_input)]
    log(f"training on {used} ({sum(len(b) for b in train)} slices), validating on {len(val)} slices of {val_names} "
        f"at doses {args.val_doses}")
    params = {"features": args.features, "depth": args.depth, "shuffle": args.shuffle, "kernel_size": 3}
    if args.noise_level_input:
        params["noise_level_input"] = True
    net = RedCnnShuffle(2, 1, 1, **params).to(device)
    if args.init_prefix:  # a warm start from an earlier network of the same fold (never one that saw the patient)
        init = Path(f"{args.init_prefix}{fold}") / "best.pt"
        state = torch.load(init, map_location=device, weights_only=True)
        if args.noise_level_input and state["encoder.0.weight"].shape[1] < net.encoder[0].weight.shape[1]:
            state = add_noise_level_input(state)  # same output as the initial network; the new input starts at 0
            log("noise-level input added to the initial network (its weights zero)")
        net.load_state_dict(state)
        log(f"starting from {init}")
    bank = NoiseBank(train, patch=args.patch, doses=tuple(args.doses), quarter_share=args.quarter_share,
                     lesion_weight=args.lesion_weight, lung_weight=args.lung_weight, seed=args.seed,
                     noise_level_input=args.noise_level_input)
    out = train_bank(net, bank, val, steps=args.steps, batch=args.batch, lr=args.lr, eval_every=args.eval_every,
                     time_limit_s=args.time_limit, select=args.select, log=log)
    torch.save(out["state"], folder / "best.pt")
    config = {"steps": args.steps, "steps_run": out["steps"], "batch_size": args.batch, "patch": args.patch,
              "lr": args.lr, "schedule": "warm-up, cosine decay", "optimizer": "Adam", "grad_clip": 1.0,
              "lesion_weight": args.lesion_weight, "lung_weight": args.lung_weight, "seed": args.seed, "init": args.init_prefix,
              "noise_level_input": args.noise_level_input,
              "doses": {"log_uniform": list(args.doses), "quarter_share": args.quarter_share},
              "validation": val_names, "validation_doses": args.val_doses, "selection": args.select,
              "device": str(device), "params": params,
              "bundles": used, "sampling_weights": weights}
    hardware = {"cpu": platform.processor() or platform.machine(), "cpu_cores": os.cpu_count(),
                "torch_threads": torch.get_num_threads(), "device": str(device), "torch": torch.__version__,
                "python": platform.python_version(), "os": f"{platform.system()} {platform.release()}"}
    if device.type == "cuda":
        hardware["gpu"] = torch.cuda.get_device_name(device)
    # the selection metric also under the TrainResult name (val_<metric_name>) that publish_model reads
    history = [{"epoch": h["step"], **{k: v for k, v in h.items() if k != "step"},
                f"val_{METRIC_NAMES[args.select]}": h["val_metric"]} for h in out["history"]]
    result = {"history": history, "best_metric": out["best_metric"], "best_epoch": out["best_step"],
              "epochs_run": out["steps"], "stopped_early": out["steps"] < args.steps, "seconds": out["seconds"],
              "hardware": hardware, "metric_name": METRIC_NAMES[args.select], "higher_is_better": True,
              "config": config, "checkpoint_dir": None, "resumed_from_epoch": None}
    (folder / "result.json").write_text(json.dumps(result, indent=1))
    (folder / "params.json").write_text(json.dumps(params))
    log(f"best val PSNR {out['best_metric']:.3f} dB at step {out['best_step']} of {out['steps']}, "
        f"{out['seconds']:.0f} s")


def make_levels(bundles: Path) -> None:
    """Noise-level tables of all bundles in ``bundles`` (needs lungai's image-quality module, i.e. scipy)."""
    sys.path.insert(0, str(REPO / "LungAIExtension"))
    from lungai.denoise.noise_level import bundle_noise_levels

    for path in sorted(bundles.glob("*.npz")):
        print(f"{path.stem}: {bundle_noise_levels(path)}", flush=True)


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", required=True, help="folder of bundle .npz files")
    parser.add_argument("--out", help="folder of the training runs (required unless --make-levels)")
    parser.add_argument("--folds", nargs="+", default=list(PATIENTS) + ["none"],
                        help="patients to leave out, one network each ('none': train on everything)")
    parser.add_argument("--prefix", default="cnn-without-")
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--time-limit", type=float, help="stop each fold after this many seconds")
    parser.add_argument("--init-prefix", help="start each fold from <init-prefix><fold>/best.pt (same fold)")
    parser.add_argument("--lesion-weight", type=float, default=3.0)
    parser.add_argument("--lung-weight", type=float, default=0.0, help="extra loss weight on lung parenchyma")
    parser.add_argument("--family-weight", type=_family_weight, nargs="+", default=[],
                        help="sampling weight per bundle of a family, e.g. phantom=2 (defaults: FAMILY_WEIGHTS)")
    parser.add_argument("--select", choices=["soft", "soft+lung"], default="soft",
                        help="keep the weights best on [-160, 240] HU PSNR, or on its mean with lung-window PSNR")
    parser.add_argument("--doses", type=float, nargs=2, default=[0.1, 0.5], metavar=("LO", "HI"),
                        help="dose range of the log-uniform share of the draws")
    parser.add_argument("--quarter-share", type=float, default=0.5,
                        help="share of the draws at a quarter dose (0.22-0.28); the rest log-uniform in --doses")
    parser.add_argument("--val-doses", type=float, nargs="+", default=[0.25],
                        help="validate on every validation slice at each of these doses (mean PSNR over all)")
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--depth", type=int, default=7)
    parser.add_argument("--shuffle", type=int, default=4)
    parser.add_argument("--noise-level-input", action="store_true",
                        help="give the network the measured noise level (needs the bundles' levels/ tables)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--make-levels", action="store_true",
                        help="only measure the noise-level table of every bundle (levels/ beside them)")
    args = parser.parse_args(argv)
    args.family_weight = dict(args.family_weight)
    if args.make_levels:
        make_levels(Path(args.bundles))
        return
    if not args.out:
        parser.error("--out is required for training")
    if len(args.folds) == 1:
        train_fold(args.folds[0], args)
        return
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=train_fold, args=(fold, args)) for fold in args.folds]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [f for f, p in zip(args.folds, procs) if p.exitcode != 0]
    if failed:
        sys.exit(f"folds failed: {failed}")


if __name__ == "__main__":
    main(sys.argv[1:])
