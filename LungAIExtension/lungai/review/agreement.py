"""Agreement between an AI proposal and the corrected label: Dice, surface distance and how much was edited.

``edited_fraction`` = voxels whose label changed / voxels that are foreground in the proposal or the correction;
0 means the annotator accepted the proposal as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from lungai.image import Image


def _surface_distances(a: np.ndarray, b: np.ndarray, spacing) -> Dict[str, Optional[float]]:
    """Mean symmetric surface distance and 95th percentile Hausdorff distance (mm) with MONAI; None when either
    mask is empty (no surface to measure)."""
    import warnings

    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    if not a.any() or not b.any():
        return {"asd_mm": None, "hd95_mm": None}
    pred = torch.from_numpy(np.stack([~a, a])[None])
    ref = torch.from_numpy(np.stack([~b, b])[None])
    spacing_kji = tuple(reversed([float(s) for s in spacing]))
    with warnings.catch_warnings():  # MONAI's own deprecation notice about an argument it passes itself
        warnings.simplefilter("ignore", FutureWarning)
        asd = compute_average_surface_distance(pred, ref, include_background=False, symmetric=True,
                                               spacing=spacing_kji)
        hd95 = compute_hausdorff_distance(pred, ref, include_background=False, percentile=95, spacing=spacing_kji)
    return {"asd_mm": float(asd.item()), "hd95_mm": float(hd95.item())}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 when both are empty."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def compare_labels(proposal: Image, corrected: Image, labels: Dict[int, str],
                   surface: bool = True) -> Dict[str, Any]:
    """Per-label Dice (and surface distances) between a proposal and its correction, and the edited fraction."""
    p, c = np.asarray(proposal.array), np.asarray(corrected.array)
    if p.shape != c.shape:
        raise ValueError(f"proposal {p.shape} and correction {c.shape} are on different grids")
    per_label = {}
    for value, key in labels.items():
        a, b = p == value, c == value
        entry: Dict[str, Any] = {"dice": dice(a, b), "proposal_ml": float(a.sum()) * proposal.voxel_volume_ml,
                                 "corrected_ml": float(b.sum()) * proposal.voxel_volume_ml}
        if surface:
            entry.update(_surface_distances(a, b, proposal.spacing))
        per_label[key] = entry
    foreground = int(np.logical_or(p > 0, c > 0).sum())
    changed = int((p != c).sum())
    dices = [v["dice"] for v in per_label.values()]
    return {"labels": per_label, "mean_dice": float(np.mean(dices)) if dices else float("nan"),
            "edited_voxels": changed, "edited_fraction": changed / foreground if foreground else 0.0}


def agreement_table(store, surface: bool = True) -> List[Dict[str, Any]]:
    """One row per case with an AI proposal and a saved correction: model, version, Dice, edits, time spent.

    The row compares the proposal that the case's latest version descends from (its newest proposal made
    before that version) with the approved version when there is one, else the latest version.
    """
    rows = []
    for record in store.cases():
        final = record.approved_version or record.latest_version
        if final is None or not record.proposals:
            continue
        earlier = [p for p in record.proposals if p.created <= final.created] or record.proposals[:1]
        proposal = earlier[-1]
        result = compare_labels(store.load_proposal(record.id, proposal.number),
                                store.load_version(record.id, final.number), store.labels, surface)
        prov = proposal.provenance
        row = {"case": record.id, "status": record.status,
               "model": prov.get("model_name") or prov.get("method", "?"),
               "model_version": str(prov.get("model_version") or ""),
               "proposal": proposal.number, "version": final.number, "mean_dice": result["mean_dice"],
               "edited_fraction": result["edited_fraction"],
               "time_spent_s": sum(v.time_spent_s for v in record.versions if v.number <= final.number)}
        for key, entry in result["labels"].items():
            row[f"dice_{key}"] = entry["dice"]
            if surface:
                row[f"asd_mm_{key}"] = entry["asd_mm"]
        rows.append(row)
    return rows


def summarize_by_model(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Mean Dice, edited fraction and time per model version, in the order the versions first appear."""
    groups: Dict[tuple, List[Dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["model_version"]), []).append(row)
    return [{"model": m, "model_version": v, "cases": len(g),
             "mean_dice": float(np.mean([r["mean_dice"] for r in g])),
             "mean_edited_fraction": float(np.mean([r["edited_fraction"] for r in g])),
             "mean_time_spent_s": float(np.mean([r["time_spent_s"] for r in g]))}
            for (m, v), g in groups.items()]


def plot_agreement(summary: List[Dict[str, Any]], path: Path, title: Optional[str] = None) -> Path:
    """Bar plot of correction effort (edited fraction) and Dice per model version, as PNG (atomic write)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lungai.io.atomic import atomic_output

    names = [f"{s['model']}\n{s['model_version']}" for s in summary]
    x = np.arange(len(summary))
    fig, ax1 = plt.subplots(figsize=(max(4.0, 1.6 * len(summary) + 2), 3.6), dpi=110)
    ax1.bar(x, [100 * s["mean_edited_fraction"] for s in summary], color="#d9822b", width=0.6,
            label="voxels edited (%)")
    ax1.set_ylabel("voxels edited by annotators (%)")
    ax1.set_xticks(x, names)
    ax2 = ax1.twinx()
    ax2.plot(x, [s["mean_dice"] for s in summary], "o-", color="#2b6cd9", label="Dice proposal vs corrected")
    ax2.set_ylim(0, 1.02)
    ax2.set_ylabel("Dice (AI proposal vs corrected)")
    ax1.set_title(title or "Correction effort per model version\n(lower bars: less to correct)", fontsize=10)
    for i, s in enumerate(summary):
        ax1.annotate(f"n={s['cases']}", (i, 0), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
