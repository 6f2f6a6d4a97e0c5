"""The whole pneumonia analysis of one chest CT: lungs, lesions, instances, involvement, histograms, patient call.

:func:`analyze` computes and returns an :class:`AnalysisResult`; :func:`run_analysis` also writes every output
file (segmentation, CSV tables, JSON, histogram plot, HTML and PDF report) into a folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

from lungai.image import Image
from lungai.io import write_json, write_segmentation
from lungai.labels import LESION_LABELS, segments_for
from lungai.pneumonia.histogram import DensityHistogram, lung_histograms
from lungai.pneumonia.involvement import Involvement, measure_involvement
from lungai.pneumonia.lesions import Lesion, find_lesions
from lungai.pneumonia.regions import LungRegions, PatientAxes, regions_from_labels
from lungai.pneumonia.segmentation import ClassicParams, segment_lesions
from lungai.pneumonia.slices import PatientCall, patient_call
from lungai.progress import Progress, ensure
from lungai.provenance import Provenance
from lungai.report.tables import write_csv

PathLike = Union[str, Path]
LESION_COLUMNS = ["id", "type", "volume_ml", "consolidation_fraction", "side", "zone", "lobe", "mean_hu",
                  "largest_diameter_mm", "equivalent_diameter_mm", "centroid_lps", "centroid_ijk", "voxels"]


def _array(value: Any) -> Optional[np.ndarray]:
    if value is None:
        return None
    return np.asarray(value.array if isinstance(value, Image) else value)


@dataclass
class AnalysisResult:
    """Everything the analysis found on one CT (label maps on the CT grid)."""

    image: Image
    regions: LungRegions
    labels: np.ndarray  # lesion classes after the minimum size: 0, 1 ground glass, 2 consolidation
    instances: np.ndarray  # lesion id per voxel
    lesions: List[Lesion]
    involvement: Involvement
    histogram: DensityHistogram
    call: PatientCall
    provenance: Provenance
    lung_provenance: Optional[Dict[str, Any]] = None
    parameters: Dict[str, Any] = field(default_factory=dict)
    outputs: Dict[str, str] = field(default_factory=dict)

    def summary(self) -> Dict[str, Any]:
        both = self.involvement.lungs[0]
        return {"lesion_count": len(self.lesions), "lesion_volume_ml": round(both.lesion_ml, 2),
                "ground_glass_ml": round(both.ground_glass_ml, 2), "consolidation_ml": round(both.consolidation_ml, 2),
                "percent_opacity": round(self.involvement.percent_opacity, 2),
                "percent_high_opacity": round(self.involvement.percent_high_opacity, 2),
                "severity_score": self.involvement.severity_total, "severity_max": self.involvement.severity_max,
                "severity_basis": self.involvement.severity_basis, "call": "positive" if self.call.positive else "negative"}

    def to_dict(self) -> Dict[str, Any]:
        return {"summary": self.summary(), "lesions": [les.to_dict() for les in self.lesions],
                "involvement": self.involvement.to_dict(), "histogram": self.histogram.to_dict(),
                "patient_call": self.call.to_dict(), "parameters": self.parameters,
                "provenance": self.provenance.to_dict(), "lung_provenance": self.lung_provenance,
                "image": {"size_ijk": self.image.size, "spacing_mm": self.image.spacing,
                          "source": self.image.metadata.get("source")},
                "outputs": dict(self.outputs)}


def lung_regions(image: Image, lungs: Optional[Image] = None, progress: Optional[Progress] = None,
                 lung_method: str = "auto", device: str = "cpu") -> tuple:
    """Regions from a given lungs label map (on the CT grid) or from :func:`lungai.lung.segment_lungs`."""
    if lungs is not None:
        if lungs.shape != image.shape:
            raise ValueError(f"the lung mask {lungs.size} is not on the CT grid {image.size}")
        return regions_from_labels(image, _array(lungs)), None
    from lungai.lung import segment_lungs

    result = segment_lungs(image, method=lung_method, progress=progress, device=device)
    regions = regions_from_labels(image, _array(result.labels), _array(getattr(result, "zones", None)),
                                  _array(getattr(result, "lobes", None)))
    provenance = getattr(result, "provenance", None)
    return regions, provenance.to_dict() if hasattr(provenance, "to_dict") else provenance


def analyze(image: Image, lungs: Optional[Image] = None, method: str = "classic", min_size_mm: float = 5.0,
            consecutive: int = 3, device: str = "cpu", params: Optional[ClassicParams] = None,
            progress: Optional[Progress] = None, regions: Optional[LungRegions] = None,
            model_name: Optional[str] = None, lung_method: str = "auto") -> AnalysisResult:
    """Run the analysis (no files written). ``regions`` may be given directly (tests, follow-up)."""
    progress = ensure(progress)
    lung_provenance = None
    if regions is None:
        progress.update(0.0, "lung segmentation")
        regions, lung_provenance = lung_regions(image, lungs, progress.span(0.0, 0.4), lung_method, device)
    progress.update(0.4, "lesion segmentation")
    seg = segment_lesions(image, regions, method=method, device=device, params=params,
                          progress=progress.span(0.4, 0.8), model_name=model_name)
    progress.update(0.8, "lesion instances")
    lesions, instances, labels = find_lesions(image, seg.labels, regions, min_size_mm)
    progress.update(0.9, "involvement and densities")
    involvement = measure_involvement(labels, regions, image.voxel_volume_ml)
    histogram = lung_histograms(image.array, regions, image.voxel_volume_ml)
    call = patient_call(labels, regions, PatientAxes.of(image), consecutive,
                        min_area_mm2=float(np.pi * (min_size_mm / 2.0) ** 2), spacing_kji=tuple(reversed(image.spacing)))
    provenance = seg.provenance
    provenance.parameters.update(min_size_mm=min_size_mm, consecutive=consecutive)
    progress.update(1.0, "analysis done")
    return AnalysisResult(image=image, regions=regions, labels=labels, instances=instances, lesions=lesions,
                          involvement=involvement, histogram=histogram, call=call, provenance=provenance,
                          lung_provenance=lung_provenance,
                          parameters={"method": method, "min_size_mm": min_size_mm, "consecutive": consecutive})


def write_outputs(result: AnalysisResult, outdir: PathLike, pdf: bool = True,
                  progress: Optional[Progress] = None) -> Dict[str, str]:
    """Write lesions.seg.nrrd, lesions.csv, involvement.csv, slices.csv, histogram.csv/.png, results.json and
    report.html (+ report.pdf); returns name -> absolute path (also stored in ``result.outputs``)."""
    from lungai.pneumonia.report import analysis_report, histogram_png

    progress = ensure(progress)
    out = Path(outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    files: Dict[str, Path] = {}
    progress.update(0.0, "writing segmentation")
    files["lesions"] = write_segmentation(result.image.like(result.labels), segments_for(LESION_LABELS),
                                          out / "lesions.seg.nrrd", metadata=result.provenance.header_fields())
    progress.update(0.3, "writing tables")
    files["lesions_csv"] = write_csv([les.to_dict() for les in result.lesions], out / "lesions.csv", LESION_COLUMNS)
    files["involvement_csv"] = write_csv(result.involvement.rows(), out / "involvement.csv")
    files["slices_csv"] = write_csv(result.call.rows(), out / "slices.csv",
                                    ["slice", "right_anterior", "right_posterior", "left_anterior", "left_posterior"])
    files["histogram_csv"] = write_csv(result.histogram.rows(), out / "histogram.csv")
    png = histogram_png(result.histogram)
    files["histogram_png"] = _write_bytes(png, out / "histogram.png")
    progress.update(0.45, "writing the report")
    report = analysis_report(result, histogram_figure=png)
    files["report"] = report.write_html(out / "report.html")
    if pdf:
        progress.update(0.8, "writing the PDF report")
        files["report_pdf"] = report.write_pdf(out / "report.pdf")
    result.outputs = {name: str(path) for name, path in files.items()}
    result.outputs["results"] = str(out / "results.json")
    write_json(result.to_dict(), out / "results.json")
    progress.update(1.0, "outputs written")
    return result.outputs


def _write_bytes(data: bytes, path: Path) -> Path:
    from lungai.io import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return path


def run_analysis(image: Image, outdir: PathLike, lungs: Optional[Image] = None, method: str = "classic",
                 min_size_mm: float = 5.0, consecutive: int = 3, device: str = "cpu", pdf: bool = True,
                 progress: Optional[Progress] = None, regions: Optional[LungRegions] = None,
                 model_name: Optional[str] = None, lung_method: str = "auto") -> AnalysisResult:
    """Analyse ``image`` and write every output into ``outdir`` (what ``lungai pneumonia analyze`` and
    ``lungai demo`` run)."""
    progress = ensure(progress)
    result = analyze(image, lungs=lungs, method=method, min_size_mm=min_size_mm, consecutive=consecutive,
                     device=device, progress=progress.span(0.0, 0.8), regions=regions, model_name=model_name,
                     lung_method=lung_method)
    write_outputs(result, outdir, pdf=pdf, progress=progress.span(0.8, 1.0))
    return result
