"""Segment names <-> a review store's label values, and the case table (pure Python: lungai core, no Slicer)."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple


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


def entry_choices(record: Any) -> List[Tuple[str, str]]:
    """(key, description) of a case's saved versions and AI proposals, newest first; keys are ``v<n>`` /
    ``p<n>`` (see :func:`parse_entry_key`)."""
    entries = []
    for version in record.versions:
        note = f" - {version.note}" if version.note else ""
        entries.append((version.created, f"v{version.number}",
                        f"version {version.number} by {version.annotator}, {version.created[:16]}{note}"))
    for proposal in record.proposals:
        model = proposal.provenance.get("model") or proposal.provenance.get("model_name") or \
            proposal.provenance.get("method", "AI")
        entries.append((proposal.created, f"p{proposal.number}",
                        f"AI proposal {proposal.number} ({model}), {proposal.created[:16]}"))
    entries.sort(key=lambda entry: entry[0], reverse=True)
    return [(key, text) for _, key, text in entries]


def parse_entry_key(key: str) -> Tuple[str, int]:
    """``"v3"`` -> ``("version", 3)``, ``"p1"`` -> ``("proposal", 1)``."""
    kinds = {"v": "version", "p": "proposal"}
    if len(key) < 2 or key[0] not in kinds or not key[1:].isdigit():
        raise ValueError(f"not a version or proposal key: {key!r}")
    return kinds[key[0]], int(key[1:])
