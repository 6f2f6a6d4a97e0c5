"""Label values shared by the phantom's ground truth, the segmenters and the Slicer modules."""

from __future__ import annotations

from typing import Dict, List

from lungai.io.segmentation import Segment

# lungs label map
RIGHT_LUNG, LEFT_LUNG, AIRWAYS = 1, 2, 3
LUNG_LABELS: Dict[int, str] = {RIGHT_LUNG: "right_lung", LEFT_LUNG: "left_lung", AIRWAYS: "airways"}

# lobes label map
RUL, RML, RLL, LUL, LLL = 1, 2, 3, 4, 5
LOBE_LABELS: Dict[int, str] = {RUL: "right_upper_lobe", RML: "right_middle_lobe", RLL: "right_lower_lobe",
                               LUL: "left_upper_lobe", LLL: "left_lower_lobe"}
RIGHT_LOBES, LEFT_LOBES = (RUL, RML, RLL), (LUL, LLL)

# lesion class map
GROUND_GLASS, CONSOLIDATION = 1, 2
LESION_LABELS: Dict[int, str] = {GROUND_GLASS: "ground_glass", CONSOLIDATION: "consolidation"}


def segments_for(labels: Dict[int, str]) -> List[Segment]:
    """Slicer segment descriptions (names, colours, terminology) for a label table above."""
    return [Segment.from_structure(value, key) for value, key in labels.items()]
