"""The working volume of the embolus detector: the CT in canonical [S, P, L] layout with its lung mask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from scipy import ndimage

from lungai.image import Image
from lungai.labels import LEFT_LUNG, RIGHT_LUNG
from lungai.lung.orientation import Reorientation
from lungai.progress import Progress, ensure

SMOOTH_MM = 0.5  # Gaussian sigma that tames quantum noise before thresholds (well below a subsegmental artery)


@dataclass
class WorkVolume:
    """Canonical arrays (axis 0 inferior->superior, 1 anterior->posterior, 2 right->left) and their mapping."""

    hu: np.ndarray          # smoothed HU, float32
    raw: np.ndarray         # HU as read (canonical view)
    lungs: np.ndarray       # 0 outside, 1 right lung, 2 left lung (airways removed)
    spacing: Tuple[float, float, float]
    reorientation: Reorientation
    image: Image

    @property
    def voxel_mm3(self) -> float:
        return float(np.prod(self.spacing))

    def to_image(self, canonical: np.ndarray) -> Image:
        """A label map in canonical layout as an image on the input grid."""
        return self.image.like(self.reorientation.from_canonical(canonical))

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


def build_work_volume(image: Image, lung_labels: Optional[Image] = None,
                      progress: Optional[Progress] = None) -> WorkVolume:
    """Reorient, smooth and segment the lungs (``lungai.lung`` classic method unless labels are given)."""
    progress = ensure(progress)
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
    return WorkVolume(hu=hu, raw=raw, lungs=lungs, spacing=ro.spacing, reorientation=ro, image=image)
