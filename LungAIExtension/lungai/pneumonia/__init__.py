"""Pneumonia analysis of chest CT: lesions (ground glass, consolidation), involvement, density, follow-up.

Pure functions over :class:`lungai.Image` and masks, each returning a dataclass with ``to_dict()``;
:func:`run_analysis` and :func:`run_followup` also write the outputs and the report. See ``docs/pneumonia.md``.
"""

from lungai.pneumonia.analysis import AnalysisResult, analyze, run_analysis, write_outputs
from lungai.pneumonia.histogram import DensityHistogram, lung_histograms
from lungai.pneumonia.involvement import Involvement, measure_involvement, severity_points
from lungai.pneumonia.lesions import Lesion, find_lesions
from lungai.pneumonia.regions import LungRegions, PatientAxes, regions_from_labels
from lungai.pneumonia.segmentation import ClassicParams, LesionSegmentation, segment_lesions
from lungai.pneumonia.slices import PatientCall, patient_call

__all__ = ["AnalysisResult", "analyze", "run_analysis", "write_outputs", "DensityHistogram", "lung_histograms",
           "Involvement", "measure_involvement", "severity_points", "Lesion", "find_lesions", "LungRegions",
           "PatientAxes", "regions_from_labels", "ClassicParams", "LesionSegmentation", "segment_lesions",
           "PatientCall", "patient_call"]
