"""``lungai denoise`` and ``lungai simulate-dose``: low-dose CT denoising and calibrated low-dose simulation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Optional

import click
import numpy as np

from lungai.cli.common import emit, progress_reporter, resolve_device, settings

SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
CHECK = click.Choice(["ct", "volume", "none"])


def _check_output(path: Path) -> None:
    if not path.name.lower().endswith(SUFFIXES):
        raise click.BadParameter(f"must end in {', '.join(SUFFIXES)}", param_hint="-o/--output")


def _noise_summary(array: np.ndarray, spacing_mm: float, reference: np.ndarray) -> Dict[str, Optional[float]]:
    """Noise std and mean HU in flat soft tissue found on ``reference`` (the same regions before and after)."""
    from lungai import quality

    vol = reference if reference.ndim == 3 else reference[None]
    picks = np.linspace(0, len(vol) - 1, min(len(vol), 8)).round().astype(int)
    rois = [quality.Roi(int(picks[r.k]), r.j0, r.i0, r.n)
            for r in quality.uniform_rois(vol[picks], spacing_mm, max_rois=48)]
    if len(rois) < 3:
        return {"noise_std_hu": None, "mean_hu": None}
    return {"noise_std_hu": round(quality.noise_std(array, rois), 2), "mean_hu": round(quality.mean_hu(array, rois), 2)}


@click.command()
@click.argument("input_path", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Denoised CT to write (.nii.gz, .nii, .nrrd or .mha); geometry as the input's.")
@click.option("--method", type=click.Choice(["nlm", "cnn"]), default="cnn", show_default=True,
              help="cnn: the trained RED-CNN-style network; nlm: non-local means (classical baseline).")
@click.option("--strength", type=click.FloatRange(0.0, 1.5), default=1.0, show_default=True,
              help="How much noise to remove: 0 keeps the input, 1 is the default filtering.")
@click.option("--reference", "reference_path", type=click.Path(path_type=Path),
              help="A normal-dose CT on the same grid: report PSNR/SSIM/RMSE of input and output against it.")
@click.option("--model-version", help="Version of the registered denoise-redcnn model (default: the newest).")
@click.option("--noise-std", type=click.FloatRange(0.0, min_open=True),
              help="Noise std of the input (HU) for every slice, instead of measuring it in flat soft tissue "
                   "(for images without any, e.g. small crops).")
@click.option("--check", type=CHECK, default="ct", show_default=True,
              help="Input checks: ct (3D chest CT in HU), volume (any 3D), none (e.g. a single DICOM slice).")
def denoise(input_path: Path, output_path: Path, method: str, strength: float, reference_path: Optional[Path],
            model_version: Optional[str], noise_std: Optional[float], check: str) -> None:
    """Denoise the low-dose CT INPUT_PATH (file or DICOM folder), slice by slice, keeping HU calibrated.

    The non-local means strength follows the noise measured in flat soft tissue of each slice; the CNN is the
    registered denoise-redcnn model. The output header records the method, model, weights and parameters.
    """
    import torch

    from lungai import quality
    from lungai.denoise import denoise as run_denoise
    from lungai.denoise.cnn import default_model
    from lungai.errors import InputError
    from lungai.io import read_image, write_image

    _check_output(output_path)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    image = read_image(input_path, check=check)
    reference = read_image(reference_path, check=check) if reference_path else None
    if reference is not None and reference.shape != image.shape:
        raise InputError(reference_path, f"size {reference.size} differs from the input's {image.size}")
    device = resolve_device(settings().device)
    started = time.perf_counter()
    with progress_reporter("denoise") as progress:
        try:
            if method == "cnn":
                from lungai.denoise.cnn import denoise_cnn

                out, provenance = denoise_cnn(image, strength, default_model(model_version), device,
                                              progress.span(0.0, 0.95), noise_std=noise_std)
            else:
                out, provenance = run_denoise(image, "nlm", strength, device, progress.span(0.0, 0.95),
                                              noise_std=noise_std)
        except ValueError as exc:
            if "flat soft tissue" not in str(exc):
                raise
            raise InputError(input_path, f"{exc} (--noise-std)") from None
        seconds = time.perf_counter() - started
        progress.update(0.96, "writing")
        header = dict(provenance.header_fields(), strength=strength, denoise_method=method)
        write_image(out, output_path, metadata=header)
        progress.update(1.0, "done")
    pixel_mm = float(np.mean(image.spacing[:2]))
    flat_reference = (reference if reference is not None else out).array.astype(np.float32)
    result: Dict[str, Any] = {
        "input": str(input_path.resolve()), "method": method, "strength": strength, "seconds": round(seconds, 2),
        "size_ijk": list(image.size), "provenance": provenance.to_dict(),
        "before": _noise_summary(image.array.astype(np.float32), pixel_mm, flat_reference),
        "after": _noise_summary(out.array, pixel_mm, flat_reference),
        "outputs": {"denoised": str(output_path.resolve())}}
    if reference is not None:
        result["against_reference"] = {"input": quality.compare(image.array, reference.array),
                                       "output": quality.compare(out.array, reference.array)}
    b, a = result["before"], result["after"]
    lines = [f"{input_path}: {method} denoising (strength {strength:g}) in {seconds:.1f} s"]
    if b["noise_std_hu"] is not None:
        lines.append(f"  noise in flat soft tissue {b['noise_std_hu']:.1f} -> {a['noise_std_hu']:.1f} HU, "
                     f"mean {b['mean_hu']:.1f} -> {a['mean_hu']:.1f} HU")
    if reference is not None:
        ri, ro = result["against_reference"]["input"]["soft_tissue"], result["against_reference"]["output"]["soft_tissue"]
        lines.append(f"  vs reference, [-160, 240] HU: PSNR {ri['psnr_db']:.2f} -> {ro['psnr_db']:.2f} dB, "
                     f"SSIM {ri['ssim']:.3f} -> {ro['ssim']:.3f}")
    lines.append(f"  wrote {output_path}")
    emit(result, "\n".join(lines))


@click.command(name="simulate-dose")
@click.argument("input_path", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Simulated lower-dose CT to write (.nii.gz, .nii, .nrrd or .mha).")
@click.option("--dose", type=click.FloatRange(0.01, 1.0, min_open=False, max_open=True), required=True,
              help="Dose fraction of the input's dose, e.g. 0.25 for quarter dose.")
@click.option("--kernel", type=click.Choice(["auto", "smooth", "sharp"]), default="auto", show_default=True,
              help="Reconstruction kernel group of the input (auto: from the noise texture).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the noise.")
@click.option("--check", type=CHECK, default="ct", show_default=True,
              help="Input checks: ct (3D chest CT in HU), volume (any 3D), none (e.g. a single DICOM slice).")
def simulate_dose(input_path: Path, output_path: Path, dose: float, kernel: str, seed: int, check: str) -> None:
    """Make a realistic lower-dose version of the normal-dose CT INPUT_PATH.

    Projection-domain noise insertion (forward projection, Poisson photon counts with electronic noise,
    filtered back-projection) calibrated on real full/quarter-dose pairs: the noise texture follows the
    kernel group and the photon flux is measured per slice from the scan's own noise.
    """
    import torch

    from lungai.denoise.dose import DEFAULT_THICKNESS_MM, simulate_low_dose
    from lungai.image import Image
    from lungai.io import read_image, write_image
    from lungai.provenance import Provenance

    _check_output(output_path)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    image = read_image(input_path, check=check)
    if image.ndim == 2:  # one axial slice: a one-slice volume of the usual thickness
        direction = np.eye(3)
        direction[:2, :2] = image.direction
        image = Image(image.array[None], (*image.spacing, DEFAULT_THICKNESS_MM), (*image.origin, 0.0), direction,
                      image.metadata)
    started = time.perf_counter()
    with progress_reporter("simulate-dose") as progress:
        low = simulate_low_dose(image, dose, kernel=kernel, seed=seed, progress=progress.span(0.0, 0.95))
        provenance = Provenance(method="calibrated projection-domain low-dose simulation",
                                parameters={"dose_fraction": dose, "kernel_group": low.metadata["kernel_group"],
                                            "seed": seed, "flux_min": low.metadata["flux_min"],
                                            "flux_max": low.metadata["flux_max"]})
        progress.update(0.96, "writing")
        write_image(low, output_path, metadata=dict(provenance.header_fields(), dose_fraction=dose,
                                                    kernel_group=low.metadata["kernel_group"], seed=seed))
        progress.update(1.0, "done")
    pixel_mm = float(np.mean(image.spacing[:2]))
    ref = image.array.astype(np.float32)
    result = {"input": str(input_path.resolve()), "dose_fraction": dose, "kernel_group": low.metadata["kernel_group"],
              "seed": seed, "seconds": round(time.perf_counter() - started, 2), "provenance": provenance.to_dict(),
              "before": _noise_summary(ref, pixel_mm, ref), "after": _noise_summary(low.array, pixel_mm, ref),
              "outputs": {"simulated": str(output_path.resolve())}}
    b, a = result["before"], result["after"]
    lines = [f"{input_path}: simulated {dose:g} x dose ({result['kernel_group']} kernel) in {result['seconds']:.1f} s"]
    if b["noise_std_hu"] is not None:
        lines.append(f"  noise in flat soft tissue {b['noise_std_hu']:.1f} -> {a['noise_std_hu']:.1f} HU")
    lines.append(f"  wrote {output_path}")
    emit(result, "\n".join(lines))
