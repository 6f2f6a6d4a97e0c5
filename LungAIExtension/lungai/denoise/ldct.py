"""The paired full/quarter-dose slices of the low-dose CT challenge data (``shared/data/ldct/pairs.csv``)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from lungai.errors import InputError
from lungai.image import Image
from lungai.io import read_image


@dataclass
class LdctPair:
    """One slice position scanned at full and (simulated by the vendor) quarter dose, same reconstruction."""

    patient: str
    kernel: str        # D45f (sharp) or B30f (smooth)
    kernel_group: str  # sharp | smooth
    full: Image
    quarter: Image

    @property
    def pixel_mm(self) -> float:
        return float(self.full.spacing[0])


def load_pairs(root: Path, patients: Optional[Sequence[str]] = None,
               kernel_groups: Optional[Sequence[str]] = None) -> List[LdctPair]:
    """Read the pairs listed in ``root/pairs.csv`` (HU, float32), optionally only some patients or kernels."""
    table = Path(root) / "pairs.csv"
    if not table.is_file():
        raise InputError(table, "does not exist: the LDCT pairs table is missing")
    pairs = []
    with open(table, newline="") as fh:
        for row in csv.DictReader(fh):
            if patients and row["patient"] not in patients:
                continue
            if kernel_groups and row["kernel_group"] not in kernel_groups:
                continue
            full = read_image(Path(root) / row["full_dose"], check="none")
            quarter = read_image(Path(root) / row["quarter_dose"], check="none")
            full = full.like(full.array.astype("float32"), **full.metadata)
            quarter = quarter.like(quarter.array.astype("float32"), **quarter.metadata)
            pairs.append(LdctPair(row["patient"], row["kernel"], row["kernel_group"], full, quarter))
    return pairs
