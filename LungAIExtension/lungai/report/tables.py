"""CSV tables written atomically (temporary file then rename), one header row, numbers unformatted."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from lungai.io.atomic import atomic_output

PathLike = Union[str, Path]


def _cell(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return " ".join(str(round(v, 3) if isinstance(v, float) else v) for v in value)
    if isinstance(value, float):
        return round(value, 6)
    return "" if value is None else value


def write_csv(rows: Sequence[Dict[str, Any]], path: PathLike, columns: Optional[Sequence[str]] = None) -> Path:
    """Write ``rows`` (dicts) as CSV; ``columns`` defaults to the keys of the first row (an empty table keeps them)."""
    path = Path(path)
    columns = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row.get(c)) for c in columns})
    with atomic_output(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return path
