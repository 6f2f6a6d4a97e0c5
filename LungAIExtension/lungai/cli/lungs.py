"""``lungai lungs``: right and left lung, airways, zones (and lobes with a lobe-capable backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from lungai.cli.common import emit, progress_reporter, resolve_device, settings
from lungai.io import read_image, write_image, write_json, write_segmentation
from lungai.lung import METHODS, segment_lungs


@click.command()
@click.argument("input_path", type=click.Path(path_type=Path))
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for lungs.seg.nrrd, zones.seg.nrrd, lungs.nii.gz, figures.json (+ lobes.seg.nrrd).")
@click.option("--method", type=click.Choice(METHODS), default="auto", show_default=True,
              help="auto: the installed lungs model, else classic; classic needs no weights; lungmask and "
                   "totalsegmentator need those packages and their weights.")
@click.option("--model", "model_name", help="Registry model name[@version] for --method model.")
@click.option("--series", "series_uid", help="Series instance UID when a DICOM folder holds several series.")
def lungs(input_path: Path, outdir: Path, method: str, model_name: Optional[str], series_uid: Optional[str]) -> None:
    """Segment the lungs of the chest CT INPUT_PATH (file or DICOM folder) into OUTDIR."""
    run = settings()
    device = resolve_device(run.device)
    image = read_image(input_path, series_uid=series_uid, check="volume")
    with progress_reporter("lungs") as progress:
        result = segment_lungs(image, method=method, progress=progress, model_name=model_name, device=device)
    header = result.provenance.header_fields()
    outdir.mkdir(parents=True, exist_ok=True)
    outputs = {"lungs_seg": outdir / "lungs.seg.nrrd", "zones_seg": outdir / "zones.seg.nrrd",
               "lungs_labelmap": outdir / "lungs.nii.gz", "figures": outdir / "figures.json"}
    write_segmentation(result.labels, result.segments(), outputs["lungs_seg"], metadata=header)
    write_segmentation(result.zones, result.zone_segments(), outputs["zones_seg"], metadata=header)
    write_image(result.labels, outputs["lungs_labelmap"], metadata=header)
    if result.lobes is not None:
        outputs["lobes_seg"] = outdir / "lobes.seg.nrrd"
        write_segmentation(result.lobes, result.lobe_segments(), outputs["lobes_seg"], metadata=header)
    write_json({"input": str(input_path), "figures": result.figures, "zone_names": result.zone_names,
                "details": result.details, "provenance": result.provenance.to_dict()}, outputs["figures"])
    outputs = {name: str(path.resolve()) for name, path in outputs.items()}
    f = result.figures
    phase = f["breathing_phase"]
    ratio = f["right_left_ratio"]
    emit({"input": str(input_path), "method": result.provenance.method, "figures": f, "outputs": outputs},
         "\n".join([f"lungs of {input_path} ({result.provenance.method})",
                    f"  right lung {f['right_lung']['volume_ml']:.0f} ml, left lung {f['left_lung']['volume_ml']:.0f} ml"
                    f", right/left {ratio if ratio is not None else 'n/a'}",
                    f"  mean density {f['total']['mean_hu']} HU; breathing phase {phase['phase']} "
                    f"(confidence {phase['confidence']})",
                    f"  outputs in {outdir}"]))
