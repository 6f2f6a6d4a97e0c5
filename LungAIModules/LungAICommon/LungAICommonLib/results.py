"""Turning the CLI's result files into what the panels show (pure Python: no Slicer or Qt import).

The shapes handled are those the ``lungai`` commands write (``figures.json``, ``results.json``, ``lesions.csv``,
``candidates.json``, ``result.json``); tolerant readers keep the panels working when a command adds fields.
"""

from __future__ import annotations

import csv
import math
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

Row = Dict[str, Any]

CONFIDENCE_KEYS = ("confidence", "score", "probability")


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def flatten(values: Mapping[str, Any], prefix: str = "") -> Row:
    """One flat dict from nested dicts: ``{"a": {"b": 1}}`` -> ``{"a b": 1}``; lists are joined as text."""
    flat: Row = {}
    for key, value in values.items():
        name = f"{prefix} {key}".strip()
        if isinstance(value, Mapping):
            flat.update(flatten(value, name))
        elif isinstance(value, (list, tuple)) and all(_is_scalar(v) for v in value):
            flat[name] = ", ".join(format_value(v) for v in value)
        elif _is_scalar(value):
            flat[name] = value
    return flat


def format_value(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    return "" if value is None else str(value)


def records(data: Any, preferred: Sequence[str] = ()) -> List[Row]:
    """Table rows from a JSON result: a list of objects, the first (or a preferred) list of objects in an object,
    or an object of objects (one row per key, the key in column ``name``)."""
    if isinstance(data, list):
        return [flatten(item) for item in data if isinstance(item, Mapping)]
    if not isinstance(data, Mapping):
        return []
    for key in list(preferred) + [k for k in data if k not in preferred]:
        value = data.get(key)
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            return [flatten(item) for item in value]
    nested = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    if nested and all(any(_is_scalar(x) for x in v.values()) for v in nested.values()):
        return [{"name": key, **flatten(value)} for key, value in nested.items()]
    return [{"measure": key, "value": value} for key, value in flatten(data).items()]


def figures_rows(figures: Mapping[str, Any]) -> List[Row]:
    """Rows of the lung figures table: one per structure with a volume (right lung, left lung, total...)."""
    data = figures.get("figures", figures) if isinstance(figures.get("figures"), Mapping) else figures
    rows = [{"structure": str(key).replace("_", " "), **flatten(value)} for key, value in data.items()
            if isinstance(value, Mapping) and "volume_ml" in value]
    return rows or records(data, preferred=("structures", "regions", "segments", "lungs"))


def lung_summary_lines(figures: Mapping[str, Any]) -> List[str]:
    """Right/left ratio, airway volume and breathing phase from ``figures.json`` (or the command's result)."""
    data = figures.get("figures", figures) if isinstance(figures.get("figures"), Mapping) else figures
    lines = []
    if data.get("right_left_ratio") is not None:
        lines.append(f"Right/left volume ratio: {format_value(data['right_left_ratio'])}")
    if data.get("airways_volume_ml") is not None:
        lines.append(f"Airways: {format_value(data['airways_volume_ml'])} ml")
    phase = data.get("breathing_phase")
    if isinstance(phase, Mapping) and phase.get("phase"):
        lines.append(f"Breathing phase: {phase['phase']} (confidence {format_value(phase.get('confidence'))})")
    return lines


def pneumonia_summary_lines(results: Mapping[str, Any]) -> List[str]:
    """Call, severity, opacity and lesion volumes from ``results.json`` (its ``summary``)."""
    s = results.get("summary", results)
    if not isinstance(s, Mapping) or "call" not in s:
        return brief(results, ["call", "severity_score", "percent_opacity", "lesion_volume_ml"])
    lines = [f"Per-patient call: {s['call']}"]
    if s.get("severity_score") is not None:
        basis = f" ({s['severity_basis']})" if s.get("severity_basis") else ""
        lines.append(f"Severity score: {format_value(s['severity_score'])} / {format_value(s.get('severity_max'))}"
                     f"{basis}")
    if s.get("percent_opacity") is not None:
        lines.append(f"Opacity: {format_value(s['percent_opacity'])} % of the lungs "
                     f"(high opacity {format_value(s.get('percent_high_opacity'))} %)")
    if s.get("lesion_count") is not None:
        lines.append(f"Lesions: {s['lesion_count']}, {format_value(s.get('lesion_volume_ml'))} ml "
                     f"(ground glass {format_value(s.get('ground_glass_ml'))} ml, consolidation "
                     f"{format_value(s.get('consolidation_ml'))} ml)")
    return lines


def followup_summary_lines(data: Mapping[str, Any]) -> List[str]:
    """Earlier -> later opacity, lesion volume and severity, and lesion changes, from ``followup.json``."""
    s = data.get("summary", data)
    earlier, later = s.get("earlier") or {}, s.get("later") or {}
    lines = []
    for key, title, unit in (("percent_opacity", "Opacity", " %"), ("lesion_volume_ml", "Lesion volume", " ml"),
                             ("severity_score", "Severity score", "")):
        if key in earlier and key in later:
            lines.append(f"{title}: {format_value(earlier[key])}{unit} -> {format_value(later[key])}{unit}")
    if "call" in earlier and "call" in later:
        lines.append(f"Per-patient call: {earlier['call']} -> {later['call']}")
    changes = s.get("lesion_changes") or data.get("lesion_changes")
    if isinstance(changes, Mapping) and changes:
        lines.append("Lesions: " + ", ".join(f"{n} {status}" for status, n in changes.items()))
    return lines or brief(data, ["trend", "change_ml"])




def noise_summary_lines(result: Mapping[str, Any]) -> List[str]:
    """What ``lungai denoise`` / ``simulate-dose`` report: noise in flat soft tissue before -> after, timing."""
    lines = []
    if "dose_fraction" in result:
        kernel = f" ({result['kernel_group']} kernel)" if result.get("kernel_group") else ""
        lines.append(f"Simulated {format_value(result['dose_fraction'])} x dose{kernel}")
    elif "method" in result:
        lines.append(f"Method: {result['method']}, strength {format_value(result.get('strength'))}")
    before, after = result.get("before") or {}, result.get("after") or {}
    if before.get("noise_std_hu") is not None and after.get("noise_std_hu") is not None:
        lines.append(f"Noise in flat soft tissue: {format_value(before['noise_std_hu'])} -> "
                     f"{format_value(after['noise_std_hu'])} HU")
    if before.get("mean_hu") is not None and after.get("mean_hu") is not None:
        lines.append(f"Mean soft tissue: {format_value(before['mean_hu'])} -> {format_value(after['mean_hu'])} HU")
    if result.get("seconds") is not None:
        lines.append(f"Time: {format_value(result['seconds'])} s")
    return lines


def embolism_summary_lines(result: Mapping[str, Any]) -> List[str]:
    """Patient-level PE probability, emboli reported above the threshold, the Qanadli obstruction index and the
    scorer that ran (the CLI picks it by the scan's slice thickness)."""
    lines = []
    if result.get("pe_score") is not None:
        present = " (PE reported)" if result.get("pe_present") else ""
        lines.append(f"PE probability: {format_value(result['pe_score'])}{present}")
    if result.get("emboli_count") is not None:
        threshold = f" above {format_value(result['threshold'])}" if result.get("threshold") is not None else ""
        lines.append(f"Emboli{threshold}: {result['emboli_count']}")
    qanadli = result.get("qanadli")
    if isinstance(qanadli, Mapping) and qanadli.get("index_percent") is not None:
        lines.append(f"Qanadli obstruction index: {format_value(qanadli['index_percent'])} % "
                     f"({qanadli.get('score')}/{qanadli.get('max_score', 40)})")
    scorer = result.get("scorer")
    if isinstance(scorer, Mapping) and scorer.get("model"):
        grid = scorer.get("working_grid_mm") or []
        on_grid = f" on a {' x '.join(format_value(s) for s in grid)} mm grid" if grid else ""
        lines.append(f"Scored by {scorer['model']} {scorer.get('version') or ''}".rstrip() + on_grid)
    return lines


def _number(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _triplet(value: Any) -> Optional[List[float]]:
    if isinstance(value, str):
        value = re.split(r"[,;\s]+", value.strip("[]() ")) if value.strip() else None
    if isinstance(value, (list, tuple)) and len(value) == 3:
        numbers = [_number(v) for v in value]
        if all(n is not None for n in numbers):
            return numbers  # type: ignore[return-value]
    return None


def centroid_ras(row: Mapping[str, Any]) -> Optional[List[float]]:
    """The RAS point (mm) to jump to for a lesion or candidate row, from RAS or LPS columns; None if absent."""
    keys = {k.lower(): k for k in row}
    for ras_keys in (("centroid_r", "centroid_a", "centroid_s"), ("r", "a", "s"),
                     ("centroid_ras_r", "centroid_ras_a", "centroid_ras_s")):
        if all(k in keys for k in ras_keys):
            point = [_number(row[keys[k]]) for k in ras_keys]
            if all(p is not None for p in point):
                return point  # type: ignore[return-value]
    for key in ("centroid_ras", "ras", "position_ras", "center_ras"):
        if key in keys and _triplet(row[keys[key]]):
            return _triplet(row[keys[key]])
    lps: Optional[List[float]] = None
    for lps_keys in (("centroid_x", "centroid_y", "centroid_z"), ("centroid_lps_x", "centroid_lps_y",
                                                                  "centroid_lps_z"), ("x", "y", "z")):
        if all(k in keys for k in lps_keys):
            point = [_number(row[keys[k]]) for k in lps_keys]
            if all(p is not None for p in point):
                lps = point  # type: ignore[assignment]
                break
    if lps is None:
        for key in ("centroid_lps", "lps", "position_lps", "center_lps", "centroid_mm", "centroid"):
            if key in keys and _triplet(row[keys[key]]):
                lps = _triplet(row[keys[key]])
                break
    if lps is None:
        return None
    return [-lps[0], -lps[1], lps[2]]


def confidence(row: Mapping[str, Any]) -> float:
    for key in CONFIDENCE_KEYS:
        if key in row:
            value = _number(row[key])
            if value is not None:
                return value
    return float("nan")


def sorted_by_confidence(rows: Iterable[Mapping[str, Any]]) -> List[Row]:
    """Rows with the most confident first (rows without a confidence last, in their order)."""
    indexed = list(enumerate(dict(r) for r in rows))
    indexed.sort(key=lambda item: (math.isnan(confidence(item[1])), -(confidence(item[1]) if not
                                                                          math.isnan(confidence(item[1])) else 0),
                                   item[0]))
    return [row for _, row in indexed]


def candidate_rows(candidates: Any) -> List[Row]:
    """Embolism candidates (list, or object with a ``candidates`` list) flattened and sorted by confidence."""
    if isinstance(candidates, Mapping):
        candidates = candidates.get("candidates", [])
    return sorted_by_confidence(flatten(c) if isinstance(c, Mapping) else {} for c in candidates or [])


def summary_lines(results: Mapping[str, Any], keys: Sequence[str]) -> List[str]:
    """``Label: value`` lines for the known keys present in a (possibly nested) result, in ``keys`` order."""
    flat = flatten(results)
    lowered = {k.lower().replace("_", " "): v for k, v in flat.items()}
    lines = []
    for key in keys:
        wanted = key.lower().replace("_", " ")
        match = next((name for name in lowered if name == wanted or name.endswith(" " + wanted)), None)
        if match is not None:
            lines.append(f"{key.replace('_', ' ').capitalize()}: {format_value(lowered[match])}")
    return lines


def brief(results: Mapping[str, Any], keys: Sequence[str], limit: int = 8) -> List[str]:
    """:func:`summary_lines` for ``keys``, or else the first ``limit`` scalar entries of the result."""
    lines = summary_lines(results, keys)
    if lines:
        return lines
    flat = [(k, v) for k, v in flatten(results).items() if k != "outputs" and not k.startswith("outputs ")
            and not k.startswith("provenance")]
    return [f"{k.replace('_', ' ').capitalize()}: {format_value(v)}" for k, v in flat[:limit]]


def xray_summary_lines(result: Mapping[str, Any]) -> List[str]:
    """Most likely class, pneumonia probability, plausibility warnings and the disclaimer of ``result.json``."""
    rows = probability_rows(result)
    lines = []
    if rows:
        title = result.get("predicted_title") or str(rows[0]["class"]).replace("_", " ")
        lines.append(f"Most likely: {title} ({100 * rows[0]['probability']:.0f} %)")
    if result.get("pneumonia_probability") is not None:
        lines.append(f"Pneumonia (bacterial or viral): {100 * float(result['pneumonia_probability']):.0f} %")
    checks = result.get("checks")
    warnings = (checks.get("warnings") or []) if isinstance(checks, Mapping) else []
    lines += [f"Warning: {w}" for w in warnings]
    if result.get("disclaimer"):
        lines.append(str(result["disclaimer"]))
    return lines


def probability_rows(result: Mapping[str, Any]) -> List[Row]:
    """``[{"class": name, "probability": p}, ...]`` from a classifier result, most probable first."""
    probabilities = result.get("probabilities") or result.get("probs") or {}
    rows: List[Row] = []
    if isinstance(probabilities, Mapping):
        rows = [{"class": str(k), "probability": _number(v)} for k, v in probabilities.items()]
    elif isinstance(probabilities, list):
        classes = result.get("classes") or [f"class {i}" for i in range(len(probabilities))]
        for item, name in zip(probabilities, classes):
            if isinstance(item, Mapping):
                rows.append({"class": str(item.get("class", item.get("name", name))),
                             "probability": _number(item.get("probability", item.get("p")))})
            else:
                rows.append({"class": str(name), "probability": _number(item)})
    rows = [r for r in rows if r["probability"] is not None]
    rows.sort(key=lambda r: -r["probability"])
    return rows


def append_pair_row(pairs_csv: os.PathLike, case_id: str, full_dose: os.PathLike, low_dose: os.PathLike,
                    dose_fraction: float) -> Path:
    """Add one simulated training pair to ``pairs.csv`` (header written on first use, paths relative)."""
    pairs_csv = Path(pairs_csv)
    folder = pairs_csv.parent
    new_file = not pairs_csv.exists() or pairs_csv.stat().st_size == 0
    with open(pairs_csv, "a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new_file:
            writer.writerow(["case_id", "full_dose", "low_dose", "dose_fraction"])
        writer.writerow([case_id, os.path.relpath(full_dose, folder), os.path.relpath(low_dose, folder),
                         f"{dose_fraction:g}"])
    return pairs_csv
