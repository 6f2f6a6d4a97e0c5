"""``lungai info`` and ``lungai convert``: look at and convert input images."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import click
import numpy as np

from lungai.cli.common import emit, progress_reporter
from lungai.errors import InputError
from lungai.image import Image
from lungai.io import describe_dicom_series, read_image, read_xray, write_image
from lungai.io.readers import PICTURE_SUFFIXES
from lungai.io.writers import IMAGE_SUFFIXES
from lungai.io.xray import RADIOGRAPH_MODALITIES

CHECKS = click.Choice(["ct", "volume", "none"])
INFO_CHECKS = click.Choice(["ct", "volume", "none", "xray"])
CHECK_HELP = ("ct: require a 3D chest CT in Hounsfield units; volume: any 3D volume with sane geometry "
              "(masks, maps); none: read only.")
INFO_CHECK_HELP = CHECK_HELP + (" xray: read a radiograph as `lungai xray` does (the default for PNG/JPEG/TIFF "
                                "files and DICOM DX/CR).")
MIN_SLICES_HELP = "Fewest slices accepted (default 3 for ct, 2 for volume; 1 allows a single DICOM slice)."


def _looks_like_radiograph(path: Path) -> bool:
    """A picture file, or a DICOM file whose modality is a projection radiograph."""
    if not path.is_file():
        return False
    if path.suffix.lower() in PICTURE_SUFFIXES:
        return True
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=["Modality"])
    except Exception:  # not DICOM (or unreadable): read_image reports the problem
        return False
    return str(ds.get("Modality", "")).strip().upper() in RADIOGRAPH_MODALITIES


def _summary(path: Path, image: Image, check: str) -> Dict[str, Any]:
    a = image.array
    return {"path": str(path.resolve()), "size_ijk": list(image.size), "spacing_mm": list(image.spacing),
            "origin_lps": list(image.origin), "direction": image.direction.tolist(),
            "ijk_to_ras": image.ijk_to_ras().tolist() if image.ndim == 3 else None,
            "extent_mm": [float(n * s) for n, s in zip(image.size, image.spacing)], "dtype": str(a.dtype),
            "min": float(a.min()), "max": float(a.max()), "mean": float(a.mean()),
            "voxel_volume_ml": image.voxel_volume_ml, "check": check,
            "metadata": {k: v for k, v in image.metadata.items() if isinstance(v, (str, int, float, bool))}}


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--series", "series_uid", metavar="UID",
              help="Series instance UID to read when a DICOM folder holds several CT series.")
@click.option("--check", type=INFO_CHECKS, default=None, help=INFO_CHECK_HELP + "  [default: ct]")
@click.option("--min-slices", type=click.IntRange(1), default=None, help=MIN_SLICES_HELP)
def info(input_path: Path, series_uid: Optional[str], check: Optional[str], min_slices: Optional[int]) -> None:
    """Show the size, spacing, origin, orientation and value range of INPUT after the input checks.

    INPUT is a NIfTI, NRRD or MHA file, a single DICOM file, or a folder of DICOM files (sub-folders
    included; every image series found is listed), or a chest radiograph. Exits with status 2 and the
    reason when INPUT cannot be used. With the global --json option the result is one JSON object on stdout.

    \b
    Examples:
      lungai info chest.nii.gz
      lungai --json info /data/dicom/patient1 --series 1.2.840.113619.2.55.3
      lungai info cxr.dcm
    """
    if check is None:
        check = "xray" if _looks_like_radiograph(input_path) else "ct"
    if check == "xray":
        image = read_xray(input_path)
    else:
        image = read_image(input_path, series_uid=series_uid, check=check, min_slices=min_slices)
    result = _summary(input_path, image, check)
    spacing = f"{tuple(round(s, 4) for s in image.spacing)} mm"
    if image.ndim == 2:
        known = image.metadata.get("pixel_spacing_known", True)
        lines = [f"{input_path}",
                 f"  radiograph {image.size[0]} x {image.size[1]} pixels, spacing {spacing if known else 'unknown'}"
                 f", modality {image.metadata.get('modality') or 'not stated'}",
                 f"  values scaled to 0..1: {result['min']:.3f} .. {result['max']:.3f} (mean {result['mean']:.3f})"]
    else:
        lines = [f"{input_path}",
                 f"  size (i, j, k): {tuple(image.size)}   spacing: {spacing}",
                 f"  origin (LPS): {tuple(round(o, 2) for o in image.origin)} mm",
                 f"  direction (columns = i, j, k in LPS): {np.round(image.direction, 4).tolist()}",
                 f"  values: {result['min']:g} .. {result['max']:g} (mean {result['mean']:.1f}), {image.array.dtype}"]
    if image.metadata.get("orientation_unknown"):
        lines.append("  warning: the NIfTI header states no orientation (qform and sform codes are 0); "
                     "left and right may be swapped")
    if input_path.is_dir():
        result["series"] = describe_dicom_series(input_path)
        lines.append(f"  series read: {image.metadata.get('series_uid')} ({image.metadata.get('modality')}, "
                     f"{image.metadata.get('files')} files)")
        for entry in result["series"]:
            lines.append(f"    {entry['series_uid']}  {entry['modality'] or '?':3}  {entry['files']:5d} files  "
                         f"{entry['description']}")
    lines.append(f"  check '{check}': passed")
    emit(result, "\n".join(lines))


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--series", "series_uid", metavar="UID",
              help="Series instance UID to read when a DICOM folder holds several CT series.")
@click.option("--check", type=CHECKS, default="ct", show_default=True, help=CHECK_HELP)
@click.option("--min-slices", type=click.IntRange(1), default=None, help=MIN_SLICES_HELP)
def convert(input_path: Path, output_path: Path, series_uid: Optional[str], check: str,
            min_slices: Optional[int]) -> None:
    """Convert INPUT (a file or a DICOM folder) to OUTPUT (.nii.gz, .nii, .nrrd or .mha).

    Voxel values and geometry (spacing, origin, orientation) are kept; NRRD and MHA store the geometry
    exactly, NIfTI to about a micrometre. The output is written to a temporary file and renamed, so a failed
    conversion leaves nothing behind. Exits with status 2 and the reason when INPUT cannot be used.

    \b
    Examples:
      lungai convert /data/dicom/patient1 patient1.nii.gz
      lungai --json convert scan.mha scan.nrrd --check volume
    """
    if not output_path.name.lower().endswith(IMAGE_SUFFIXES):
        raise click.BadParameter(f"must end in {', '.join(IMAGE_SUFFIXES)}", param_hint="OUTPUT")
    if not input_path.exists():  # the commonest mistake, reported before any progress display
        raise InputError(input_path, "does not exist")
    with progress_reporter("convert") as progress:
        progress.update(0.0, "reading")
        image = read_image(input_path, series_uid=series_uid, check=check, min_slices=min_slices)
        progress.update(0.6, "writing")
        write_image(image, output_path)
        progress.update(1.0, "done")
    out = str(output_path.resolve())
    emit({"input": str(input_path.resolve()), "output": out, "outputs": {"image": out},
          "size_ijk": list(image.size), "spacing_mm": list(image.spacing), "check": check},
         f"wrote {output_path} ({'x'.join(map(str, image.size))} voxels, "
         f"{' x '.join(f'{s:g}' for s in image.spacing)} mm)")
