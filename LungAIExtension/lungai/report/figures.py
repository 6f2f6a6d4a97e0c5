"""Report figures: CT slices with label overlays shown the way radiologists read them, and line plots.

Axial slices are shown from the feet (patient's right on the image left, anterior up); coronal slices from the
front (patient's right on the image left, superior up), whatever the orientation of the array.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from lungai.image import Image  # noqa: E402
from lungai.report.document import png_bytes  # noqa: E402

LUNG_WINDOW = (-1350.0, 150.0)
Color = Tuple[float, float, float]


def plane_axis(image: Image, plane: str) -> int:
    """Array axis across which a ``plane`` ("axial", "coronal", "sagittal") slice is taken."""
    lps = {"sagittal": 0, "coronal": 1, "axial": 2}[plane]
    return image.array_axis_of(lps)


def oriented_slice(array: np.ndarray, image: Image, plane: str, index: int) -> Tuple[np.ndarray, float]:
    """The 2D slice of ``array`` (on ``image``'s grid) in display orientation, and its row/column pixel aspect."""
    axis = plane_axis(image, plane)
    rows_lps, cols_lps = {"axial": (1, 0), "coronal": (2, 0), "sagittal": (2, 1)}[plane]
    row_axis, col_axis = image.array_axis_of(rows_lps), image.array_axis_of(cols_lps)
    picture = np.moveaxis(np.take(array, index, axis=axis), [row_axis - (row_axis > axis), col_axis - (col_axis > axis)],
                          [0, 1])
    # rows: anterior (axial) or superior (coronal/sagittal) at the top
    if (plane == "axial" and image.array_axis_sign(1) < 0) or (plane != "axial" and image.array_axis_sign(2) > 0):
        picture = picture[::-1]
    # columns: patient right on the left (index towards +L), anterior on the left for sagittal
    if (plane != "sagittal" and image.array_axis_sign(0) < 0) or (plane == "sagittal" and image.array_axis_sign(1) < 0):
        picture = picture[:, ::-1]
    spacing_kji = tuple(reversed(image.spacing))
    return picture, spacing_kji[row_axis] / spacing_kji[col_axis]


def best_slices(mask: np.ndarray, image: Image, plane: str, count: int = 1) -> List[int]:
    """Indices of the ``count`` slices with the most ``mask`` voxels (the middle slice when the mask is empty)."""
    axis = plane_axis(image, plane)
    area = np.count_nonzero(mask, axis=tuple(a for a in range(mask.ndim) if a != axis))
    if not area.any():
        return [mask.shape[axis] // 2]
    order = [int(i) for i in np.argsort(-area, kind="stable") if area[i] > 0]
    chosen: List[int] = []
    spread = max(1, mask.shape[axis] // 20)
    for index in order:
        if all(abs(index - c) >= spread for c in chosen):
            chosen.append(index)
        if len(chosen) == count:
            break
    return sorted(chosen)


def overlay_png(image: Image, labels: Optional[np.ndarray], colors: Dict[int, Color], names: Dict[int, str],
                plane: str, index: int, title: str = "", window: Tuple[float, float] = LUNG_WINDOW,
                outline: Optional[np.ndarray] = None, width_in: float = 5.0) -> bytes:
    """PNG of one CT slice with filled, semi-transparent label colours and an optional outline mask."""
    ct, aspect = oriented_slice(image.array, image, plane, index)
    fig, ax = plt.subplots(figsize=(width_in, width_in * ct.shape[0] * aspect / ct.shape[1] + 0.4), dpi=100)
    ax.imshow(ct, cmap="gray", vmin=window[0], vmax=window[1], aspect=aspect, interpolation="bilinear")
    if outline is not None:
        edge, _ = oriented_slice(outline.astype(np.uint8), image, plane, index)
        if edge.any():
            ax.contour(edge, levels=[0.5], colors=["#4fc3f7"], linewidths=0.6)
    handles = []
    if labels is not None:
        lab, _ = oriented_slice(labels, image, plane, index)
        rgba = np.zeros(lab.shape + (4,))
        for value, color in colors.items():
            hit = lab == value
            if hit.any():
                rgba[hit] = (*color, 0.5)
            handles.append(Patch(color=color, label=names.get(value, str(value))))
        ax.imshow(rgba, aspect=aspect, interpolation="nearest")
    if handles:
        ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.7)
    ax.set_title(title, fontsize=9)
    ax.text(0.01, 0.5, "R", color="yellow", transform=ax.transAxes, fontsize=9, va="center")
    ax.text(0.98, 0.5, "L", color="yellow", transform=ax.transAxes, fontsize=9, va="center", ha="right")
    ax.axis("off")
    return png_bytes(fig)


def lines_png(x: np.ndarray, series: Dict[str, np.ndarray], xlabel: str, ylabel: str, title: str = "",
              colors: Optional[Sequence[str]] = None, vlines: Sequence[Tuple[float, str]] = ()) -> bytes:
    """PNG of a few curves over a shared x axis (histograms, profiles)."""
    fig, ax = plt.subplots(figsize=(7.0, 3.6), dpi=100)
    for n, (name, values) in enumerate(series.items()):
        ax.plot(x, values, label=name, color=None if colors is None else colors[n % len(colors)], linewidth=1.4)
    for position, label in vlines:
        ax.axvline(position, color="#888", linestyle="--", linewidth=0.8)
        ax.text(position, ax.get_ylim()[1] * 0.95, f" {label}", fontsize=7, color="#555", va="top")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return png_bytes(fig)
