"""``detect_emboli``: CTPA check, pulmonary artery tree, candidate filling defects, scores and per-scan figures."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from lungai.checks import check_3d, check_finite, check_geometry
from lungai.embolism.arteries import LEVEL_CODE, LEVELS, ArteryTree, grow_tree
from lungai.embolism.candidates import CANDIDATE_RULES, Candidates, candidate_patches, find_candidates
from lungai.embolism.marks import candidate_gaps, merge_candidates, merge_groups
from lungai.embolism.qanadli import qanadli_index
from lungai.embolism.scorer import Scorer, load_scorer, model_for, score, scorer_grid, scorer_merge_mm, scorer_rules
from lungai.embolism.trunk import Trunk, find_trunk
from lungai.embolism.volume import COARSE_GRID, WorkVolume, build_work_volume
from lungai.image import Image
from lungai.io.segmentation import Segment
from lungai.progress import Progress, ensure
from lungai.provenance import Provenance

DEFAULT_THRESHOLD = 0.5  # calibrated probability above which a candidate is reported as an embolus
LEVEL_LABEL = {name: n for n, name in enumerate(LEVELS, start=1)}  # arteries.seg.nrrd: 1 main .. 4 subsegmental


@dataclass
class EmbolismResult:
    """Everything ``lungai embolism`` reports; label maps are on the input grid."""

    candidates: List[Dict[str, Any]]
    pe_score: float
    threshold: float
    qanadli: Dict[str, Any]
    trunk: Dict[str, Any]
    arteries: Image              # 0 background, LEVEL_LABEL values
    emboli: Image                # accepted candidates numbered 1..k in the order of ``accepted``
    candidate_labels: Image      # every candidate, numbered as ``candidates[i]["id"]``
    tree: Dict[str, Any]
    provenance: Provenance
    seconds: float = 0.0
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> List[Dict[str, Any]]:
        return [c for c in self.candidates if c["accepted"]]

    def artery_segments(self) -> List[Segment]:
        return [Segment.from_structure(v, "pulmonary_artery", f"pulmonary artery, {name}")
                for name, v in LEVEL_LABEL.items()]

    def embolus_segments(self) -> List[Segment]:
        return [Segment.from_structure(n, "embolus", f"embolus {c['id']} ({c['level']}, {c['side']}, "
                                                     f"p={c['confidence']:.2f})")
                for n, c in enumerate(self.accepted, start=1)]

    def to_dict(self) -> Dict[str, Any]:
        return {"pe_score": round(self.pe_score, 4), "pe_present": bool(self.accepted), "threshold": self.threshold,
                "emboli_count": len(self.accepted), "qanadli": self.qanadli, "trunk": self.trunk,
                "artery_tree": self.tree, "candidates": self.candidates, "seconds": round(self.seconds, 2),
                "provenance": self.provenance.to_dict()}


def _check(image: Image) -> None:
    source = image.metadata.get("source")
    check_geometry(image, source)
    check_3d(image, source)
    check_finite(image, source)


def _describe(vol: WorkVolume, cands: Candidates, probs: np.ndarray, threshold: float) -> List[Dict[str, Any]]:
    out = []
    lps = vol.index_to_lps(cands.centroid) if cands.count else np.zeros((0, 3))
    for i in range(cands.count):
        p = lps[i]
        f = cands.features[i]
        out.append({"id": i + 1, "position_lps": [round(float(c), 1) for c in p],
                    "position_ras": [round(float(-p[0]), 1), round(float(-p[1]), 1), round(float(p[2]), 1)],
                    "size_mm": round(float(cands.extent_mm[i]), 1),
                    "volume_ml": round(float(cands.volume_mm3[i]) / 1000.0, 4),
                    "level": cands.level[i], "side": cands.side[i], "occlusive": bool(cands.occlusive[i]),
                    "vessel_diameter_mm": round(float(np.exp(f[9])), 1),
                    "confidence": round(float(probs[i]), 4), "accepted": bool(probs[i] >= threshold)})
    return out


def detect_emboli(image: Image, threshold: float = DEFAULT_THRESHOLD, model: Optional[str] = None,
                  network: Optional[Scorer] = None, lung_labels: Optional[Image] = None,
                  device: str = "cpu", progress: Optional[Progress] = None,
                  grid: Tuple[float, float] = COARSE_GRID, rules: int = CANDIDATE_RULES,
                  merge_mm: float = 0.0) -> EmbolismResult:
    """Detect pulmonary emboli on the CTPA ``image`` (HU).

    Raises :class:`lungai.errors.InputError` ``not a CTPA: ...`` when the pulmonary trunk is not enhanced.
    ``model`` picks a registry scorer (``name[@version]``; by default the one for the scan's spacing, see
    :func:`lungai.embolism.scorer.model_for`), whose working grid is used; ``network`` passes one directly
    (evaluation), used on ``grid`` (in-plane mm, slice mm) with the candidate ``rules`` it was trained on and
    candidates within ``merge_mm`` of each other reported as one (a registry scorer brings all three).
    ``lung_labels`` (1 right, 2 left) skips the lung segmentation.
    """
    progress = ensure(progress)
    started = time.perf_counter()
    _check(image)
    source = image.metadata.get("source")
    entry = None
    if network is None:
        network, entry = load_scorer(model or model_for(image), device)
        grid, rules, merge_mm = scorer_grid(entry), scorer_rules(entry), scorer_merge_mm(entry)
    vol = build_work_volume(image, lung_labels, progress.span(0.0, 0.45), grid)
    progress.update(0.5, "pulmonary trunk")
    trunk = find_trunk(vol, source)
    progress.update(0.55, "artery tree")
    tree = grow_tree(vol, trunk)
    progress.update(0.75, "filling defects")
    cands = find_candidates(vol, trunk, tree, network.prior(), rules)
    progress.update(0.9, "scoring candidates")
    patches = candidate_patches(vol, trunk, tree, cands) if network.uses_patches else None
    probs = score(network, cands.features, patches)
    if merge_mm > 0 and cands.count > 1:  # pieces of one structure are one mark
        groups = merge_groups(cands.count, candidate_gaps(cands.labels, vol.spacing, merge_mm), merge_mm)
        cands, probs = merge_candidates(cands, probs, groups, vol.spacing)
    described = _describe(vol, cands, probs, threshold)
    trunk_info = trunk.to_dict(vol)
    accepted = [c for c in described if c["accepted"]]
    qanadli = qanadli_index(accepted, trunk_info["trunk_bifurcation_lps"])
    progress.update(0.95, "label maps")
    arteries = np.zeros(tree.level.shape, dtype=np.uint8)
    for name in LEVELS:
        arteries[tree.level == LEVEL_CODE[name]] = LEVEL_LABEL[name]
    order = np.zeros(cands.count + 1, dtype=np.uint16)
    for n, c in enumerate(accepted, start=1):
        order[c["id"]] = n
    emboli = order[cands.labels]
    params = {"threshold": threshold, "trunk_hu": round(trunk.hu, 1), "tree_low_hu": round(tree.low_hu, 1),
              "lungs": "given" if lung_labels is not None else "lungs-classic",
              "working_grid_mm": [round(float(s), 3) for s in vol.image.spacing], "candidate_rules": rules,
              "merge_mm": merge_mm}
    provenance = Provenance("embolism-ctpa-candidates", model_name=entry.name if entry else None,
                            model_version=entry.version if entry else None,
                            weights_sha256=entry.sha256 if entry else None, parameters=params)
    result = EmbolismResult(candidates=described, pe_score=float(probs.max()) if len(probs) else 0.0,
                            threshold=threshold, qanadli=qanadli, trunk=trunk_info,
                            arteries=vol.to_image(arteries), emboli=vol.to_image(emboli),
                            candidate_labels=vol.to_image(cands.labels.astype(np.uint16)),
                            tree=tree.summary(vol.voxel_mm3), provenance=provenance,
                            seconds=time.perf_counter() - started)
    progress.update(1.0, f"{len(accepted)} emboli")
    return result


def features_for_training(image: Image, network: Optional[Scorer] = None, lung_labels: Optional[Image] = None,
                          grid: Tuple[float, float] = COARSE_GRID, rules: int = CANDIDATE_RULES) -> tuple:
    """(work volume, trunk, tree, candidates by ``rules``) of a phantom case on the working ``grid``, for training
    and evaluation."""
    vol = build_work_volume(image, lung_labels, grid=grid)
    trunk: Trunk = find_trunk(vol, image.metadata.get("source"))
    tree: ArteryTree = grow_tree(vol, trunk)
    cands = find_candidates(vol, trunk, tree, network.prior() if network is not None else None, rules)
    return vol, trunk, tree, cands
