"""Follow-up of two CTs of one patient: lung-mask-driven registration, change table, lesion matching, overlay.

The later CT is registered to the earlier one with SimpleITK: an affine transform fitted to the two lung masks
(smoothed, mean squares metric, multi-resolution, initialised by the masks' centres of mass). The later lesion
labels, lesion instances and CT are resampled onto the earlier grid, so that every change is measured in the
earlier scan's regions (lungs and zones).

Lesions are matched when they overlap after registration, or when their centroids lie within ``match_mm``.
Matched groups (merges and splits included) are ``grown`` when the later volume is at least ``grow_ratio``
times the earlier one (and the difference at least ``min_change_ml``), ``shrunk`` when at most 1/``grow_ratio``,
else ``stable``; earlier lesions without a partner are ``resolved``, later ones ``new``. A group whose volume
rose (fell) by ``appear_ratio`` (4) or more is also ``new`` (``resolved``): its smaller side is a speck next to a
lesion that appeared (or went), not the same lesion. So is a group whose later (earlier) side holds, more than
2 mm (and one voxel) from the other side, a part into which a ball of the minimum lesion size fits, when its
volume rose (fell) by ``grow_ratio`` or more: a lesion that appeared (went) joined in one connected component to a
neighbour that stayed. Within the stable band a group stays stable: a lesion outlined a little differently on the
two scans is not a lesion that went.
The change map on the earlier grid: 1 lesion only later (new or progressed), 2 lesion only earlier
(resolved or regressed), 3 lesion on both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from lungai.image import Image
from lungai.io import Segment, write_json, write_segmentation
from lungai.pneumonia.analysis import AnalysisResult, analyze
from lungai.pneumonia.regions import SIDES, bounding_box
from lungai.progress import Progress, ensure
from lungai.report.tables import write_csv

PathLike = Union[str, Path]
CHANGE_SEGMENTS = [Segment(1, "new or progressed", (0.90, 0.20, 0.15)),
                   Segment(2, "resolved or regressed", (0.20, 0.75, 0.30)),
                   Segment(3, "persistent", (0.95, 0.80, 0.20))]
CHANGE_COLORS = {s.label: s.color for s in CHANGE_SEGMENTS}
CHANGE_NAMES = {s.label: s.name for s in CHANGE_SEGMENTS}


@dataclass
class Registration:
    """The later-to-earlier transform and how well the lungs agree after it."""

    transform: sitk.Transform
    lung_dice_before: float
    lung_dice_after: float
    metric: float

    def to_dict(self) -> Dict[str, Any]:
        return {"type": self.transform.GetName(), "parameters": list(self.transform.GetParameters()),
                "fixed_parameters": list(self.transform.GetFixedParameters()),
                "lung_dice_before": self.lung_dice_before, "lung_dice_after": self.lung_dice_after,
                "metric": self.metric}


@dataclass
class LesionChange:
    """One matched group of lesions (or one new/resolved lesion)."""

    status: str  # new | grown | shrunk | stable | resolved
    earlier_ids: List[int]
    later_ids: List[int]
    earlier_ml: float
    later_ml: float
    change_ml: float
    change_percent: Optional[float]
    side: str
    zone: str

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class RegionChange:
    region: str
    earlier_lesion_ml: float
    later_lesion_ml: float
    change_ml: float
    earlier_percent: float
    later_percent: float
    change_points: float
    earlier_mld: Optional[float]
    later_mld: Optional[float]

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class FollowupResult:
    earlier: AnalysisResult
    later: AnalysisResult
    registration: Registration
    later_ct_on_earlier: Image
    later_labels_on_earlier: np.ndarray
    changes: List[RegionChange]
    lesion_changes: List[LesionChange]
    change_map: np.ndarray
    parameters: Dict[str, Any] = field(default_factory=dict)
    outputs: Dict[str, str] = field(default_factory=dict)

    def counts(self) -> Dict[str, int]:
        out = {s: 0 for s in ("new", "grown", "shrunk", "stable", "resolved")}
        for change in self.lesion_changes:
            out[change.status] += 1
        return out

    def to_dict(self) -> Dict[str, Any]:
        return {"summary": {"earlier": self.earlier.summary(), "later": self.later.summary(),
                            "lesion_changes": self.counts()},
                "registration": self.registration.to_dict(), "changes": [c.to_dict() for c in self.changes],
                "lesion_changes": [c.to_dict() for c in self.lesion_changes], "parameters": self.parameters,
                "earlier": {"source": self.earlier.image.metadata.get("source"),
                            "provenance": self.earlier.provenance.to_dict()},
                "later": {"source": self.later.image.metadata.get("source"),
                          "provenance": self.later.provenance.to_dict()},
                "outputs": dict(self.outputs)}


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = np.count_nonzero(a) + np.count_nonzero(b)
    return float(2.0 * np.count_nonzero(a & b) / total) if total else 1.0


def _mask_image(image: Image, mask: np.ndarray) -> sitk.Image:
    out = sitk.GetImageFromArray(mask.astype(np.float32))
    ref = image.to_sitk()
    out.CopyInformation(ref)
    return sitk.SmoothingRecursiveGaussian(out, 2.0)


def resample_onto(moving: Image, fixed: Image, transform: sitk.Transform, labels: bool,
                  default: float = 0.0) -> np.ndarray:
    """``moving`` resampled onto ``fixed``'s grid through ``transform`` (fixed -> moving points)."""
    interpolator = sitk.sitkNearestNeighbor if labels else sitk.sitkLinear
    out = sitk.Resample(moving.to_sitk(), fixed.to_sitk(), transform, interpolator, default,
                        moving.to_sitk().GetPixelID())
    return sitk.GetArrayFromImage(out)


def register_lungs(fixed: Image, fixed_lungs: np.ndarray, moving: Image, moving_lungs: np.ndarray,
                   progress: Optional[Progress] = None) -> Registration:
    """Affine registration of ``moving`` to ``fixed`` driven by the lung masks (see module docstring)."""
    progress = ensure(progress)
    f = _mask_image(fixed, fixed_lungs > 0)
    m = _mask_image(moving, moving_lungs > 0)
    initial = sitk.CenteredTransformInitializer(f, m, sitk.AffineTransform(3),
                                                sitk.CenteredTransformInitializerFilter.MOMENTS)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMeanSquares()
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.05, seed=7)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-4, numberOfIterations=150,
                                                 relaxationFactor=0.6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(initial, inPlace=False)
    reg.AddCommand(sitk.sitkIterationEvent, lambda: progress.update(
        min(0.95, reg.GetOptimizerIteration() / 300.0), "registering the later scan"))
    transform = reg.Execute(f, m)
    before = resample_onto(moving.like((moving_lungs > 0).astype(np.uint8)), fixed, sitk.Transform(3, sitk.sitkIdentity),
                           True)
    after = resample_onto(moving.like((moving_lungs > 0).astype(np.uint8)), fixed, transform, True)
    progress.update(1.0, "registered")
    return Registration(transform, _dice(fixed_lungs > 0, before > 0), _dice(fixed_lungs > 0, after > 0),
                        float(reg.GetMetricValue()))


def _groups(pairs: Sequence[Tuple[int, int]]) -> List[Tuple[List[int], List[int]]]:
    """Connected groups of a bipartite earlier/later matching (merges and splits end up in one group)."""
    parent: Dict[Tuple[str, int], Tuple[str, int]] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e, l in pairs:
        parent[find(("e", e))] = find(("l", l))
    groups: Dict[Tuple[str, int], Tuple[List[int], List[int]]] = {}
    for node in list(parent):
        root = find(node)
        group = groups.setdefault(root, ([], []))
        (group[0] if node[0] == "e" else group[1]).append(node[1])
    return [(sorted(e), sorted(l)) for e, l in groups.values()]


def _lesion_beside(earlier: AnalysisResult, later_on_earlier: np.ndarray, e_ids: Sequence[int],
                   l_ids: Sequence[int], min_size_mm: float, margin_mm: float) -> Tuple[bool, bool]:
    """Whether the later (earlier) side of a matched group holds, more than ``margin_mm`` (at least one voxel)
    away from the other side, a part into which a ball of ``min_size_mm`` fits: a lesion that appeared (went)
    beside one that stayed, joined to it in one connected component. Growth (a shell) and registration error do
    not qualify."""
    e_mask = np.isin(earlier.instances, e_ids)
    l_mask = np.isin(later_on_earlier, l_ids)
    spacing = tuple(reversed(earlier.image.spacing))
    margin_mm = max(margin_mm, max(spacing))  # an outline one voxel (a thick slice) off is the same outline
    pad = int(np.ceil((margin_mm + min_size_mm) / min(spacing))) + 1
    box = bounding_box(e_mask | l_mask, pad)
    e_mask, l_mask = e_mask[box], l_mask[box]

    def holds_lesion(mask, other) -> bool:
        beyond = mask & (ndi.distance_transform_edt(~other, sampling=spacing) > margin_mm)
        return bool(beyond.any()) and float(ndi.distance_transform_edt(beyond, sampling=spacing).max()) >= \
            min_size_mm / 2.0

    return holds_lesion(l_mask, e_mask), holds_lesion(e_mask, l_mask)


def match_lesions(earlier: AnalysisResult, later: AnalysisResult, later_instances_on_earlier: np.ndarray,
                  transform: sitk.Transform, match_mm: float = 10.0, grow_ratio: float = 1.25,
                  min_change_ml: float = 0.1, appear_ratio: float = 4.0, min_size_mm: float = 5.0,
                  margin_mm: float = 2.0) -> List[LesionChange]:
    """Lesion correspondence and status (see module docstring)."""
    both = (earlier.instances > 0) & (later_instances_on_earlier > 0)
    pairs = set(zip(earlier.instances[both].tolist(), later_instances_on_earlier[both].tolist()))
    # centroid proximity: later centroids mapped into the earlier frame (inverse of fixed->moving transform)
    inverse = transform.GetInverse()
    later_in_earlier = {les.id: np.asarray(inverse.TransformPoint(tuple(les.centroid_lps))) for les in later.lesions}
    for e in earlier.lesions:
        for l_id, point in later_in_earlier.items():
            if np.linalg.norm(point - np.asarray(e.centroid_lps)) <= match_mm:
                pairs.add((e.id, l_id))
    e_by_id = {les.id: les for les in earlier.lesions}
    l_by_id = {les.id: les for les in later.lesions}
    groups = _groups(sorted(pairs))
    matched_e = {i for g in groups for i in g[0]}
    matched_l = {i for g in groups for i in g[1]}
    groups += [([e], []) for e in e_by_id if e not in matched_e]
    groups += [([], [l]) for l in l_by_id if l not in matched_l]
    changes = []
    for e_ids, l_ids in groups:
        e_ml = sum(e_by_id[i].volume_ml for i in e_ids)
        l_ml = sum(l_by_id[i].volume_ml for i in l_ids)
        appeared = went = False
        if e_ids and l_ids:
            # only a group whose volume changed beyond the stable band: a ball-sized part of one outline at an
            # unchanged total (within ``grow_ratio``) is the outlines' variation between the scans
            appeared, went = _lesion_beside(earlier, later_instances_on_earlier, e_ids, l_ids, min_size_mm,
                                            margin_mm)
            appeared = appeared and l_ml >= grow_ratio * e_ml
            went = went and e_ml >= grow_ratio * l_ml
        if not l_ids or e_ml >= appear_ratio * l_ml or (went and not appeared):
            status = "resolved"
        elif not e_ids or l_ml >= appear_ratio * e_ml or appeared:
            status = "new"
        elif l_ml >= grow_ratio * e_ml and l_ml - e_ml >= min_change_ml:
            status = "grown"
        elif l_ml * grow_ratio <= e_ml and e_ml - l_ml >= min_change_ml:
            status = "shrunk"
        else:
            status = "stable"
        ref = e_by_id[e_ids[0]] if e_ids else l_by_id[l_ids[0]]
        changes.append(LesionChange(status, e_ids, l_ids, e_ml, l_ml, l_ml - e_ml,
                                    100.0 * (l_ml - e_ml) / e_ml if e_ml > 0 else None, ref.side, ref.zone))
    order = {"new": 0, "grown": 1, "shrunk": 2, "resolved": 3, "stable": 4}
    changes.sort(key=lambda c: (order[c.status], -max(c.earlier_ml, c.later_ml)))
    return changes


def region_changes(earlier: AnalysisResult, later_labels: np.ndarray, later_ct: np.ndarray) -> List[RegionChange]:
    """Lesion volume, involvement and mean density per lung and zone, both scans in the earlier regions."""
    regions = earlier.regions
    voxel_ml = earlier.image.voxel_volume_ml
    named = [("both lungs", regions.lung_mask)]
    named += [(f"{side} lung", regions.lungs == value) for value, side in SIDES.items()]
    named += [(name, regions.zones == value) for value, name in enumerate(regions.zone_names, start=1)]
    rows = []
    for name, mask in named:
        n = int(np.count_nonzero(mask))
        if n == 0:
            continue
        e_ml = np.count_nonzero(earlier.labels[mask]) * voxel_ml
        l_ml = np.count_nonzero(later_labels[mask]) * voxel_ml
        e_pct, l_pct = 100.0 * e_ml / (n * voxel_ml), 100.0 * l_ml / (n * voxel_ml)
        rows.append(RegionChange(name, e_ml, l_ml, l_ml - e_ml, e_pct, l_pct, l_pct - e_pct,
                                 float(earlier.image.array[mask].mean()), float(later_ct[mask].mean())))
    return rows


def followup(earlier_image: Image, later_image: Image, earlier_lungs: Optional[Image] = None,
             later_lungs: Optional[Image] = None, method: str = "classic", min_size_mm: float = 5.0,
             device: str = "cpu", match_mm: float = 10.0, progress: Optional[Progress] = None,
             earlier_result: Optional[AnalysisResult] = None,
             later_result: Optional[AnalysisResult] = None, model_name: Optional[str] = None) -> FollowupResult:
    """Analyse both scans (unless their results are given), register, match and measure the changes."""
    progress = ensure(progress)
    earlier = earlier_result or analyze(earlier_image, lungs=earlier_lungs, method=method, min_size_mm=min_size_mm,
                                        device=device, progress=progress.span(0.0, 0.35), model_name=model_name)
    later = later_result or analyze(later_image, lungs=later_lungs, method=method, min_size_mm=min_size_mm,
                                    device=device, progress=progress.span(0.35, 0.7), model_name=model_name)
    progress.update(0.7, "registering the later scan to the earlier one")
    reg = register_lungs(earlier.image, earlier.regions.lung_mask, later.image, later.regions.lung_mask,
                         progress.span(0.7, 0.9))
    progress.update(0.9, "comparing")
    fixed = earlier.image
    later_labels = resample_onto(later.image.like(later.labels), fixed, reg.transform, True)
    later_instances = resample_onto(later.image.like(later.instances.astype(np.uint32)), fixed, reg.transform, True)
    air = float(min(-1000.0, later.image.array.min()))
    later_ct = resample_onto(later.image.like(later.image.array.astype(np.float32)), fixed, reg.transform, False,
                             default=air)
    changes = region_changes(earlier, later_labels, later_ct)
    lesion_changes = match_lesions(earlier, later, later_instances, reg.transform, match_mm,
                                   min_size_mm=min_size_mm)
    change_map = np.zeros(fixed.shape, dtype=np.uint8)
    e, l_ = earlier.labels > 0, later_labels > 0
    change_map[l_ & ~e] = 1
    change_map[e & ~l_] = 2
    change_map[e & l_] = 3
    progress.update(1.0, "follow-up done")
    return FollowupResult(earlier, later, reg, fixed.like(later_ct), later_labels, changes, lesion_changes,
                          change_map, {"method": method, "min_size_mm": min_size_mm, "match_mm": match_mm})


def write_followup(result: FollowupResult, outdir: PathLike, pdf: bool = True,
                   progress: Optional[Progress] = None) -> Dict[str, str]:
    """Write followup.json, changes.csv, lesion_changes.csv, change.seg.nrrd and report.html (+ report.pdf)."""
    from lungai.pneumonia.report import followup_report

    progress = ensure(progress)
    out = Path(outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    files: Dict[str, Path] = {}
    header = {"method": result.earlier.provenance.method, "registration": "affine, lung-mask driven"}
    files["change_seg"] = write_segmentation(result.earlier.image.like(result.change_map), CHANGE_SEGMENTS,
                                             out / "change.seg.nrrd", metadata=header)
    files["changes_csv"] = write_csv([c.to_dict() for c in result.changes], out / "changes.csv",
                                     list(RegionChange.__dataclass_fields__))
    files["lesion_changes_csv"] = write_csv([c.to_dict() for c in result.lesion_changes], out / "lesion_changes.csv",
                                            list(LesionChange.__dataclass_fields__))
    progress.update(0.4, "writing the follow-up report")
    report = followup_report(result)
    files["report"] = report.write_html(out / "report.html")
    if pdf:
        files["report_pdf"] = report.write_pdf(out / "report.pdf")
    result.outputs = {name: str(path) for name, path in files.items()}
    result.outputs["followup"] = str(out / "followup.json")
    write_json(result.to_dict(), out / "followup.json")
    progress.update(1.0, "outputs written")
    return result.outputs


def run_followup(earlier_image: Image, later_image: Image, outdir: PathLike, earlier_lungs: Optional[Image] = None,
                 later_lungs: Optional[Image] = None, method: str = "classic", min_size_mm: float = 5.0,
                 device: str = "cpu", pdf: bool = True, progress: Optional[Progress] = None) -> FollowupResult:
    """Follow-up analysis and all its output files (what ``lungai pneumonia followup`` runs)."""
    progress = ensure(progress)
    result = followup(earlier_image, later_image, earlier_lungs, later_lungs, method, min_size_mm, device,
                      progress=progress.span(0.0, 0.9))
    write_followup(result, outdir, pdf=pdf, progress=progress.span(0.9, 1.0))
    return result
