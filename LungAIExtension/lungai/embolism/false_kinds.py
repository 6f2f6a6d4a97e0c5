"""What outranks the missed emboli: the false candidates above the 2 FP/scan threshold, sorted into kinds.

    python -m lungai.embolism.false_kinds --cohort /tmp/e17/train --positives 24 --negatives 3
    python -m lungai.embolism.false_kinds --cohort /tmp/e17/extra --first 24 --positives 48 --negatives 0

For training seeds only (never the test seeds). Each case is extracted with its candidate gaps (the cohort's
``features`` cache, as for merged marks) and its facts are cached under ``<cohort>/facts``: distance of each
candidate to the nearest embolus, to the nearest candidate that hits one and to any other candidate, its shell
share on tree that is not phantom artery (a touching vein), its distance to the nearest branch point of the tree's
skeleton. Every false candidate scoring above the set's 2 FP/scan threshold gets the first kind of ``KINDS`` that
fits; the report gives counts, median confidence and levels per kind, how many false candidates of each kind
outrank each missed segmental and subsegmental embolus in its own scan, and the FROC of merged marks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
from scipy import ndimage
from skimage.morphology import skeletonize

from lungai.embolism.cohort import cohort
from lungai.embolism.evaluation import LEVELS, froc, froc_threshold
from lungai.embolism.scorer import load_scorer
from lungai.embolism.training import SHIPPED_RULES, extract, merged_table, scored_table

NEAR_MM = 5.0
KINDS = ("piece of a clot", "piece of a false structure", "outside the lungs", "artery-vein contact",
         "vessel fork", "small dip in a thin vessel", "other")
IN_LUNG = 11  # feature column of the in-lung fraction


def case_facts(case, cache: Path, network) -> Dict[str, np.ndarray]:
    """Scores, hits, gaps and geometry facts of one case's candidates (cached)."""
    path = cache.parent / "facts" / f"{case.name}.facts.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    context: Dict[str, object] = {}
    extracted = extract(case, cache, rules=SHIPPED_RULES, gaps=True, context=context)
    if not context:  # cached candidates: run the pipeline again for the geometry
        (cache / f"{case.name}.features.npz").unlink()
        extracted = extract(case, cache, rules=SHIPPED_RULES, gaps=True, context=context)
    vol, tree, cands = context["vol"], context["tree"], context["cands"]
    labels, n, spacing = cands.labels, cands.count, vol.spacing
    idx = np.arange(1, n + 1)
    arteries = vol.reorientation.to_canonical(case.arteries) > 0
    emboli = vol.reorientation.to_canonical(case.emboli) > 0
    to_embolus = (ndimage.distance_transform_edt(~emboli, sampling=spacing) if emboli.any()
                  else np.full(labels.shape, np.inf))
    grown = ndimage.maximum_filter(labels, size=3)
    shell = np.where((labels == 0) & (grown > 0), grown, 0)
    vein = tree.mask & ~ndimage.binary_dilation(arteries)
    skeleton = skeletonize(tree.mask) > 0
    neighbours = ndimage.convolve(skeleton.astype(np.uint8), np.ones((3, 3, 3), np.uint8), mode="constant") - 1
    to_fork = ndimage.distance_transform_edt(~(skeleton & (neighbours >= 3)), sampling=spacing)
    out = {"scores": scored_table(case.name, extracted, network).scores, "covers": extracted["covers"],
           "gaps": extracted["gaps"], "voxels": extracted["voxels"], "levels": extracted["levels"],
           "in_lung": extracted["features"][:, IN_LUNG], "truth_ids": extracted["truth_ids"],
           "truth_levels": extracted["truth_levels"],
           "embolus_mm": ndimage.minimum(to_embolus, labels, idx) if n else np.zeros(0),
           "vein_shell": np.bincount(shell[vein], minlength=n + 1)[1:] / np.maximum(np.bincount(shell.ravel(),
                                                                                             minlength=n + 1)[1:], 1),
           "fork_mm": ndimage.minimum(to_fork, labels, idx) if n else np.zeros(0)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def false_kinds(facts: Dict[str, np.ndarray]) -> List[tuple]:
    """(index, kind) of every false candidate of one case."""
    false = ~facts["covers"].any(axis=1)
    n = len(false)
    to_any, to_true = np.full(n, np.inf), np.full(n, np.inf)
    for i, j, d in facts["gaps"]:
        i, j = int(i) - 1, int(j) - 1
        to_any[i], to_any[j] = min(to_any[i], d), min(to_any[j], d)
        if not false[j]:
            to_true[i] = min(to_true[i], d)
        if not false[i]:
            to_true[j] = min(to_true[j], d)
    tests = (lambda k: facts["embolus_mm"][k] <= NEAR_MM or to_true[k] <= NEAR_MM,
             lambda k: to_any[k] <= NEAR_MM,
             lambda k: facts["in_lung"][k] < 0.5,
             lambda k: facts["vein_shell"][k] >= 0.2,
             lambda k: facts["fork_mm"][k] <= 2.0,
             lambda k: facts["voxels"][k] <= 4 and str(facts["levels"][k]) in ("segmental", "subsegmental"),
             lambda k: True)
    return [(k, next(kind for kind, test in zip(KINDS, tests) if test(k))) for k in np.flatnonzero(false)]


def _table(name: str, facts: Dict[str, np.ndarray], merge_mm: float = 0.0, lead_only: bool = False):
    m = facts["covers"].shape[1]
    extracted = {**facts, "inter": np.zeros((len(facts["scores"]), m)), "truth_sizes": np.ones(m), "truth_voxels": 0}
    return merged_table(name, extracted, facts["scores"], merge_mm, lead_only)


def report(cases: Dict[str, Dict[str, np.ndarray]]) -> Dict[str, object]:
    """Kinds of the false candidates above the 2 FP/scan threshold, what outranks the missed small emboli, and
    the FROC of merged marks, over the ``cases`` (name -> facts)."""
    tables = [_table(name, f) for name, f in cases.items()]
    threshold = froc_threshold(tables, 2)
    kinds = {kind: {"above": [], "levels": [], "voxels": [], "all": 0} for kind in KINDS}
    outranking = {"segmental": dict.fromkeys(KINDS, 0), "subsegmental": dict.fromkeys(KINDS, 0)}
    missed = {"segmental": 0, "subsegmental": 0}
    for facts in cases.values():
        sorted_false = false_kinds(facts)
        for k, kind in sorted_false:
            kinds[kind]["all"] += 1
            if facts["scores"][k] > threshold:
                kinds[kind]["above"].append(float(facts["scores"][k]))
                kinds[kind]["levels"].append(str(facts["levels"][k]))
                kinds[kind]["voxels"].append(int(facts["voxels"][k]))
        for embolus, level in zip(facts["truth_ids"], facts["truth_levels"]):
            reach = np.flatnonzero(facts["covers"][:, int(embolus) - 1])
            if str(level) not in missed or not len(reach) or facts["scores"][reach].max() > threshold:
                continue
            missed[str(level)] += 1
            best = facts["scores"][reach].max()
            for k, kind in sorted_false:
                outranking[str(level)][kind] += int(facts["scores"][k] > best)
    merged = {}
    for merge_mm in (0.0, 4.1, 5.0, 6.0, 8.0):
        row = {}
        for reading, lead in (("union", False), ("strict", True)):
            t = [_table(name, f, merge_mm, lead) for name, f in cases.items()]
            row[reading] = froc(t)["sensitivity_at_2fp"]
            row[f"{reading}_per_level"] = {lv: froc(t, (2,), lv)["sensitivity_at_2fp"] for lv in LEVELS}
        row["marks_per_scan"] = round(float(np.mean([len(x.scores) for x in t])), 1)
        merged[f"{merge_mm:g} mm"] = row
    return {"scans": len(cases), "threshold_2fp": round(threshold, 4), "froc": froc(tables),
            "kinds": {kind: {"above_threshold": len(v["above"]),
                             "median_confidence": round(float(np.median(v["above"])), 3) if v["above"] else None,
                             "levels": {lv: v["levels"].count(lv) for lv in LEVELS},
                             "median_voxels": float(np.median(v["voxels"])) if v["voxels"] else None,
                             "all_false": v["all"]} for kind, v in kinds.items()},
            "missed_with_candidate": missed, "outranking_missed": outranking, "merged_marks_at_2fp": merged}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", type=Path, required=True, help="a copied cohort (its caches gain gaps)")
    parser.add_argument("--first", type=int, default=0, help="training seeds from 1000 + FIRST (1500 + FIRST)")
    parser.add_argument("--positives", type=int, default=24)
    parser.add_argument("--negatives", type=int, default=3)
    parser.add_argument("--model", default="embolism-candidates")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    network, _ = load_scorer(args.model)
    cases = {case.name: case_facts(case, args.cohort / "features", network)
             for case in cohort(args.cohort, "train", args.positives, args.negatives, first=args.first)}
    result = report(cases)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
