"""``lungai xray IMAGE -o OUT``: normal / bacterial / viral pneumonia on a chest radiograph, with a heat map."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from lungai.cli.common import emit, progress_reporter, resolve_device, settings


@click.command()
@click.argument("image_path", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for result.json, heatmap.nrrd and heatmap.png (created if needed).")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path),
              help="An xray-resnet weights file to use instead of the registered xray-pneumonia model.")
@click.option("--model-version", help="Version of the registered xray-pneumonia model (default: the newest).")
def xray(image_path: Path, out_dir: Path, weights: Optional[Path], model_version: Optional[str]) -> None:
    """Classify IMAGE_PATH (a frontal chest radiograph: PNG, JPEG, DICOM DX/CR, or a 2D NRRD/MHA/NIfTI such as
    Slicer exports) as normal, bacterial or viral pneumonia with calibrated probabilities, and map where the predicted class was seen (Grad-CAM).

    The image is first checked to be a plausible frontal chest radiograph; a CT slice, a photograph, a blank or
    an inverted picture is refused (exit code 2). The model was trained on paediatric radiographs.
    """
    import torch

    from lungai.io import write_image, write_json
    from lungai.xray.classifier import XrayClassifier, classify_file
    from lungai.xray.heatmap import overlay_rgb, write_overlay_png

    torch.set_num_threads(1)  # a 128-pixel film: one thread is fast and never fights other jobs for cores
    device = resolve_device(settings().device)
    with progress_reporter("xray") as progress:
        progress.update(0.0, "loading the model")
        classifier = (XrayClassifier.from_file(weights, device) if weights
                      else XrayClassifier.from_registry(model_version, device))
        result = classify_file(image_path, classifier, progress=progress.span(0.05, 0.85))
        progress.update(0.9, "writing the results")
        meta = dict(result.provenance.header_fields(), heatmap_class=result.predicted,
                    probabilities={k: round(v, 4) for k, v in result.probabilities.items()})
        outputs = {"result": out_dir / "result.json", "heatmap": out_dir / "heatmap.nrrd",
                   "overlay": out_dir / "heatmap.png"}
        write_image(result.heatmap, outputs["heatmap"], metadata=meta)
        write_overlay_png(overlay_rgb(result.radiograph.array, result.heatmap.array), outputs["overlay"])
        summary = dict(result.to_dict(), input=str(image_path.resolve()),
                       outputs={k: str(v.resolve()) for k, v in outputs.items()})
        write_json(summary, outputs["result"])
        progress.update(1.0, "done")
    p = result.probabilities
    lines = [f"{image_path}: {result.predicted} (normal {p['normal']:.1%}, bacterial {p['bacterial']:.1%}, "
             f"viral {p['viral']:.1%}; pneumonia {result.pneumonia_probability:.1%})"]
    lines += [f"  warning: {w}" for w in result.plausibility.warnings]
    lines += [f"  wrote {v}" for v in summary["outputs"].values()]
    emit(summary, "\n".join(lines))
