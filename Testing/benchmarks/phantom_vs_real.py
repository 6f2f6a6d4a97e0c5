"""Side-by-side pictures of the phantom and real images at the same windows (realism check).

Writes ``Resources/Screenshots/phantom_vs_real_{axial,coronal,xray}.png``: the synthetic chest CT next to the real
``chest-ct-141`` scan (lung window -600/1500 and mediastinal window 40/400), and a synthetic radiograph next to a
real Kermany radiograph; and ``phantom_presets.png``, one slice of every CT preset with its truth. Usage::

    python Testing/benchmarks/phantom_vs_real.py [--data ../shared/data] [--out Resources/Screenshots] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lungai.io import read_image, read_xray  # noqa: E402
from lungai.phantom import PhantomConfig, make_phantom, make_xray  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WINDOWS = {"lung": (-600, 1500), "mediastinal": (40, 400)}


def _window(a: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.clip((a - (centre - width / 2)) / width, 0, 1)


def _axial(image, frac: float) -> np.ndarray:
    return image.array[int(frac * (image.shape[0] - 1))]


def _coronal(image, frac: float) -> np.ndarray:
    return image.array[::-1, int(frac * (image.shape[1] - 1)), :]


def _panel(ax, img, spacing, title):
    h, w = img.shape
    ax.imshow(img, cmap="gray", vmin=0, vmax=1, extent=(0, w * spacing[0], h * spacing[1], 0), interpolation="lanczos")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "Resources" / "Screenshots")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="healthy")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    real = read_image(args.data / "ct" / "chest-ct-141" / "ct.nii.gz", check="ct")
    rs = real.spacing
    cfg = PhantomConfig(seed=args.seed, size=(256, 256, 140), spacing=(1.5, 1.5, 2.0), preset=args.preset)
    case = make_phantom(cfg)
    ph = case.ct
    ps = ph.spacing
    # the phantom's planes at the real slices' anatomical levels: just below the carina, coronal through it
    carina = np.asarray(case.info["landmarks_lps"]["carina"])
    k, j = ph.lps_to_index(carina + np.array([0.0, 0.0, -15.0]))[2], ph.lps_to_index(carina)[1]
    for view, real_slice, ph_slice, rsp, psp in (
            ("axial", _axial(real, 0.55), _axial(ph, k / (ph.shape[0] - 1)), (rs[0], rs[1]), (ps[0], ps[1])),
            ("coronal", _coronal(real, 0.45), _coronal(ph, j / (ph.shape[1] - 1)), (rs[0], rs[2]), (ps[0], ps[2]))):
        fig, axes = plt.subplots(2, 2, figsize=(9, 9) if view == "axial" else (9, 8), dpi=80)
        for row, (wname, (c, w)) in enumerate(WINDOWS.items()):
            _panel(axes[row, 0], _window(ph_slice, c, w), psp, f"phantom ({args.preset}) {wname} {c}/{w}")
            _panel(axes[row, 1], _window(real_slice, c, w), rsp, f"real chest-ct-141 {wname} {c}/{w}")
        fig.tight_layout()
        path = args.out / f"phantom_vs_real_{view}.png"
        fig.savefig(path)
        plt.close(fig)
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    # radiographs
    labels = list(csv.DictReader(open(args.data / "cxr" / "kermany-224" / "labels.csv")))
    fig, axes = plt.subplots(2, 3, figsize=(11, 7.5), dpi=80)
    for col, (preset, subtype) in enumerate((("healthy", "normal"), ("bacterial", "bacteria"), ("viral", "virus"))):
        xr = make_xray(PhantomConfig(seed=args.seed, size=(224, 224, 4), spacing=(1.8, 1.8, 1.0), preset=preset))
        _panel(axes[0, col], xr.image.array, xr.image.spacing, f"phantom radiograph ({preset})")
        row = [r for r in labels if r["subtype"] == subtype][args.seed]
        path = args.data / "cxr" / "kermany-224" / row["file"]
        img = read_xray(path).array.astype(np.float32)
        img = (img - img.min()) / max(float(np.ptp(img)), 1e-6)
        _panel(axes[1, col], img, (1, 1), f"real Kermany ({subtype})")
    fig.tight_layout()
    path = args.out / "phantom_vs_real_xray.png"
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    gallery(args.out, args.seed)


def gallery(out: Path, seed: int) -> None:
    """One axial slice per CT preset with the truth outlined (lesions yellow, emboli red)."""
    fig, axes = plt.subplots(2, 4, figsize=(14, 7.4), dpi=70)
    presets = ["healthy", "covid-mild", "covid-moderate", "covid-severe", "bacterial", "pe", "nodules"]
    for ax, preset in zip(axes.ravel(), presets):
        cfg = PhantomConfig(seed=seed, size=(192, 192, 100), spacing=(2.0, 2.0, 2.8), preset=preset,
                            contrast="ctpa" if preset == "pe" else "none")
        case = make_phantom(cfg)
        marks = case.truth["emboli" if preset == "pe" else "lesions"].array > 0
        k = int(np.argmax(marks.sum(axis=(1, 2)))) if marks.any() else case.ct.shape[0] // 2
        window = (100, 700) if preset == "pe" else WINDOWS["lung"]
        ax.imshow(_window(case.ct.array[k], *window), cmap="gray", vmin=0, vmax=1)
        if marks[k].any():
            ax.contour(marks[k], levels=[0.5], colors="red" if preset == "pe" else "yellow", linewidths=0.6)
        ax.set_title(f"{preset} (window {window[0]}/{window[1]})", fontsize=9)
    for ax in axes.ravel():
        ax.axis("off")
    xr = make_xray(PhantomConfig(seed=seed, size=(224, 224, 4), spacing=(1.8, 1.8, 1.0), preset="bacterial"))
    axes[1, 3].imshow(xr.image.array, cmap="gray", vmin=0, vmax=1)
    axes[1, 3].contour(xr.truth["opacity"].array, levels=[0.5], colors="yellow", linewidths=0.6)
    axes[1, 3].set_title("radiograph, bacterial (opacity outlined)", fontsize=9)
    fig.tight_layout()
    path = out / "phantom_presets.png"
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
