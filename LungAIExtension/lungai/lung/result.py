"""The result of a lung segmentation: label maps, zones, optional lobes, figures and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from lungai.image import Image
from lungai.io.segmentation import Segment
from lungai.labels import LOBE_LABELS, LUNG_LABELS, segments_for
from lungai.lung.zones import ZONE_TABLE, zone_segments
from lungai.provenance import Provenance


@dataclass
class LungResult:
    """Lungs of one CT, all on the input grid.

    ``labels``: 0 background, 1 right lung, 2 left lung, 3 airways (trachea and bronchi outside the lungs).
    ``zones``: 12 zones (``zone_names`` maps value -> "right upper ventral", ...). ``lobes``: lobe labels 1..5
    (see :mod:`lungai.labels`) when a lobe-capable backend ran, else ``None``. ``figures``: see
    :func:`lungai.lung.lung_figures`.
    """

    labels: Image
    zones: Image
    figures: Dict[str, Any]
    provenance: Provenance
    lobes: Optional[Image] = None
    zone_names: Dict[int, str] = field(default_factory=lambda: dict(ZONE_TABLE))
    details: Dict[str, Any] = field(default_factory=dict)

    def segments(self) -> List[Segment]:
        """Named, coloured, coded segments of :attr:`labels`."""
        return segments_for(LUNG_LABELS)

    def zone_segments(self) -> List[Segment]:
        return zone_segments()

    def lobe_segments(self) -> List[Segment]:
        return segments_for(LOBE_LABELS)
