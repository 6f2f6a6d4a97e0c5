"""``lungai phantom``: synthetic chest CTs, radiographs and cohorts with exact ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import click

from lungai.cli.common import emit, progress_reporter
from lungai.io import write_image, write_json
from lungai.phantom import PRESETS, XRAY_PRESETS, PhantomConfig, make_cohort, make_phantom, make_xray, save_case

OUT_HELP = "Output folder (created if missing)."


def _acquisition_options(func):
    options = [
        click.option("--size", nargs=3, type=click.IntRange(4, 2048), default=(128, 128, 64), show_default=True,
                     metavar="I J K", help="Voxels along x (patient left), y (posterior) and z (superior)."),
        click.option("--spacing", nargs=3, type=click.FloatRange(0.2, 20.0), default=(2.5, 2.5, 5.0),
                     show_default=True, metavar="SX SY SZ", help="Voxel spacing in mm."),
        click.option("--slice-thickness", type=click.FloatRange(0.3, 10.0), default=None,
                     help="Reconstructed slice thickness in mm (default: the slice spacing)."),
        click.option("--breathing", type=click.Choice(["inspiration", "expiration"]), default="inspiration",
                     show_default=True),
        click.option("--dose", type=click.FloatRange(0.01, 10.0), default=1.0, show_default=True,
                     help="Fraction of a normal-dose chest CT (noise SD grows as 1/sqrt(dose))."),
        click.option("--no-noise", is_flag=True, help="Noise-free image (no projection-domain noise)."),
        click.option("--no-blur", is_flag=True, help="No partial-volume blur (point spread and slice profile)."),
        click.option("--kernel", type=click.Choice(["standard", "sharp", "ramp"]), default="standard",
                     show_default=True, help="Reconstruction kernel of the simulated noise."),
        click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same case."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _config(preset: str, size, spacing, slice_thickness, breathing, dose, no_noise, no_blur, kernel, seed,
            contrast: str = "none", **extra) -> PhantomConfig:
    try:
        return PhantomConfig(seed=seed, size=tuple(size), spacing=tuple(spacing), slice_thickness=slice_thickness,
                             preset=preset, breathing=breathing, contrast=contrast, dose=dose, noise=not no_noise,
                             blur=not no_blur, kernel=kernel, **extra)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
def phantom() -> None:
    """Synthetic chest CTs and radiographs whose ground truth is known exactly.

    Cases are deterministic per seed: lungs, lobes, airways, pulmonary arteries and veins, pneumonia
    lesions, nodules and emboli, each with a label map beside the image and its facts in truth.json.
    """


@phantom.command("ct")
@click.option("-o", "--output", "outdir", required=True, type=click.Path(path_type=Path), help=OUT_HELP)
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="healthy", show_default=True,
              help="; ".join(f"{k}: {v}" for k, v in PRESETS.items()))
@click.option("--contrast", type=click.Choice(["none", "ctpa"]), default=None,
              help="Contrast phase (default: ctpa for the pe preset, none otherwise).")
@click.option("--lesions", "lesion_count", type=click.IntRange(0, 200), default=None,
              help="Number of pneumonia lesions (default: the preset's).")
@click.option("--nodules", "nodule_count", type=click.IntRange(0, 50), default=None, help="Number of nodules.")
@click.option("--emboli", "emboli_levels", type=click.Choice(["main", "lobar", "segmental", "subsegmental"]),
              multiple=True, help="Place an embolus at this level (repeat for several).")
@click.option("--save-clean", is_flag=True, help="Also write the noise-free image ct_clean.nii.gz.")
@_acquisition_options
def ct(outdir: Path, preset: str, contrast: Optional[str], lesion_count: Optional[int],
       nodule_count: Optional[int], emboli_levels: Tuple[str, ...], save_clean: bool, **acq) -> None:
    """Make one synthetic chest CT with its truth in OUTDIR.

    \b
    Writes ct.nii.gz, truth/<name>.nii.gz (lungs, lobes, arteries, vessels, lesions, lesion_class,
    emboli), truth/<name>.seg.nrrd for Slicer and truth.json (all parameters, volumes, lesions, emboli).

    \b
    Examples:
      lungai phantom ct -o case1 --preset covid-severe --seed 3
      lungai phantom ct -o big --size 512 512 300 --spacing 0.7 0.7 1 --preset pe
    """
    contrast = contrast or ("ctpa" if preset == "pe" else "none")
    cfg = _config(preset, contrast=contrast, lesion_count=lesion_count, nodule_count=nodule_count,
                  emboli_levels=emboli_levels or None, **acq)
    with progress_reporter("phantom") as progress:
        case = make_phantom(cfg, progress.span(0.0, 0.9))
        outputs = save_case(case, outdir, include_clean=save_clean)
        progress.update(1.0, "written")
    info = case.info
    emit({"command": "phantom ct", "preset": preset, "seed": cfg.seed,
          "outputs": {k: str(Path(v).resolve()) for k, v in outputs.items()},
          "lung_volume_ml": info["lung_volume_ml"], "lesions": len(info["lesions"]), "emboli": len(info["emboli"]),
          "involvement_percent": info["involvement_percent"]["total"]},
         f"{preset} phantom (seed {cfg.seed}) written to {outdir}: lungs {info['lung_volume_ml']['total']:.0f} ml, "
         f"{len(info['lesions'])} lesions, {len(info['emboli'])} emboli")


@phantom.command("xray")
@click.option("-o", "--output", "outdir", required=True, type=click.Path(path_type=Path), help=OUT_HELP)
@click.option("--preset", type=click.Choice(sorted(XRAY_PRESETS)), default="healthy", show_default=True,
              help="; ".join(f"{k}: {v}" for k, v in XRAY_PRESETS.items()))
@click.option("--size", nargs=2, type=click.IntRange(32, 4096), default=(256, 256), show_default=True,
              metavar="W H", help="Detector pixels (width, height).")
@click.option("--spacing", nargs=2, type=click.FloatRange(0.1, 5.0), default=(1.6, 1.6), show_default=True,
              metavar="SW SH", help="Pixel spacing in mm.")
@click.option("--dose", type=click.FloatRange(0.01, 10.0), default=1.0, show_default=True)
@click.option("--no-noise", is_flag=True, help="No quantum noise.")
@click.option("--seed", type=int, default=0, show_default=True)
def xray(outdir: Path, preset: str, size, spacing, dose: float, no_noise: bool, seed: int) -> None:
    """Make one synthetic frontal chest radiograph with lung and opacity masks in OUTDIR.

    \b
    Writes xray.nrrd and xray.png (0..1, bone bright), truth/lungs.nrrd, truth/opacity.nrrd, truth.json.
    Example:
      lungai phantom xray -o cxr1 --preset viral --seed 2
    """
    try:
        cfg = PhantomConfig(seed=seed, size=(size[0], size[1], 4), spacing=(spacing[0], spacing[1], 1.0),
                            preset=preset, dose=dose, noise=not no_noise)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    with progress_reporter("radiograph") as progress:
        case = make_xray(cfg, progress.span(0.0, 0.9))
        outputs = {"xray": write_image(case.image, outdir / "xray.nrrd"),
                   "xray_png": _write_png(case.image.array, outdir / "xray.png")}
        for name, mask in case.truth.items():
            outputs[f"truth_{name}"] = write_image(mask, outdir / "truth" / f"{name}.nrrd")
        outputs["truth_json"] = write_json(case.info, outdir / "truth.json")
        progress.update(1.0, "written")
    emit({"command": "phantom xray", "preset": preset, "seed": seed,
          "outputs": {k: str(Path(v).resolve()) for k, v in outputs.items()},
          "opacity_percent_of_lung": case.info["opacity_percent_of_lung"]},
         f"{preset} radiograph (seed {seed}) written to {outdir}")


def _write_png(array, path: Path) -> Path:
    import numpy as np
    from PIL import Image as PILImage

    from lungai.io import atomic_output

    with atomic_output(path) as tmp:
        PILImage.fromarray((np.clip(array, 0, 1) * 255).round().astype("uint8")).save(tmp, format="PNG")
    return path


@phantom.command("cohort")
@click.option("-o", "--output", "outdir", required=True, type=click.Path(path_type=Path), help=OUT_HELP)
@click.option("-n", "count", type=click.IntRange(1, 10000), default=10, show_default=True, help="Number of cases.")
@click.option("--presets", default=",".join(PRESETS), show_default=True,
              help="Comma-separated CT presets to cycle through.")
@_acquisition_options
def cohort(outdir: Path, count: int, presets: str, **acq) -> None:
    """Make COUNT cases cycling through PRESETS (case i has seed SEED + i) and cohort.json.

    \b
    Example:
      lungai phantom cohort -o train -n 20 --presets healthy,covid-moderate,covid-severe
    """
    names = [p.strip() for p in presets.split(",") if p.strip()]
    unknown = [p for p in names if p not in PRESETS]
    if unknown or not names:
        raise click.BadParameter(f"unknown presets {unknown}; choose from {sorted(PRESETS)}", param_hint="--presets")
    base = _config(names[0], **acq)
    overrides = {k: getattr(base, k) for k in ("size", "spacing", "slice_thickness", "breathing", "dose", "noise",
                                               "blur", "kernel")}
    with progress_reporter("cohort") as progress:
        path = make_cohort(outdir, count, presets=names, seed=base.seed, progress=progress, **overrides)
    emit({"command": "phantom cohort", "n": count, "presets": names,
          "outputs": {"cohort_json": str(Path(path).resolve())}},
         f"{count} cases written to {outdir} (index: {path})")
