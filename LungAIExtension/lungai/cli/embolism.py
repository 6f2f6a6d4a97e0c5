"""``lungai embolism``: pulmonary emboli on a CT pulmonary angiogram."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import click

from lungai.cli.common import emit, progress_reporter, resolve_device, settings
from lungai.io import atomic_output, read_image, write_json, write_segmentation

CSV_FIELDS = ("id", "accepted", "confidence", "level", "side", "occlusive", "size_mm", "volume_ml",
              "vessel_diameter_mm", "x_lps", "y_lps", "z_lps", "r_ras", "a_ras", "s_ras")


def write_candidates_csv(candidates, path: Path) -> Path:
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
            writer.writeheader()
            for c in candidates:
                row = {k: c[k] for k in CSV_FIELDS if k in c}
                row.update(zip(("x_lps", "y_lps", "z_lps"), c["position_lps"]))
                row.update(zip(("r_ras", "a_ras", "s_ras"), c["position_ras"]))
                writer.writerow(row)
    return path


@click.command()
@click.argument("input_path", type=click.Path(path_type=Path))
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for candidates.json, candidates.csv, emboli.seg.nrrd and arteries.seg.nrrd.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
              help="Calibrated probability above which a candidate is reported as an embolus [default: 0.5].")
@click.option("--lungs", "lungs_path", type=click.Path(path_type=Path),
              help="Lung label map or lungs.seg.nrrd (from `lungai lungs`) instead of segmenting the lungs.")
@click.option("--model", "model_name", help="Candidate scorer as registry name[@version] (default: newest).")
@click.option("--series", "series_uid", help="Series instance UID when a DICOM folder holds several series.")
def embolism(input_path: Path, outdir: Path, threshold: Optional[float], lungs_path: Optional[Path],
             model_name: Optional[str], series_uid: Optional[str]) -> None:
    """Detect pulmonary emboli on the CTPA INPUT_PATH (file or DICOM folder) into OUTDIR.

    A CT without contrast in the pulmonary trunk is refused with 'not a CTPA'. Candidates below the threshold
    are kept in candidates.json/csv (accepted: false) for review.
    """
    from lungai.embolism import DEFAULT_THRESHOLD, detect_emboli

    run = settings()
    device = resolve_device(run.device)
    image = read_image(input_path, series_uid=series_uid, check="ct")
    lungs = None
    if lungs_path is not None:
        from lungai.cli.pneumonia import load_lungs

        lungs = load_lungs(lungs_path, image)
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    with progress_reporter("embolism") as progress:
        result = detect_emboli(image, threshold=threshold, model=model_name, lung_labels=lungs, device=device,
                               progress=progress)
    header = result.provenance.header_fields()
    outdir.mkdir(parents=True, exist_ok=True)
    outputs = {"candidates_json": outdir / "candidates.json", "candidates_csv": outdir / "candidates.csv",
               "emboli_seg": outdir / "emboli.seg.nrrd", "arteries_seg": outdir / "arteries.seg.nrrd"}
    write_json({"input": str(input_path), **result.to_dict()}, outputs["candidates_json"])
    write_candidates_csv(result.candidates, outputs["candidates_csv"])
    write_segmentation(result.emboli, result.embolus_segments(), outputs["emboli_seg"], metadata=header)
    write_segmentation(result.arteries, result.artery_segments(), outputs["arteries_seg"], metadata=header)
    outputs = {name: str(path.resolve()) for name, path in outputs.items()}
    q = result.qanadli
    lines = [f"pulmonary emboli on {input_path}",
             f"  PE score {result.pe_score:.2f}; {len(result.accepted)} embolus candidate(s) above {threshold:g} "
             f"of {len(result.candidates)}",
             f"  Qanadli obstruction index {q['index_percent']}% ({q['score']}/40)"]
    for c in result.accepted:
        lines.append(f"  #{c['id']}: {c['level']} {c['side']}, {c['size_mm']} mm, p={c['confidence']:.2f}"
                     f"{', occlusive' if c['occlusive'] else ''}")
    lines.append(f"  outputs in {outdir}")
    scorer = {"model": result.provenance.model_name, "version": result.provenance.model_version,
              "working_grid_mm": result.provenance.parameters.get("working_grid_mm")}
    lines.insert(-1, f"  scored by {scorer['model']} {scorer['version']} on a "
                     f"{' x '.join(f'{s:g}' for s in scorer['working_grid_mm'])} mm grid")
    emit({"input": str(input_path), "pe_score": result.pe_score, "pe_present": bool(result.accepted),
          "threshold": threshold, "emboli_count": len(result.accepted), "qanadli": q, "scorer": scorer,
          "trunk": result.trunk, "seconds": round(result.seconds, 2), "outputs": outputs}, "\n".join(lines))
