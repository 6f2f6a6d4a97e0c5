"""Lung segmentation benchmark: accuracy (phantom, real references), speed and memory. Prints figures.

    nice -n 10 /work/venv/bin/python Testing/benchmarks/bench_lungs.py --out /tmp/lungs-bench [--seeds 10]

Accuracy: Dice per lung on phantoms (healthy and severe COVID, several seeds), on the CIP two-slice crop
(reference labels: Chest Imaging Platform algorithm output) and on the lung bases of an abdominal CT (reference:
TotalSegmentator v1 lobes). Plausibility on the 512x512x141 chest CT (volumes, right/left ratio) with overlay PNGs
in --out. Speed: classic on a 512x512x300 chest CT (the 141-slice CT resampled to 300 slices) limited to 2 threads;
wall and CPU seconds, peak traced memory and peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402
from scipy import ndimage  # noqa: E402

from lungai.image import Image  # noqa: E402
from lungai.io import read_image  # noqa: E402
from lungai.labels import AIRWAYS, LEFT_LUNG, RIGHT_LUNG  # noqa: E402
from lungai.lung import segment_lungs  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("LUNGAI_SHARED_DATA", REPO.parent / "shared" / "data"))
sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(2)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return round(2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b)), 4)


REGIONS = ("base", "paravertebral", "chest-wall rim", "mediastinal", "inner")


def missed_lesion_regions(ct: Image, truth: np.ndarray, lesion: np.ndarray, lab: np.ndarray) -> list:
    """Where the lesion voxels outside the mask lie, per truth lung: one row per region with volume, median HU,
    distance from the mask (median, max) and the slices (5th-95th percentile). Regions, first match wins: base
    (lowest 15 % of that lung's height), paravertebral (behind the lung's centre in the slice, more than 45 deg
    from lateral, within 70 mm of the vertebral body centre), chest-wall rim (within 12 mm of bone), mediastinal
    (medial, or anterior more than 45 deg from lateral: heart border, anterior mediastinum), inner (the rest)."""
    from lungai.lung.body import body_interior
    from lungai.lung.dome import BONE_HU
    from lungai.lung.paravertebral import vertebral_centres

    spacing = tuple(ct.spacing[::-1])  # phantoms are already [S, P, L]
    missed = lesion & ~np.isin(lab, (RIGHT_LUNG, LEFT_LUNG))
    if not missed.any():
        return []
    from_mask = ndimage.distance_transform_edt(~np.isin(lab, (RIGHT_LUNG, LEFT_LUNG)), sampling=spacing)
    from_bone = ndimage.distance_transform_edt(ct.array < BONE_HU, sampling=spacing)
    centres = vertebral_centres(ct.array, body_interior(ct.array), np.isin(truth, (1, 2)), spacing)
    rows = []
    for side, name in ((RIGHT_LUNG, "right"), (LEFT_LUNG, "left")):
        kk, yy, xx = np.nonzero(missed & (truth == side))
        if kk.size == 0:
            continue
        z = np.nonzero((truth == side).any(axis=(1, 2)))[0]
        height = (kk - z.min()) / max(1, z.max() - z.min())
        cy, cx = np.full(truth.shape[0], np.nan), np.full(truth.shape[0], np.nan)
        for k in np.unique(kk):
            cy[k], cx[k] = ndimage.center_of_mass(truth[k] == side)
        outward = -1.0 if side == RIGHT_LUNG else 1.0
        angle = np.degrees(np.arctan2((yy - cy[kk]) * spacing[1], (xx - cx[kk]) * spacing[2] * outward))
        spine = np.hypot((yy - centres[kk, 0]) * spacing[1], (xx - centres[kk, 1]) * spacing[2])
        region = np.select([height < 0.15, (angle > 45) & (spine < 70), from_bone[kk, yy, xx] < 12,
                            np.abs(angle) > 45], list(REGIONS[:4]), REGIONS[4])
        for r in REGIONS:
            sel = region == r
            if sel.any():
                d = from_mask[kk[sel], yy[sel], xx[sel]]
                rows.append({"lung": name, "region": r, "ml": round(float(sel.sum() * ct.voxel_volume_ml), 1),
                             "hu_median": round(float(np.median(ct.array[kk[sel], yy[sel], xx[sel]]))),
                             "distance_mm_median": round(float(np.median(d)), 1),
                             "distance_mm_max": round(float(d.max()), 1),
                             "slices": [int(np.percentile(kk[sel], 5)), int(np.percentile(kk[sel], 95))]})
    return rows


def phantom_accuracy(seeds: int, size, spacing, presets, first_seed: int = 0, map_missed: bool = False) -> list:
    """Per case: Dice per lung and airways, sides, soft tissue inside the mask (mask minus the truth lungs and
    airways at HU > -300: false lesions for the pneumonia analysis) and lesion volume the mask misses."""
    from lungai.phantom import PhantomConfig, make_phantom

    rows = []
    for preset in presets:
        for seed in range(first_seed, first_seed + seeds):
            case = make_phantom(PhantomConfig(seed=seed, size=size, spacing=spacing, preset=preset))
            truth = case.truth["lungs"].array
            res = segment_lungs(case.ct, method="classic")
            lab = res.labels.array
            airway = truth == AIRWAYS
            lungs = np.isin(lab, (1, 2))
            ml = case.ct.voxel_volume_ml
            lesion = case.truth["lesion_class"].array > 0
            centre = {s: case.ct.index_to_lps(np.argwhere(lab == s).mean(axis=0)[::-1])[0] for s in (1, 2)}
            rows.append({"preset": preset, "seed": seed, "dice_right": dice(truth == 1, lab == 1),
                         "dice_left": dice(truth == 2, lab == 2), "dice_airways": dice(airway, lab == AIRWAYS),
                         "airway_voxels_in_lung_percent": round(100.0 * np.count_nonzero(
                             airway & lungs) / max(1, airway.sum()), 2),
                         "sides_correct": bool(centre[1] < centre[2]),
                         "soft_tissue_in_mask_ml": round(float(np.count_nonzero(
                             lungs & (truth == 0) & (case.ct.array > -300)) * ml), 1),
                         "lesion_ml": round(float(lesion.sum() * ml), 1),
                         "lesion_missed_ml": round(float(np.count_nonzero(lesion & ~lungs) * ml), 1),
                         "recovered_ml": res.details["recovered_dense_lung_ml"]})
            r = rows[-1]
            print(f"  phantom {preset:13s} seed {seed}: Dice right {r['dice_right']:.4f} left {r['dice_left']:.4f} "
                  f"airways {r['dice_airways']:.3f}  airway voxels in lung {r['airway_voxels_in_lung_percent']}%  "
                  f"sides ok {r['sides_correct']}  soft tissue in mask {r['soft_tissue_in_mask_ml']} ml  lesion "
                  f"missed {r['lesion_missed_ml']} of {r['lesion_ml']} ml", flush=True)
            if map_missed and lesion.any():
                r["missed_lesion_regions"] = missed_lesion_regions(case.ct, truth, lesion, lab)
                for m in r["missed_lesion_regions"]:
                    print(f"      missed {m['lung']:5s} {m['region']:14s} {m['ml']:6.1f} ml  HU {m['hu_median']:5d}  "
                          f"from mask {m['distance_mm_median']}/{m['distance_mm_max']} mm (median/max)  "
                          f"slices {m['slices'][0]}-{m['slices'][1]}")
        _summary(preset, rows[-seeds:])
    return rows


def _summary(preset: str, rows: list) -> None:
    target = 0.98 if preset == "healthy" else 0.97
    soft = np.array([r["soft_tissue_in_mask_ml"] for r in rows])
    missed = np.array([r["lesion_missed_ml"] for r in rows])
    print(f"  {preset}: soft tissue in mask {soft.min():.1f}-{soft.max():.1f} ml (mean {soft.mean():.1f}), lesion "
          f"missed {missed.min():.0f}-{missed.max():.0f} ml")
    for side in ("right", "left"):
        values = np.array([r[f"dice_{side}"] for r in rows])
        print(f"  {preset} {side}: Dice {values.min():.4f}-{values.max():.4f}, mean {values.mean():.4f}, "
              f"{int((values >= target).sum())}/{values.size} seeds >= {target}")


def cip_accuracy() -> dict:
    folder = DATA / "ct" / "cip-crop-2slices"
    image = read_image(folder / "ct.nrrd", check="volume")
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "left_right_cip.nrrd"))) % 256
    lab = segment_lungs(image, method="classic").labels.array
    out = {"dice_right": dice(reference == 13, lab == RIGHT_LUNG), "dice_left": dice(reference == 10, lab == LEFT_LUNG)}
    print(f"  CIP 2-slice crop: Dice right {out['dice_right']:.4f} left {out['dice_left']:.4f}")
    return out


def abdomen_accuracy() -> dict:
    folder = DATA / "ct" / "abdomen-lung-bases"
    image = read_image(folder / "ct.nii.gz")
    lab = segment_lungs(image, method="classic").labels.array

    def mask(*names):
        return np.any([sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"{n}.nii.gz"))) > 0.5 for n in names], axis=0)

    right = mask("lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right")
    left = mask("lung_upper_lobe_left", "lung_lower_lobe_left")
    out = {"dice_right": dice(right, lab == RIGHT_LUNG), "dice_left": dice(left, lab == LEFT_LUNG),
           "reference_ml": [round(float(right.sum() * image.voxel_volume_ml), 1),
                            round(float(left.sum() * image.voxel_volume_ml), 1)]}
    print(f"  abdomen lung bases vs TotalSegmentator: Dice right {out['dice_right']:.4f} left {out['dice_left']:.4f}")
    return out


def overlays(image: Image, labels: np.ndarray, out: Path) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    nz = image.shape[0]
    written = []
    for name, view in (("axial", [int(nz * f) for f in (0.85, 0.65, 0.45, 0.25, 0.12)]), ("coronal", None)):
        fig, axes = plt.subplots(1, 5 if view else 1, figsize=(25 if view else 8, 5 if view else 6))
        axes = np.atleast_1d(axes)
        planes = [(image.array[k], labels[k]) for k in view] if view else [
            (image.array[:, image.shape[1] // 2][::-1], labels[:, image.shape[1] // 2][::-1])]
        for ax, (ct, lab) in zip(axes, planes):
            ax.imshow(ct, cmap="gray", vmin=-1000, vmax=300, aspect="auto" if not view else None)
            for value, colour in ((RIGHT_LUNG, "lime"), (LEFT_LUNG, "deepskyblue"), (AIRWAYS, "red")):
                if (lab == value).any():
                    ax.contour(lab == value, levels=[0.5], colors=colour, linewidths=0.8)
            ax.axis("off")
        path = out / f"chest141_{name}.png"
        fig.savefig(path, dpi=70, bbox_inches="tight")
        plt.close(fig)
        written.append(str(path))
    return written


def chest_plausibility(out: Path) -> dict:
    image = read_image(DATA / "ct" / "chest-ct-141" / "ct.nii.gz")
    res = segment_lungs(image, method="classic")
    f = res.figures
    result = {"right_ml": f["right_lung"]["volume_ml"], "left_ml": f["left_lung"]["volume_ml"],
              "right_left_ratio": f["right_left_ratio"], "airways_ml": f["airways_volume_ml"],
              "mean_hu": f["total"]["mean_hu"], "phase": f["breathing_phase"], "details": res.details,
              "overlays": overlays(image, res.labels.array, out)}
    print(f"  chest CT 141: right {result['right_ml']:.0f} ml, left {result['left_ml']:.0f} ml, ratio "
          f"{result['right_left_ratio']}, airways {result['airways_ml']:.0f} ml, "
          f"{f['breathing_phase']['phase']} ({f['breathing_phase']['confidence']}); overlays in {out}")
    return result


def speed(slices: int = 300) -> dict:
    source = sitk.ReadImage(str(DATA / "ct" / "chest-ct-141" / "ct.nii.gz"))
    size = list(source.GetSize())
    spacing = list(source.GetSpacing())
    spacing[2] = spacing[2] * (size[2] - 1) / (slices - 1)
    big = sitk.Resample(source, size[:2] + [slices], sitk.Transform(), sitk.sitkLinear, source.GetOrigin(), spacing,
                        source.GetDirection(), -1024, sitk.sitkInt16)
    image = Image.from_sitk(big)
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    res = segment_lungs(image, method="classic")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    tracemalloc.start()
    segment_lungs(image, method="classic")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out = {"size_ijk": image.size, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
           "peak_traced_gb": round(peak / 1e9, 2),
           "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
           "input_gb": round(image.array.nbytes / 1e9, 2), "load_average_before": round(load, 2),
           "total_ml": res.figures["total"]["volume_ml"]}
    print(f"  speed {'x'.join(map(str, image.size))}: {out['wall_s']} s wall, {out['cpu_s']} s CPU (2 threads, load "
          f"average {out['load_average_before']} before), peak traced {out['peak_traced_gb']} GB, peak RSS "
          f"{out['peak_rss_gb']} GB (input {out['input_gb']} GB)")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("lungs-bench-out"), help="folder for overlays and JSON")
    parser.add_argument("--seeds", type=int, default=10, help="phantom seeds per preset (first .. first+N-1)")
    parser.add_argument("--first-seed", type=int, default=0, help="first phantom seed (held-out seeds: 20)")
    parser.add_argument("--phantom-size", default="128,128,64")
    parser.add_argument("--phantom-spacing", default="2.5,2.5,5.0")
    parser.add_argument("--presets", nargs="*", default=["healthy", "covid-severe"],
                        help="phantom presets (e.g. add bacterial: lobar consolidation)")
    parser.add_argument("--map-missed", action="store_true",
                        help="print where the lesion voxels outside the mask lie (region, HU, distance, slices)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["phantom", "real", "speed"])
    args = parser.parse_args(argv)
    results = {}
    if "phantom" not in args.skip:
        print("phantom accuracy (targets: healthy >= 0.98, severe COVID >= 0.97 per lung)")
        results["phantom"] = phantom_accuracy(args.seeds, tuple(int(v) for v in args.phantom_size.split(",")),
                                              tuple(float(v) for v in args.phantom_spacing.split(",")),
                                              args.presets, args.first_seed, args.map_missed)
    if "real" not in args.skip:
        print("real data (target: CIP Dice >= 0.97 per lung)")
        results["cip"] = cip_accuracy()
        results["abdomen"] = abdomen_accuracy()
        results["chest141"] = chest_plausibility(args.out)
    if "speed" not in args.skip:
        print("speed and memory (target: < 5 s and < 3 GB)")
        results["speed"] = speed()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_lungs.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {args.out / 'bench_lungs.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
