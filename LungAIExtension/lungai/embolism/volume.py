"""The working volume of the embolus detector: the CT in canonical [S, P, L] layout with its lung mask.

Scans finer than the scorer's working grid (``COARSE_GRID``: 1.6 mm in-plane, 2.0 mm between slices, or
``FINE_GRID``: 1.0 mm, 1.25 mm, the thin-slice CTPA protocol) are resampled to it first: the scorer was trained
there, and it keeps a 512 x 512 x 300 CTPA within a minute on two cores. Label maps go back to the input grid by
nearest neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lungai.image import Image
from lungai.labels import LEFT_LUNG, RIGHT_LUNG
from lungai.lung.orientation import Reorientation
from lungai.progress import Progress, ensure

SMOOTH_MM = 0.5  # Gaussian sigma that tames quantum noise before thresholds (well below a subsegmental artery)
# working grids (in-plane mm, slice mm) the scorers were trained on; finer scans are resampled to them
COARSE_GRID: Tuple[float, float] = (1.6, 2.0)
FINE_GRID: Tuple[float, float] = (1.0, 1.25)
GRID_TOLERANCE = 1.15  # a scan up to this much finer than a grid is used as it is


@dataclass
class WorkVolume:
    """Canonical arrays (axis 0 inferior->superior, 1 anterior->posterior, 2 right->left) and their mapping."""

    hu: np.ndarray          # smoothed HU, float32
    raw: np.ndarray         # HU as read (canonical view)
    lungs: np.ndarray       # 0 outside, 1 right lung, 2 left lung (airways removed)
    spacing: Tuple[float, float, float]
    reorientation: Reorientation
    image: Image            # the working grid (the input, or the input resampled to the working spacing)
    input_image: Image

    @property
    def voxel_mm3(self) -> float:
        return float(np.prod(self.spacing))

    def to_image(self, canonical: np.ndarray) -> Image:
        """A label map in canonical layout as an image on the input grid."""
        work = self.reorientation.from_canonical(canonical)
        if self.image is self.input_image:
            return self.image.like(work)
        # same origin and direction, coarser spacing: nearest working voxel of every input voxel
        index = [np.minimum(np.round(np.arange(n) * s_in / s_work).astype(np.intp), m - 1)
                 for n, s_in, s_work, m in zip(self.input_image.shape, self.input_image.spacing[::-1],
                                               self.image.spacing[::-1], work.shape)]
        return self.input_image.like(work[np.ix_(*index)])

    def index_to_lps(self, canonical_index: np.ndarray) -> np.ndarray:
        """LPS points (N, 3) of canonical array indices (N, 3)."""
        ro = self.reorientation
        idx = np.asarray(canonical_index, dtype=float).reshape(-1, 3).copy()
        shape = np.asarray(ro.to_canonical(self.image.array).shape)
        for axis, flip in enumerate(ro.flips):
            if flip:
                idx[:, axis] = shape[axis] - 1 - idx[:, axis]
        array_index = np.empty_like(idx)
        array_index[:, list(ro.axes)] = idx  # input array axis ro.axes[n] holds canonical axis n
        ijk = array_index[:, ::-1]
        m = self.image.index_to_lps_matrix()
        return ijk @ m[:3, :3].T + m[:3, 3]


def resample_onto(image: Image, reference: Image, label: bool) -> Image:
    """``image`` resampled onto the grid of ``reference`` (nearest neighbour for labels, else linear)."""
    out = sitk.Resample(image.to_sitk(), reference.to_sitk(), sitk.Transform(),
                        sitk.sitkNearestNeighbor if label else sitk.sitkLinear, 0 if label else -1024.0)
    return Image.from_sitk(out, dict(image.metadata))


def grid_spacing(image: Image, grid: Tuple[float, float]) -> list:
    """``grid`` (in-plane mm, slice mm) as an ITK-order spacing for the axes of ``image``."""
    slice_axis = 2 - image.array_axis_of(2)  # ITK axis along the patient's long axis
    return [grid[1] if n == slice_axis else grid[0] for n in range(3)]


def fits_grid(image: Image, grid: Tuple[float, float]) -> bool:
    """Whether ``image`` is at most ``GRID_TOLERANCE`` times coarser than ``grid`` along every axis."""
    return all(s <= t * GRID_TOLERANCE for s, t in zip(image.spacing, grid_spacing(image, grid)))


def resample_spacing(image: Image, spacing) -> Image:
    """``image`` resampled (linear) to ``spacing`` (ITK order, mm) over the same field of view."""
    size = [max(1, int(round(n * s / sp))) for n, s, sp in zip(image.size, image.spacing, spacing)]
    reference = Image(np.zeros(size[::-1], dtype=np.uint8), tuple(spacing), image.origin, image.direction)
    array = np.asarray(image.array, dtype=np.float32)
    return resample_onto(image.like(array, **image.metadata), reference, label=False)


def working_grid(image: Image, grid: Tuple[float, float] = COARSE_GRID) -> Image:
    """The image itself, or resampled (linear) to ``grid`` (in-plane mm, slice mm) when finer."""
    target = grid_spacing(image, grid)
    if all(s >= t / GRID_TOLERANCE for s, t in zip(image.spacing, target)):
        return image
    return resample_spacing(image, [max(s, t) for s, t in zip(image.spacing, target)])


def build_work_volume(image: Image, lung_labels: Optional[Image] = None, progress: Optional[Progress] = None,
                      grid: Tuple[float, float] = COARSE_GRID) -> WorkVolume:
    """Reorient, smooth and segment the lungs (``lungai.lung`` classic method unless labels are given) on the
    working ``grid`` (in-plane mm, slice mm)."""
    progress = ensure(progress)
    source = image
    image = working_grid(source, grid)
    if lung_labels is not None and image is not source:
        lung_labels = resample_onto(lung_labels, image, label=True)
    ro = Reorientation.of(image)
    raw = ro.to_canonical(image.array)
    sigma = [SMOOTH_MM / s for s in ro.spacing]
    hu = ndimage.gaussian_filter(np.asarray(raw, dtype=np.float32), sigma, truncate=2.5)
    progress.update(0.1, "lungs")
    if lung_labels is None:
        from lungai.lung import segment_lungs

        lung_labels = segment_lungs(image, method="classic", progress=progress.span(0.1, 0.95)).labels
    labels = ro.to_canonical(np.asarray(lung_labels.array))
    lungs = np.zeros(labels.shape, dtype=np.uint8)
    lungs[labels == RIGHT_LUNG] = 1
    lungs[labels == LEFT_LUNG] = 2
    progress.update(1.0, "lungs done")
    return WorkVolume(hu=hu, raw=raw, lungs=lungs, spacing=ro.spacing, reorientation=ro, image=image,
                      input_image=source)
