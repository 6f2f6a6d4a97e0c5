"""Segment names <-> a review store's label values, and the case table (pure Python: lungai core, no Slicer)."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional


def _normal(name: str) -> str:
    return name.strip().lower().replace("-", " ").replace("_", " ")


def segment_definitions(labels: Mapping[int, str]) -> List[Any]:
    """``lungai.io.Segment`` per store label (standard names, colours and terminology)."""
    from lungai.io import Segment
    from lungai.terminology import STRUCTURES

    segments = []
    for value, key in sorted(labels.items()):
        if key in STRUCTURES:
            segments.append(Segment.from_structure(int(value), key))
        else:
            segments.append(Segment(int(value), key.replace("_", " "), (0.8, 0.8, 0.2)))
    return segments


def label_for_segment(name: str, labels: Mapping[int, str]) -> Optional[int]:
    """The store value a segment name stands for ("right lung", "Right_Lung" -> 1); None if none matches."""
    from lungai.terminology import STRUCTURES

    wanted = _normal(name)
    for value, key in labels.items():
        names = {_normal(key)}
        if key in STRUCTURES:
            names.add(_normal(STRUCTURES[key].name))
        if wanted in names:
            return int(value)
    return None


def case_rows(cases: List[Any]) -> List[Dict[str, Any]]:
    """One row per case for the case list: id, status, versions, proposals, assigned to, last change."""
    rows = []
    for record in cases:
        last = record.history[-1] if record.history else {}
        rows.append({"case": record.id, "status": record.status, "versions": len(record.versions),
                     "proposals": len(record.proposals), "assigned": record.assigned_to or "",
                     "last change": f"{last.get('event', '')} {last.get('time', '')[:16]}".strip()})
    return rows
