"""The three chest radiograph classes the classifier tells apart, and how data set labels map onto them."""

from __future__ import annotations

from typing import Dict, Tuple

CLASS_NAMES: Tuple[str, ...] = ("normal", "bacterial", "viral")
"""Output order of the classifier's probabilities."""

CLASS_TITLES: Dict[str, str] = {"normal": "No pneumonia", "bacterial": "Bacterial pneumonia",
                                "viral": "Viral pneumonia"}

# Kermany et al. labels.csv ``subtype`` column -> class index
SUBTYPE_TO_CLASS: Dict[str, int] = {"normal": 0, "bacteria": 1, "bacterial": 1, "virus": 2, "viral": 2}


def class_index(subtype: str) -> int:
    """Class index of a data set subtype label (``normal``, ``bacteria``, ``virus``; case-insensitive)."""
    key = subtype.strip().lower()
    if key not in SUBTYPE_TO_CLASS:
        raise ValueError(f"unknown radiograph label {subtype!r} (expected one of {sorted(SUBTYPE_TO_CLASS)})")
    return SUBTYPE_TO_CLASS[key]
