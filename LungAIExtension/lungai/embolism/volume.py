"""The working volume of the embolus detector: the CT in canonical [S, P, L] layout with its lung mask.

Scans finer than 1.6 mm in-plane or 2.0 mm between slices are resampled to that grid first: the scorer was
trained there, and it keeps a 512 x 512 x 300 CTPA within a minute on two cores. Label maps go back to the
input grid by nearest neighbour.
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
WORK_IN_PLANE_MM, WORK_SLICE_MM = 1.6, 2.0  # finer scans are resampled to the grid the scorer was trained on


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


def _resample(image: Image, reference: Image, label: bool) -> Image:
    out = sitk.Resample(image.to_sitk(), reference.to_sitk(), sitk.Transform(),
                        sitk.sitkNearestNeighbor if label else sitk.sitkLinear, 0 if label else -1024.0)
    return Image.from_sitk(out, dict(image.metadata))


def working_grid(image: Image) -> Image:
    """The image itself, or resampled (linear) to ``WORK_IN_PLANE_MM`` / ``WORK_SLICE_MM`` when finer."""
    slice_axis = 2 - image.array_axis_of(2)  # ITK axis along the patient's long axis
    target = [WORK_SLICE_MM if n == slice_axis else WORK_IN_PLANE_MM for n in range(3)]
    if all(s >= t / 1.15 for s, t in zip(image.spacing, target)):
        return image
    spacing = [max(s, t) for s, t in zip(image.spacing, target)]
    size = [max(1, int(round(n * s / sp))) for n, s, sp in zip(image.size, image.spacing, spacing)]
    grid = Image(np.zeros(size[::-1], dtype=np.uint8), spacing, image.origin, image.direction)
    array = np.asarray(image.array, dtype=np.float32)
    return _resample(image.like(array, **image.metadata), grid, label=False)


def build_work_volume(image: Image, lung_labels: Optional[Image] = None,
                      progress: Optional[Progress] = None) -> WorkVolume:
    """Reorient, smooth and segment the lungs (``lungai.lung`` classic method unless labels are given)."""
    progress = ensure(progress)
    source = image
    image = working_grid(source)
    if lung_labels is not None and image is not source:
        lung_labels = _resample(lung_labels, image, label=True)
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
