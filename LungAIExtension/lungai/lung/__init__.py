"""Lung segmentation: right and left lung, airways, zones, lobes (learned backends) and lung figures.

    from lungai.lung import segment_lungs
    result = segment_lungs(ct_image, method="auto")   # auto | classic | model | lungmask | totalsegmentator
    result.labels, result.zones, result.lobes, result.figures, result.provenance, result.segments()

See ``docs/lungs.md`` for the method and its measured accuracy.
"""

from lungai.lung.api import METHODS, resolve_method, segment_lungs
from lungai.lung.figures import lung_figures
from lungai.lung.result import LungResult
from lungai.lung.zones import ZONE_TABLE, compute_zones

__all__ = ["segment_lungs", "LungResult", "lung_figures", "compute_zones", "ZONE_TABLE", "METHODS",
           "resolve_method"]
