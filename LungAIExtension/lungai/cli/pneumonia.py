"""``lungai pneumonia analyze`` and ``lungai pneumonia followup``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
import numpy as np
import SimpleITK as sitk

from lungai.cli.common import emit, progress_reporter, resolve_device, settings
from lungai.errors import InputError
from lungai.image import Image
from lungai.io import read_image, read_segmentation

METHOD = click.Choice(["classic", "model"])


def load_lungs(path: Path, ct: Image) -> Image:
    """A lungs label map (1 right, 2 left, 3 airways) from NIfTI/NRRD/MHA or .seg.nrrd, put on the CT grid."""
    if path.name.lower().endswith(".seg.nrrd"):
        labels, segments = read_segmentation(path)
        by_name = {s.name.lower(): s.label for s in segments}
        if "right lung" not in by_name or "left lung" not in by_name:
            raise InputError(path, "holds no 'right lung' and 'left lung' segments (make it with `lungai lungs`)")
        remapped = np.zeros(labels.shape, dtype=np.uint8)
        for name, target in (("right lung", 1), ("left lung", 2), ("airways", 3)):
            if name in by_name:
                remapped[labels.array == by_name[name]] = target
        labels = labels.like(remapped)
    else:
        labels = read_image(path, check="volume")
    values = set(np.unique(labels.array).tolist())
    if not values - {0}:
        raise InputError(path, "the lung mask is empty")
    if not values <= {0, 1, 2, 3}:
        raise InputError(path, f"label values {sorted(values - {0, 1, 2, 3})} are not lung labels "
                               "(expected 1 right lung, 2 left lung, 3 airways)")
    if labels.ndim != 3:
        raise InputError(path, "the lung mask must be a 3D label map")
    if not labels.same_grid(ct, tol=1e-3):
        moved = sitk.Resample(labels.to_sitk(), ct.to_sitk(), sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                              sitk.sitkUInt8)
        labels = ct.like(sitk.GetArrayFromImage(moved))
        if not labels.array.any():
            raise InputError(path, "the lung mask does not overlap the CT (different patient or frame?)")
    return labels.like(labels.array.astype(np.uint8))


@click.group()
def pneumonia() -> None:
    """Pneumonia lesions on chest CT: ground glass and consolidation, involvement, densities, follow-up, report."""


@pneumonia.command()
@click.argument("input_path", type=click.Path(path_type=Path))
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for lesions.seg.nrrd, lesions.csv, histogram.csv/png, results.json, report.html/pdf.")
@click.option("--lungs", "lungs_path", type=click.Path(path_type=Path),
              help="Lungs label map (lungs.nii.gz or lungs.seg.nrrd from `lungai lungs`); segmented when absent.")
@click.option("--method", type=METHOD, default="classic", show_default=True,
              help="classic: density ranges with vessel and airway-wall suppression (no weights); "
                   "model: the registered lesion model.")
@click.option("--min-size-mm", type=click.FloatRange(0, 100), default=5.0, show_default=True,
              help="Drop lesions whose equivalent-sphere diameter is below this.")
@click.option("--consecutive", type=click.IntRange(1, 1000), default=3, show_default=True,
              help="Slices in a row with a lesion in one quadrant that make the patient call positive.")
@click.option("--model", "model_name", help="Lesion model name[@version] for --method model (default: the newest "
                                           "registered lesion model whose dimensionality matches the image).")
@click.option("--series", "series_uid", help="Series instance UID when a DICOM folder holds several series.")
@click.option("--pdf/--no-pdf", default=True, show_default=True, help="Also write report.pdf.")
def analyze(input_path: Path, outdir: Path, lungs_path: Optional[Path], method: str, min_size_mm: float,
            consecutive: int, model_name: Optional[str], series_uid: Optional[str], pdf: bool) -> None:
    """Find pneumonia lesions in the chest CT INPUT_PATH and write the figures and the report into OUTDIR."""
    from lungai.pneumonia.analysis import run_analysis

    device = resolve_device(settings().device)
    image = read_image(input_path, series_uid=series_uid, check="ct")
    lungs = load_lungs(lungs_path, image) if lungs_path else None
    with progress_reporter("pneumonia") as progress:
        result = run_analysis(image, outdir, lungs=lungs, method=method, min_size_mm=min_size_mm,
                              consecutive=consecutive, device=device, pdf=pdf, progress=progress,
                              model_name=model_name)
    s = result.summary()
    emit({"input": str(input_path), "summary": s, "patient_call": result.call.to_dict(),
          "outputs": result.outputs},
         "\n".join([f"pneumonia analysis of {input_path} ({method})",
                    f"  {s['lesion_count']} lesions, {s['lesion_volume_ml']} ml (ground glass {s['ground_glass_ml']}"
                    f" ml, consolidation {s['consolidation_ml']} ml)",
                    f"  opacity {s['percent_opacity']} %, high opacity {s['percent_high_opacity']} %, severity "
                    f"{s['severity_score']}/{s['severity_max']} ({s['severity_basis']})",
                    f"  per-patient call: {s['call']}",
                    f"  report: {result.outputs['report']}"]))


@pneumonia.command()
@click.argument("earlier_path", type=click.Path(path_type=Path))
@click.argument("later_path", type=click.Path(path_type=Path))
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for followup.json, changes.csv, change.seg.nrrd and report.html.")
@click.option("--earlier-lungs", type=click.Path(path_type=Path), help="Lungs label map of the earlier CT.")
@click.option("--later-lungs", type=click.Path(path_type=Path), help="Lungs label map of the later CT.")
@click.option("--method", type=METHOD, default="classic", show_default=True, help="Lesion method for both scans.")
@click.option("--model", "model_name", help="Lesion model name[@version] for --method model (default: the newest "
                                           "registered lesion model for CT volumes).")
@click.option("--min-size-mm", type=click.FloatRange(0, 100), default=5.0, show_default=True,
              help="Drop lesions whose equivalent-sphere diameter is below this.")
@click.option("--match-mm", type=click.FloatRange(0, 200), default=10.0, show_default=True,
              help="Lesions whose centroids are this close after registration are the same lesion.")
@click.option("--pdf/--no-pdf", default=True, show_default=True, help="Also write report.pdf.")
def followup(earlier_path: Path, later_path: Path, outdir: Path, earlier_lungs: Optional[Path],
             later_lungs: Optional[Path], method: str, model_name: Optional[str], min_size_mm: float,
             match_mm: float, pdf: bool) -> None:
    """Compare two chest CTs of one patient (EARLIER_PATH, LATER_PATH): changes, matched lesions, overlay."""
    from lungai.pneumonia.followup import followup as run, write_followup

    device = resolve_device(settings().device)
    earlier = read_image(earlier_path, check="ct")
    later = read_image(later_path, check="ct")
    e_lungs = load_lungs(earlier_lungs, earlier) if earlier_lungs else None
    l_lungs = load_lungs(later_lungs, later) if later_lungs else None
    with progress_reporter("follow-up") as progress:
        result = run(earlier, later, e_lungs, l_lungs, method=method, min_size_mm=min_size_mm, device=device,
                     match_mm=match_mm, progress=progress.span(0.0, 0.9), model_name=model_name)
        write_followup(result, outdir, pdf=pdf, progress=progress.span(0.9, 1.0))
    counts = result.counts()
    both = result.changes[0] if result.changes else None
    emit({"earlier": str(earlier_path), "later": str(later_path), "lesion_changes": counts,
          "registration": {k: v for k, v in result.registration.to_dict().items() if k.startswith("lung_dice")},
          "outputs": result.outputs},
         "\n".join([f"follow-up {earlier_path} -> {later_path}",
                    "  lesions: " + ", ".join(f"{n} {status}" for status, n in counts.items()),
                    f"  lesion volume {both.earlier_lesion_ml:.1f} -> {both.later_lesion_ml:.1f} ml" if both else "",
                    f"  report: {result.outputs['report']}"]))
