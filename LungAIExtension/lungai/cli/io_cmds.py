"""``lungai info`` and ``lungai convert``: look at and convert input images."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
import numpy as np

from lungai.cli.common import emit
from lungai.io import read_image, write_image

CHECKS = click.Choice(["ct", "volume", "none"])


@click.command()
@click.argument("input_path", type=click.Path(path_type=Path))
@click.option("--series", "series_uid", help="Series instance UID when a DICOM folder holds several series.")
@click.option("--check", type=CHECKS, default="ct", show_default=True,
              help="ct: require a 3D chest CT in HU; volume: any 3D volume; none: no checks.")
def info(input_path: Path, series_uid: Optional[str], check: str) -> None:
    """Show INPUT_PATH's size, spacing, origin, orientation and intensity range, after the input checks."""
    image = read_image(input_path, series_uid=series_uid, check=check)
    a = image.array
    result = {"path": str(input_path), "size_ijk": image.size, "spacing_mm": image.spacing, "origin_lps": image.origin,
              "direction": image.direction.tolist(), "dtype": str(a.dtype), "min": float(a.min()),
              "max": float(a.max()), "mean": float(a.mean()),
              "extent_mm": [float(n * s) for n, s in zip(image.size, image.spacing)],
              "metadata": {k: v for k, v in image.metadata.items() if isinstance(v, (str, int, float))}}
    emit(result, "\n".join([
        f"{input_path}",
        f"  size (i, j, k): {image.size}   spacing: {tuple(round(s, 3) for s in image.spacing)} mm",
        f"  origin (LPS): {tuple(round(o, 2) for o in image.origin)} mm",
        f"  direction: {np.round(image.direction, 3).tolist()}",
        f"  values: {result['min']:g} .. {result['max']:g} (mean {result['mean']:.1f}), {a.dtype}",
        f"  check '{check}': passed"]))


@click.command()
@click.argument("input_path", type=click.Path(path_type=Path))
@click.argument("output_path", type=click.Path(path_type=Path))
@click.option("--series", "series_uid", help="Series instance UID when a DICOM folder holds several series.")
@click.option("--check", type=CHECKS, default="ct", show_default=True, help="Input checks, as for `lungai info`.")
def convert(input_path: Path, output_path: Path, series_uid: Optional[str], check: str) -> None:
    """Convert INPUT_PATH (file or DICOM folder) to OUTPUT_PATH (.nii.gz, .nii, .nrrd or .mha), geometry exact."""
    if not output_path.name.lower().endswith((".nii.gz", ".nii", ".nrrd", ".mha")):
        raise click.BadParameter("must end in .nii.gz, .nii, .nrrd or .mha", param_hint="OUTPUT_PATH")
    image = read_image(input_path, series_uid=series_uid, check=check)
    write_image(image, output_path)
    emit({"input": str(input_path), "output": str(output_path), "size_ijk": image.size},
         f"wrote {output_path} ({'x'.join(map(str, image.size))})")
