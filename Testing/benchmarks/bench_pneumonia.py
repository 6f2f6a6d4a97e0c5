"""Pneumonia benchmark: prints the figures of issue 6's "done when" list.

    nice -n 10 /work/venv/bin/python Testing/benchmarks/bench_pneumonia.py phantom   # cohort accuracy + call
    nice -n 10 /work/venv/bin/python Testing/benchmarks/bench_pneumonia.py followup  # new / resolved lesions
    nice -n 10 /work/venv/bin/python Testing/benchmarks/bench_pneumonia.py covid2d   # real slices, 5-fold CV
    nice -n 10 /work/venv/bin/python Testing/benchmarks/bench_pneumonia.py speed     # 512x512x300 end to end
    nice -n 10 /work/venv/bin/python Testing/benchmarks/bench_pneumonia.py losses    # where the lesion Dice is lost
    nice -n 10 /work/venv/bin/python Testing/benchmarks/bench_pneumonia.py real      # real CT without pneumonia

Phantom cohort: presets covid-mild/moderate/severe, bacterial and healthy, several seeds. ``--lungs auto``
(default): lungs from ``lungai.lung.segment_lungs`` (the whole pipeline is measured, not the lesion step alone);
``--lungs truth``: the phantom's true lung and lobe labels, so lesion errors are measured apart from lung-mask
errors. ``--method classic|model`` and ``--model NAME[@VERSION]`` choose the lesion method (as the CLI does). Lesion-wise detection
counts truth lesions of at least 5 mm equivalent diameter (found when a predicted lesion overlaps them) and
predicted lesions (precision: the fraction overlapping a truth lesion). Involvement truth is the lesion share of
the truth lungs.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

PRESETS = ("covid-mild", "covid-moderate", "covid-severe", "bacterial", "healthy")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = np.count_nonzero(a) + np.count_nonzero(b)
    return 2.0 * np.count_nonzero(a & b) / total if total else 1.0


def _truth_lesion_ids(truth: np.ndarray, voxel_ml: float, min_mm: float) -> List[int]:
    ids, counts = np.unique(truth[truth > 0], return_counts=True)
    diam = (6.0 * counts * voxel_ml * 1000.0 / np.pi) ** (1.0 / 3.0)
    return [int(i) for i, d in zip(ids, diam) if d >= min_mm]


def evaluate_case(case, result, min_mm: float = 5.0) -> Dict[str, float]:
    truth = case.truth["lesions"].array
    lungs_truth = np.isin(case.truth["lungs"].array, (1, 2))
    pred = result.labels > 0
    ids = _truth_lesion_ids(truth, case.ct.voxel_volume_ml, min_mm)
    found = sum(bool(pred[truth == i].any()) for i in ids)
    hits = sum(bool((truth[result.instances == les.id] > 0).any()) for les in result.lesions)
    inv_truth = 100.0 * np.count_nonzero((truth > 0) & lungs_truth) / np.count_nonzero(lungs_truth)
    return {"dice": _dice(pred, truth > 0) if (pred.any() or (truth > 0).any()) else float("nan"),
            "truth_lesions": len(ids), "found": found, "predicted": len(result.lesions), "true_predicted": hits,
            "involvement": result.involvement.percent_opacity, "involvement_truth": inv_truth,
            "call": result.call.positive, "positive": bool(ids)}


def _method_line(args) -> str:
    model = f" (model {args.model or 'newest lesions model'})" if args.method == "model" else ""
    return f"lesion method {args.method}{model}; lungs {args.lungs}"


def _truth_regions(case):
    """Lung regions from the phantom's true lung and lobe labels."""
    from lungai.pneumonia import regions_from_labels

    return regions_from_labels(case.ct, case.truth["lungs"].array, lobes=case.truth["lobes"].array)


def _analyze_case(case, args, image=None):
    from lungai.pneumonia import analyze

    regions = _truth_regions(case) if args.lungs == "truth" else None
    return analyze(case.ct if image is None else image, method=args.method, model_name=args.model,
                   min_size_mm=5.0, regions=regions)


def phantom(args) -> None:
    from lungai.phantom import PhantomConfig, make_phantom

    print(_method_line(args), flush=True)
    rows = []
    for preset in args.presets:
        for seed in range(args.seeds):
            cfg = PhantomConfig(seed=100 + seed, preset=preset, size=tuple(args.size), spacing=tuple(args.spacing))
            case = make_phantom(cfg)
            started = time.perf_counter()
            result = _analyze_case(case, args)
            row = evaluate_case(case, result)
            row.update(preset=preset, seed=cfg.seed, seconds=time.perf_counter() - started)
            rows.append(row)
            print(f"{preset:15s} seed {cfg.seed}: Dice {row['dice']:.3f}  lesions found {row['found']}/"
                  f"{row['truth_lesions']}  predicted true {row['true_predicted']}/{row['predicted']}  involvement "
                  f"{row['involvement']:.2f} vs {row['involvement_truth']:.2f} %  call "
                  f"{'pos' if row['call'] else 'neg'} (truth {'pos' if row['positive'] else 'neg'})  "
                  f"{row['seconds']:.1f} s", flush=True)
    diseased = [r for r in rows if r["positive"]]
    recall = sum(r["found"] for r in rows) / max(1, sum(r["truth_lesions"] for r in rows))
    precision = sum(r["true_predicted"] for r in rows) / max(1, sum(r["predicted"] for r in rows))
    inv_err = [abs(r["involvement"] - r["involvement_truth"]) for r in rows]
    print("\nphantom cohort:", len(rows), "cases", f"size {tuple(args.size)} spacing {tuple(args.spacing)} mm;",
          _method_line(args))
    print(f"  lesion Dice (diseased cases): mean {np.nanmean([r['dice'] for r in diseased]):.3f}, "
          f"min {np.nanmin([r['dice'] for r in diseased]):.3f}   target >= 0.85")
    print(f"  lesion-wise recall (>= 5 mm): {recall:.3f}   target >= 0.97")
    print(f"  lesion-wise precision: {precision:.3f}   target >= 0.92")
    print(f"  involvement error: mean {np.mean(inv_err):.2f}, max {np.max(inv_err):.2f} points   target <= 2")
    print(f"  per-patient call correct: {sum(r['call'] == r['positive'] for r in rows)}/{len(rows)}   target all")


def _status_of_truth(result, truth: np.ndarray, tid: int, scan: str) -> str:
    """The follow-up status of the predicted lesions covering truth lesion ``tid`` (``scan``: earlier/later)."""
    analysis = result.earlier if scan == "earlier" else result.later
    covered = set(np.unique(analysis.instances[truth == tid]).tolist()) - {0}
    found = {c.status for c in result.lesion_changes if covered & set(c.earlier_ids if scan == "earlier"
                                                                      else c.later_ids)}
    return "/".join(sorted(found)) or "not detected"


def followup_bench(args) -> None:
    """One phantom patient scanned twice: lesion A only on the later scan (new), lesion B only on the earlier one
    (resolved), every other lesion on both. A lesion is taken away by putting back the same patient's healthy CT
    (same seed, preset "healthy") over it; the later scan is also shifted by a few voxels."""
    from scipy import ndimage as ndi

    from lungai.image import Image
    from lungai.phantom import PhantomConfig, make_phantom
    from lungai.pneumonia.followup import followup

    print(_method_line(args), flush=True)
    for seed in range(args.seeds):
        cfg = PhantomConfig(seed=200 + seed, preset="covid-moderate", size=tuple(args.size), spacing=tuple(args.spacing))
        case = make_phantom(cfg)
        healthy = make_phantom(PhantomConfig(**{**cfg.to_dict(), "preset": "healthy"}))
        truth = case.truth["lesions"].array
        ids, counts = np.unique(truth[truth > 0], return_counts=True)
        a_id, b_id = (int(i) for i in ids[np.argsort(-counts)][1:3])  # second and third largest lesion

        def without(tid: int) -> np.ndarray:
            area = ndi.binary_dilation(truth == tid, iterations=2)
            return np.where(area, healthy.ct.array, case.ct.array)

        shift = (1, 3, -2)
        earlier = case.ct.like(without(a_id))
        later = Image(np.roll(without(b_id), shift, axis=(0, 1, 2)), case.ct.spacing, case.ct.origin,
                      case.ct.direction, {"source": "later"})
        started = time.perf_counter()
        truth_lungs = {}
        if args.lungs == "truth":
            lungs = case.truth["lungs"].array
            truth_lungs = {"earlier_lungs": case.ct.like(lungs),
                           "later_lungs": later.like(np.roll(lungs, shift, axis=(0, 1, 2)))}
        result = followup(earlier, later, method=args.method, model_name=args.model, **truth_lungs)
        a_status = _status_of_truth(result, np.roll(truth, shift, axis=(0, 1, 2)), a_id, "later")
        b_status = _status_of_truth(result, truth, b_id, "earlier")
        others = [_status_of_truth(result, truth, int(i), "earlier") for i in ids if i not in (a_id, b_id)]
        print(f"seed {cfg.seed}: lesion only later -> {a_status} (expected new); lesion only earlier -> {b_status} "
              f"(expected resolved); the {len(others)} lesions on both -> "
              f"{ {s: others.count(s) for s in sorted(set(others))} }; all changes {result.counts()}; lung Dice after "
              f"registration {result.registration.lung_dice_after:.3f} (before "
              f"{result.registration.lung_dice_before:.3f}); {time.perf_counter() - started:.1f} s", flush=True)


def _covid2d_cases(root: Path):
    from PIL import Image as PILImage

    images = sorted((root / "MultiClassInfection-Train" / "Imgs").glob("*.jpg"), key=lambda p: int(p.stem))
    for path in images:
        gray = np.asarray(PILImage.open(path).convert("L"), dtype=np.float32)
        mask = np.asarray(PILImage.open(root / "LungInfection-Train" / "Doctor-label" / "GT" / f"{path.stem}.png"))
        if mask.shape != gray.shape:
            mask = np.asarray(PILImage.open(root / "LungInfection-Train" / "Doctor-label" / "GT" /
                                            f"{path.stem}.png").resize(gray.shape[::-1], 0))
        yield path.stem, gray, mask > 127


def _slice_volume(gray: np.ndarray):
    """A windowed 8-bit slice (cropped to the lungs) as a 3-slice HU volume with its lung mask
    (:mod:`lungai.pneumonia.pictures`: two-point HU calibration, dark-region lung mask)."""
    from lungai.image import Image
    from lungai.pneumonia.pictures import picture_lungs, picture_to_hu

    hu = picture_to_hu(gray)
    vol = np.repeat(hu[None], 3, axis=0).astype(np.float32)
    lungs = np.repeat(picture_lungs(hu)[None], 3, axis=0).astype(np.uint8)
    return Image.from_array(vol, spacing=(0.8, 0.8, 5.0)), lungs


def covid2d(args) -> None:
    """Weight-free method on the real COVID slices: 5-fold CV choosing the ground-glass threshold on 4 folds."""
    from lungai.pneumonia import ClassicParams, regions_from_labels, segment_lesions

    root = Path(args.data) / "covid2d" / "train"
    cases = list(_covid2d_cases(root))
    thresholds = (-800.0, -750.0, -720.0, -700.0, -650.0)
    dice = {}
    for t in thresholds:
        params = ClassicParams(ground_glass_hu=(t, -300.0))
        for name, gray, truth in cases:
            image, lungs = _slice_volume(gray)
            regions = regions_from_labels(image, lungs, zones=lungs.copy(), fill=False)
            pred = segment_lesions(image, regions, params=params).labels[1] > 0
            dice[(t, name)] = _dice(pred, truth)
    names = [c[0] for c in cases]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(names))
    folds = np.array_split(order, 5)
    per_case = []
    for k, test in enumerate(folds):
        train = [names[i] for i in order if i not in set(test)]
        best = max(thresholds, key=lambda t: np.mean([dice[(t, n)] for n in train]))
        scores = [dice[(best, names[i])] for i in test]
        per_case += scores
        print(f"fold {k}: ground-glass threshold {best:.0f} HU (chosen on the other folds), Dice {np.mean(scores):.3f}")
    print(f"covid2d weight-free method, 5-fold CV: mean Dice {np.mean(per_case):.3f} "
          f"(median {np.median(per_case):.3f}) over {len(per_case)} slices   aim >= 0.75")


def speed(args) -> None:
    """Lungs + lesions + quantification + report for a 512x512x300 phantom: wall and CPU time, peak memory.

    The phantom is made and saved by a child process first, so the peak memory printed is the analysis' own
    (reading the CT included). CPU seconds (user + system) are printed too: on a shared machine the wall time
    depends on the other jobs, the CPU time much less.
    """
    import subprocess
    import tempfile

    from lungai.io import read_image
    from lungai.pneumonia import run_analysis

    path = Path(args.cache)
    if not path.exists():
        subprocess.run([sys.executable, "-c", (
            "from lungai.phantom import PhantomConfig, make_phantom; from lungai.io import write_image; "
            "c = make_phantom(PhantomConfig(seed=7, preset='covid-moderate', size=(512, 512, 300), "
            f"spacing=(0.7, 0.7, 1.0))); write_image(c.ct, {str(path)!r})")], check=True)
    image = read_image(path)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = run_analysis(image, out)
        seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"512x512x300 end to end (lungs, lesions, quantification, HTML+PDF report): wall {seconds:.1f} s, CPU "
          f"{usage.ru_utime + usage.ru_stime - cpu0:.1f} s (target < 30 s on 2 cores); peak RSS "
          f"{usage.ru_maxrss / 1024.0:.0f} MB (target < 4096 MB); {len(result.lesions)} lesions; load average "
          f"{os.getloadavg()[0]:.1f}")


def _blurred_occupancy(cfg):
    """The phantom of ``cfg`` and its lesion label blurred exactly as its CT is (in-plane PSF and slice profile on
    the oversampled rendering grid, sampled at the output slices): below 0.5 the CT shows less than half the
    lesion's contrast. The rendering grid is reached by wrapping two phantom internals for the one call."""
    import lungai.phantom.ct as phantom_ct
    from lungai.phantom import make_phantom

    seen = {}
    paint, acquire = phantom_ct.paint_lesions, phantom_ct._acquire

    def keep_ids(vol, grid, specs, rng, ids, classes):
        seen["ids"] = ids
        return paint(vol, grid, specs, rng, ids, classes)

    def keep_grid(hu, cfg_, grid, m):
        seen.setdefault("grid", (cfg_, grid, m))
        return acquire(hu, cfg_, grid, m)

    phantom_ct.paint_lesions, phantom_ct._acquire = keep_ids, keep_grid
    try:
        case = make_phantom(cfg)
    finally:
        phantom_ct.paint_lesions, phantom_ct._acquire = paint, acquire
    return case, acquire((seen["ids"] > 0).astype(np.float32), *seen["grid"])


def _first_class(mask: np.ndarray, classes) -> Dict[str, int]:
    """Voxel counts of ``mask`` sorted into the first of the (name, selection) ``classes`` that holds them."""
    rest, counts = mask.copy(), {}
    for name, selection in classes:
        counts[name] = int(np.count_nonzero(rest & selection))
        rest &= ~selection
    counts["other"] = int(np.count_nonzero(rest))
    return counts


def losses(args) -> None:
    """Where the lesion Dice is lost: truth voxels no predicted lesion covers, and false voxels, by cause."""
    from scipy import ndimage as ndi

    from lungai.labels import AIRWAYS
    from lungai.phantom import PhantomConfig
    from lungai.pneumonia.analysis import lung_regions
    from lungai.pneumonia.lesions import find_lesions
    from lungai.pneumonia.segmentation import ClassicParams, morphology, segment_lesions

    params = ClassicParams()  # the method's own smoothing, airway-wall shell and ground-glass threshold
    faint = params.ground_glass_hu[0]
    print(_method_line(args), flush=True)
    for spec in args.cases:
        preset, seed = spec.rsplit(":", 1)
        cfg = PhantomConfig(seed=int(seed), preset=preset, size=tuple(args.size), spacing=tuple(args.spacing))
        case, occupancy = _blurred_occupancy(cfg)
        ct = case.ct
        regions = _truth_regions(case) if args.lungs == "truth" else lung_regions(ct)[0]
        seg = segment_lesions(ct, regions)
        pred = find_lesions(ct, seg.labels, regions, 5.0)[2] > 0
        truth = case.truth["lesions"].array > 0
        spacing = tuple(reversed(ct.spacing))
        smooth = ndi.gaussian_filter(ct.array.astype(np.float32), [params.smoothing_mm / s for s in spacing])
        lung = regions.lung_mask
        walls = lung & morphology(ndi.binary_dilation, regions.lungs == AIRWAYS, params.airway_wall_mm, spacing)
        cross = ndi.generate_binary_structure(3, 1)
        cross[[0, 2]] = False  # the phantom's axial axis is array axis 0
        rim = lung & ~ndi.binary_erosion(lung, cross, border_value=1)
        far = ndi.distance_transform_edt(~pred, sampling=spacing) > 4.0
        near_truth = ndi.distance_transform_edt(~truth, sampling=spacing) <= 2.0
        missed = truth & ~pred
        print(f"\n{spec}: Dice {_dice(pred, truth):.3f}; blurred occupancy >= 0.5 vs truth "
              f"{_dice(occupancy >= 0.5, truth):.3f}; missed {np.count_nonzero(missed)}, outside the lung mask "
              f"{np.count_nonzero(missed & ~lung)}")
        for name, n in _first_class(missed & lung, [
                ("blurred occupancy < 0.5", occupancy < 0.5), ("airway-wall shell", walls), ("outer rim voxel", rim),
                ("vessel zone", seg.vessels), (f"smoothed HU < {faint:.0f}", smooth < faint),
                ("> 4 mm from any predicted lesion", far)]).items():
            print(f"  missed {name:34s} {n:7d}")
        false = pred & ~truth
        for name, n in _first_class(false, [
                ("blurred occupancy >= 0.5", occupancy >= 0.5), ("blurred occupancy 0.2-0.5", occupancy >= 0.2),
                ("vessel zone", seg.vessels), ("within 2 mm of the truth", near_truth)]).items():
            print(f"  false  {name:34s} {n:7d}")


# chest-ct-141: the one real finding is a right upper/middle posterior tumour. Its solid core (smoothed HU above
# -300 after a 2 x 3 x 3 voxel opening, the component through the voxel below) has its centroid at ijk
# (168, 253, 78) and lies within 20 mm of it; the tumour region is the ball of 25 mm around that centroid (5 mm
# for the core's blurred edge and spicules). Every lesion voxel outside it is a false lesion.
TUMOUR_IJK = (168, 253, 78)
TUMOUR_RADIUS_MM = 25.0


def _real_scans(data: Path):
    """(name, CT path, lungs label map or None for segment_lungs) of the real scans without pneumonia."""
    ct = data / "ct"
    yield "chest-ct-141", ct / "chest-ct-141" / "ct.nii.gz", None
    yield "abdomen-lung-bases", ct / "abdomen-lung-bases" / "ct.nii.gz", None
    yield "abdomen-lung-bases (TotalSegmentator lobes)", ct / "abdomen-lung-bases" / "ct.nii.gz", "lobes"
    yield "cip-crop-2slices", ct / "cip-crop-2slices" / "ct.nrrd", None


def _reference_lungs(ct_path: Path, image):
    """Right (1) and left (2) lungs from the TotalSegmentator lobe masks beside the CT."""
    from lungai.io import read_image

    lungs = np.zeros(image.shape, dtype=np.uint8)
    for name, label in (("upper_lobe_right", 1), ("middle_lobe_right", 1), ("lower_lobe_right", 1),
                        ("upper_lobe_left", 2), ("lower_lobe_left", 2)):
        lungs[read_image(ct_path.parent / f"lung_{name}.nii.gz", check="none").array > 0] = label
    return image.like(lungs)


def _overlays(result, path: Path, slices) -> None:
    """Axial slices of the CT (lung window) with the lung outline (green) and the lesions (red) in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ct = result.image.array
    slices = [k for k in (slices or np.linspace(0, ct.shape[0] - 1, 6).astype(int)) if 0 <= k < ct.shape[0]]
    if not slices:
        return
    fig, axes = plt.subplots(1, len(slices), figsize=(4 * len(slices), 4), squeeze=False)
    for ax, k in zip(axes[0], slices):
        ax.imshow(ct[k], cmap="gray", vmin=-1100, vmax=200)
        ax.contour(result.regions.lung_mask[k], [0.5], colors="g", linewidths=0.5)
        if (result.labels[k] > 0).any():
            ax.contour(result.labels[k] > 0, [0.5], colors="r", linewidths=0.8)
        ax.set_title(f"k = {k}")
        ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"    overlays: {path}")


def real(args) -> None:
    """Specificity on real CT without pneumonia: lesions, ml by type, and on chest-ct-141 the ml outside the
    tumour (every one of them false)."""
    from lungai.io import read_image
    from lungai.pneumonia import analyze

    for name, path, lungs in _real_scans(Path(args.data)):
        if not path.exists():
            print(f"{name}: {path} not found, skipped")
            continue
        image = read_image(path, check="none")
        started = time.perf_counter()
        result = analyze(image, lungs=_reference_lungs(path, image) if lungs else None, min_size_mm=5.0)
        seconds = time.perf_counter() - started
        by_type = {t: sum(les.volume_ml for les in result.lesions if les.type == t)
                   for t in ("ground_glass", "consolidation")}
        line = (f"{name}: {len(result.lesions)} lesions, {sum(by_type.values()):.1f} ml (ground glass "
                f"{by_type['ground_glass']:.1f}, consolidation {by_type['consolidation']:.1f}), severity "
                f"{result.involvement.severity_total}/{result.involvement.severity_max}, "
                f"call {'pos' if result.call.positive else 'neg'}")
        if name == "chest-ct-141":
            k, j, i = np.ogrid[tuple(slice(0, n) for n in image.shape)]
            si, sj, sk = image.spacing
            ti, tj, tk = TUMOUR_IJK
            tumour = ((k - tk) * sk) ** 2 + ((j - tj) * sj) ** 2 + ((i - ti) * si) ** 2 <= TUMOUR_RADIUS_MM ** 2
            found = result.labels > 0
            line += (f"; outside the tumour {np.count_nonzero(found & ~tumour) * image.voxel_volume_ml:.1f} ml in "
                     f"{sum(not tumour[result.instances == les.id].any() for les in result.lesions)} lesions, "
                     f"tumour region {np.count_nonzero(found & tumour) * image.voxel_volume_ml:.1f} ml")
        print(f"{line}; {seconds:.1f} s", flush=True)
        if args.overlays:
            _overlays(result, Path(args.overlays) / f"{re.sub('[^a-z0-9]+', '-', name.lower()).strip('-')}.png", args.slices)
        for les in result.lesions:
            print(f"    {les.id:3d} {les.type:13s} {les.volume_ml:7.2f} ml  {les.zone:20s} mean {les.mean_hu:5.0f} HU  "
                  f"ijk {tuple(round(c) for c in les.centroid_ijk)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["phantom", "followup", "covid2d", "speed", "losses", "real"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--cases", nargs="+", default=["covid-moderate:100", "covid-severe:100", "covid-severe:101"],
                        help="PRESET:SEED phantoms for 'losses'")
    parser.add_argument("--size", type=int, nargs=3, default=(192, 192, 96), help="phantom size (i j k)")
    parser.add_argument("--spacing", type=float, nargs=3, default=(1.8, 1.8, 3.5), help="phantom spacing (mm)")
    parser.add_argument("--method", choices=["classic", "model"], default="classic", help="lesion method")
    parser.add_argument("--model", default=None, help="lesion model NAME[@VERSION] (with --method model)")
    parser.add_argument("--lungs", choices=["auto", "truth"], default="auto",
                        help="auto: segment_lungs; truth: the phantom's true lung labels (phantom, followup)")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    parser.add_argument("--overlays", default=None, help="folder for lesion overlay PNGs of each real scan ('real')")
    parser.add_argument("--slices", type=int, nargs="+", default=None,
                        help="axial slice indices of the overlays ('real'; default: six spread over the scan)")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "lungai-bench-pneumonia-512.nii.gz"),
                        help="where the speed test keeps its 512x512x300 phantom CT")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    {"phantom": phantom, "followup": followup_bench, "covid2d": covid2d, "speed": speed,
     "losses": losses, "real": real}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
