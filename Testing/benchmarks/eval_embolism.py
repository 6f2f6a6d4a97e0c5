"""Evaluate pulmonary embolus detection: phantom CTPA cohort and the real CTPA-like crop.

    nice -n 10 python Testing/benchmarks/eval_embolism.py --cohort /tmp/lungai-pe-cohort [--out eval.json]
    nice -n 10 python Testing/benchmarks/eval_embolism.py --cohort /tmp/pe-fine --size 320,320,224 \
        --spacing 1,1,1.25 --first 100 --out eval-fine.json
    nice -n 10 python Testing/benchmarks/eval_embolism.py --block /tmp/e12/cohort:0:8:4 \
        --block /tmp/e16/cohort:200:32:8 --out eval-pooled.json

Phantom test cohort (seeds 9000+, never used in training; candidates are extracted once and cached beside
the cases, then scored with the registry's scorer): FROC sensitivity at 1, 2 and 4 false positives
per scan, overall and per level (main, lobar, segmental, subsegmental), per-scan ROC AUC of the PE score,
mask AP/AP50/AP75, Dice of accepted candidates, the default operating point, and per true embolus its best
candidate's confidence and rank in its scan (or "no candidate") against the threshold of 2 FP/scan. With merged
marks (``--merge-mm``, or a scorer whose registry entry merges) the same figures unmerged and the paired bootstrap
difference merged - unmerged on the same scans (``merged_minus_unmerged_95``). Real data (skipped when
../shared/data is absent): the CTPA-like crop (no embolism) must give at most 2 accepted candidates and its
trunk must lie in the TotalSegmentator pulmonary artery mask; the artery tree is compared with that mask;
the non-contrast chest CT must be refused as 'not a CTPA'. Cases are cached in the cohort folder. Every FROC figure
comes with a 95 % percentile bootstrap interval over scans (``froc_interval_95``); ``--block`` scores several
blocks of test seeds, each on its own and pooled.
``--size``/``--spacing`` choose the cohort's grid, whose scorer (``embolism-candidates`` on 1.6 x 1.6 x 2 mm,
``embolism-candidates-fine`` on 1 x 1 x 1.25 mm) is evaluated unless ``--model`` names another: a coarser
scorer's cases are resampled to its working grid and matched on the cohort's grid, as ``lungai embolism`` would
run it on thin-slice scans. With the fine scorer the real crop (1.5 mm voxels, which ``lungai embolism`` gives
the coarse scorer) is scored resampled to the fine grid. ``--first N`` starts the test seeds at 9000 + N /
9500 + N.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from lungai.embolism import DEFAULT_THRESHOLD, detect_emboli
from lungai.embolism.cohort import COHORT_SIZE, COHORT_SPACING, cohort
from lungai.embolism.evaluation import (LEVELS, CaseTable, froc, froc_interval, froc_threshold, paired_difference,
                                       summary)
from lungai.embolism.scorer import MODEL_NAME, load_scorer, scorer_grid, scorer_merge_mm, scorer_rules
from lungai.embolism.training import SCORER_NAMES, extract, scored_table, triple_arg
from lungai.embolism.volume import COARSE_GRID, grid_spacing, resample_onto, resample_spacing
from lungai.errors import InputError
from lungai.io import read_image

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "ct"


def block_tables(folder: Path, positives: int, negatives: int, first: int, network, grid, rules: int,
                 threshold: float, size=COHORT_SIZE, spacing=COHORT_SPACING, merge_mm: float = 0.0) -> tuple:
    """Scored tables, embolus records, extraction seconds and, with ``merge_mm``, the unmerged tables of one block
    of test seeds (9000 + first on), with the scorer's working ``grid`` and candidate ``rules``."""
    tables, seconds, records, unmerged, strict = [], [], [], [], []
    for case in cohort(folder, "test", positives, negatives, size=size, spacing=spacing, first=first):
        records.append(case.records)
        extracted = extract(case, folder / "features", grid, rules, gaps=merge_mm > 0)
        table = scored_table(case.name, extracted, network, merge_mm)
        tables.append(table)
        if merge_mm > 0:
            unmerged.append(scored_table(case.name, extracted, network))
            strict.append(scored_table(case.name, extracted, network, merge_mm, lead_only=True))
        seconds.append(float(extracted["seconds"]))
        found = int(table.covers[table.scores >= threshold].any(axis=0).sum()) if table.covers.size else 0
        print(f"{case.name}: {len(case.records)} emboli, {len(table.scores)} candidates, "
              f"{int(np.sum(table.scores >= threshold))} accepted, {found} emboli found, "
              f"PE score {table.scores.max() if len(table.scores) else 0.0:.3f}", flush=True)
    return tables, records, seconds, (unmerged, strict)


def block_figures(tables: list, records: list, threshold: float, others: tuple = ((), ())) -> dict:
    """Every figure of a set of scored cases, with bootstrap intervals and per-embolus traces at 2 FP/scan; with
    the ``(unmerged, strict)`` tables of merged marks also those figures (``strict``: a mark reaches only what its
    most confident piece reaches) and their paired differences to the unmerged candidates."""
    out = {**summary(tables, threshold), "froc_interval_95": froc_interval(tables)}
    unmerged, strict = others
    if unmerged:
        out["unmerged"] = {**summary(unmerged, threshold), "froc_interval_95": froc_interval(unmerged)}
        out["merged_minus_unmerged_95"] = paired_difference(tables, unmerged)
        out["strict"] = {"froc": froc(strict), "froc_per_level": {lv: froc(strict, level=lv) for lv in LEVELS},
                         "froc_interval_95": froc_interval(strict)}
        out["strict_minus_unmerged_95"] = paired_difference(strict, unmerged)
    at_2fp = froc_threshold(tables, 2)
    out["emboli_at_2fp"] = {"threshold": round(at_2fp, 4), "emboli": [e for t, case_records in zip(tables, records)
                                                                      for e in per_embolus(t, case_records, at_2fp)]}
    return out


def phantom_figures(blocks: list, threshold: float, model: str = None, size=COHORT_SIZE,
                    spacing=COHORT_SPACING, merge_mm: float = None) -> dict:
    """Figures of each block of test seeds ``(folder, first, positives, negatives)`` and, for several blocks,
    of all of them pooled; candidates within ``merge_mm`` are one mark (default: the scorer's own)."""
    network, entry = load_scorer(model)
    grid = scorer_grid(entry)  # the scorer's working grid: a finer cohort is resampled to it, as in use
    rules = scorer_rules(entry)
    merge_mm = scorer_merge_mm(entry) if merge_mm is None else merge_mm
    out = {"model": entry.id, "cohort_grid_mm": list(spacing), "working_grid_mm": list(grid),
           "candidate_rules": rules, "merge_mm": merge_mm, "blocks": []}
    pooled_tables, pooled_records, seconds, pooled_unmerged, pooled_strict = [], [], [], [], []
    for folder, first, positives, negatives in blocks:
        tables, records, secs, (unmerged, strict) = block_tables(folder, positives, negatives, first, network, grid, rules,
                                                       threshold, size, spacing, merge_mm)
        out["blocks"].append({"cohort": str(folder), "test_seeds_from": 9000 + first, "positives": positives,
                              "negatives": negatives, **block_figures(tables, records, threshold, (unmerged, strict))})
        pooled_tables += tables
        pooled_records += records
        pooled_unmerged += unmerged
        pooled_strict += strict
        seconds += secs
    if len(blocks) > 1:
        out["pooled"] = block_figures(pooled_tables, pooled_records, threshold, (pooled_unmerged, pooled_strict))
    out["seconds_per_scan_without_scoring"] = round(float(np.mean(seconds)), 1)
    return out


def per_embolus(table: CaseTable, records: list, found_above: float) -> list:
    """Every true embolus of a scan: its best candidate's confidence and rank among the scan's candidates."""
    order = np.argsort(-table.scores, kind="stable")
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(1, len(order) + 1)
    out = []
    for r in records:
        row = {"scan": "_".join(table.name.split("_")[:2]), "id": r["id"], "level": r["level"], "occlusive": r["occlusive"],
               "voxels": r["voxels"], "vessel_diameter_mm": r["vessel_diameter_mm"]}
        reach = np.nonzero(table.covers[:, r["id"] - 1])[0] if table.covers.size else np.zeros(0, int)
        if len(reach):
            best = reach[np.argmax(table.scores[reach])]
            row.update(confidence=round(float(table.scores[best]), 4), rank=int(rank[best]),
                       candidates=len(table.scores), candidate_voxels=int(table.voxels[best]),
                       found=bool(table.scores[best] > found_above))
        else:
            row.update(confidence=None, rank=None, candidates=len(table.scores), found=False)
        out.append(row)
    return out


def real_figures(threshold: float, model: str = None, merge_mm: float = None) -> dict:
    """The crop and the non-contrast CT with the scorer ``model``; a scorer of another working grid than the one
    picked for the crop's 1.5 mm voxels scores the crop resampled to its grid (the trunk check then uses the
    resampled crop's reference mask)."""
    crop = DATA / "ctpa-crop" / "ct.nii.gz"
    if not crop.is_file():
        return {"skipped": f"{crop} not found"}
    image = read_image(crop)
    network, entry = load_scorer(model)
    grid = scorer_grid(entry)
    if grid != COARSE_GRID:
        image = resample_spacing(image, grid_spacing(image, grid))
    if merge_mm is None:
        result = detect_emboli(image, threshold=threshold, model=model)
    else:  # the scorer with another merge distance than its registry entry's
        result = detect_emboli(image, threshold=threshold, network=network, grid=grid, rules=scorer_rules(entry),
                               merge_mm=merge_mm)
    reference = read_image(DATA / "ctpa-crop" / "pulmonary_artery_totalsegmentator.nii.gz", check="none")
    if not reference.same_grid(image):
        reference = resample_onto(reference.like(reference.array.astype(np.uint8)), image, label=True)
    ts = reference.array > 0
    index = np.round(image.lps_to_index(result.trunk["trunk_bifurcation_lps"])).astype(int)[::-1]
    tree = result.arteries.array > 0
    inter = float(np.count_nonzero(tree & ts))
    central = result.arteries.array == 1  # main level
    out = {"crop_grid_mm": list(image.spacing), "crop_candidates": len(result.candidates),
           "crop_accepted": len(result.accepted),
           "crop_pe_score": round(result.pe_score, 4),
           "crop_top_confidences": sorted([c["confidence"] for c in result.candidates], reverse=True)[:5],
           "crop_trunk_in_totalsegmentator_pa": bool(ts[tuple(index)]), "crop_trunk": result.trunk,
           "crop_tree_dice_vs_totalsegmentator": round(2 * inter / (tree.sum() + ts.sum()), 4),
           "crop_totalsegmentator_pa_covered": round(inter / ts.sum(), 4),
           "crop_main_level_dice_vs_totalsegmentator": round(
               2 * float(np.count_nonzero(central & ts)) / (central.sum() + ts.sum()), 4),
           "crop_seconds": round(result.seconds, 1)}
    plain = DATA / "chest-ct-141" / "ct.nii.gz"
    if plain.is_file():
        try:
            detect_emboli(read_image(plain), threshold=threshold, model=model)
            out["non_contrast_refused"] = False
        except InputError as exc:
            out["non_contrast_refused"] = "not a CTPA" in str(exc)
            out["non_contrast_message"] = str(exc)
    return out


def block_arg(text: str) -> tuple:
    """argparse type of --block: (cohort folder, first, positives, negatives)."""
    parts = text.rsplit(":", 3)
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"{text!r}: COHORT:FIRST:POSITIVES:NEGATIVES")
    return (Path(parts[0]),) + tuple(int(p) for p in parts[1:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", type=Path, default=Path("/tmp/lungai-pe-cohort"))
    parser.add_argument("--positives", type=int, default=8)
    parser.add_argument("--negatives", type=int, default=4)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--model", help="scorer as registry name[@version] [default: the scorer of the grid]")
    parser.add_argument("--size", type=triple_arg(int), default=COHORT_SIZE, help="phantom voxels i,j,k")
    parser.add_argument("--spacing", type=triple_arg(float), default=COHORT_SPACING, help="phantom voxel size (mm)")
    parser.add_argument("--first", type=int, default=0, help="test seeds from 9000 + FIRST (9500 + FIRST)")
    parser.add_argument("--block", type=block_arg, action="append",
                        help="COHORT:FIRST:POSITIVES:NEGATIVES, repeatable: score these blocks of test seeds "
                             "(instead of --cohort/--first/--positives/--negatives) and pool them")
    parser.add_argument("--merge-mm", type=float, help="merge candidates this close into one mark [default: the "
                                                       "scorer's inference.merge_mm]; > 0 also gives the unmerged "
                                                       "figures and the paired difference")
    parser.add_argument("--skip-phantom", action="store_true")
    parser.add_argument("--extract-only", action="store_true", help="cache the test candidates, do not score")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    model = args.model or SCORER_NAMES.get((args.spacing[0], args.spacing[2]), MODEL_NAME)
    if args.extract_only:
        rules = scorer_rules(load_scorer(model)[1])
        for case in cohort(args.cohort, "test", args.positives, args.negatives, size=args.size,
                           spacing=args.spacing, first=args.first):
            extracted = extract(case, args.cohort / "features", rules=rules, gaps=bool(args.merge_mm))
            print(case.name, float(extracted["seconds"]), flush=True)
        return 0
    figures = {"real": real_figures(args.threshold, model, args.merge_mm)}
    print(json.dumps(figures["real"], indent=1), flush=True)
    if not args.skip_phantom:
        blocks = args.block or [(args.cohort, args.first, args.positives, args.negatives)]
        figures["phantom"] = phantom_figures(blocks, args.threshold, model, args.size, args.spacing, args.merge_mm)
        print(json.dumps(figures["phantom"], indent=1))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
