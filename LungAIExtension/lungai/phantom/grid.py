"""Voxel grids in patient millimetres, fast separable resampling and tube (capsule) rasterisation.

Anatomy is described by smooth "fields": float32 arrays in millimetres, negative inside a structure and about
the signed distance near its surface. Slowly varying fields are computed on a coarse grid aligned with the fine
one and upsampled trilinearly slab by slab; thin structures (vessels, airways) are drawn directly on the fine
grid as capsules inside their bounding boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

Box = Tuple[slice, slice, slice]


@dataclass(frozen=True)
class Grid:
    """Axis-aligned grid: ``shape`` in array order (k, j, i); ``spacing``/``origin`` in (x, y, z) mm (LPS)."""

    shape: Tuple[int, int, int]
    spacing: Tuple[float, float, float]
    origin: Tuple[float, float, float]

    def axis_coords(self, axis: int) -> np.ndarray:
        """Millimetre coordinates of the voxel centres along array axis ``axis`` (0 = z, 1 = y, 2 = x)."""
        xyz = 2 - axis
        return (self.origin[xyz] + self.spacing[xyz] * np.arange(self.shape[axis])).astype(np.float32)

    def mesh(self, box: Optional[Box] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable (z, y, x) coordinate arrays of shapes (n,1,1), (1,n,1), (1,1,n) for ``box``."""
        box = box or (slice(None),) * 3
        z = self.axis_coords(0)[box[0]][:, None, None]
        y = self.axis_coords(1)[box[1]][None, :, None]
        x = self.axis_coords(2)[box[2]][None, None, :]
        return z, y, x

    def box_around(self, lo_mm: Sequence[float], hi_mm: Sequence[float]) -> Optional[Box]:
        """Index box (k, j, i slices) covering the LPS box [lo, hi] (x, y, z); None when it misses the grid."""
        out = []
        for xyz in (2, 1, 0):
            axis = 2 - xyz
            a = int(np.floor((lo_mm[xyz] - self.origin[xyz]) / self.spacing[xyz]))
            b = int(np.ceil((hi_mm[xyz] - self.origin[xyz]) / self.spacing[xyz])) + 1
            a, b = max(a, 0), min(b, self.shape[axis])
            if a >= b:
                return None
            out.append(slice(a, b))
        return tuple(out)

    @property
    def voxel_mm(self) -> float:
        """Typical in-plane voxel size (used as the width of soft edges)."""
        return float(np.sqrt(self.spacing[0] * self.spacing[1]))

    def coarse(self, step_mm: float) -> Tuple["Grid", Tuple[int, int, int]]:
        """A grid over the same extent whose voxels fall on every ``q``-th voxel of this one.

        Returns the coarse grid and the integer factors ``q`` per array axis (k, j, i), chosen so that the step
        is about ``step_mm`` (never finer than this grid). The alignment makes upsampling an exact, cheap
        trilinear zoom (:func:`upsample_box`).
        """
        factors, shape, spacing = [], [], []
        for axis in range(3):
            xyz = 2 - axis
            q = max(1, int(round(step_mm / self.spacing[xyz])))
            factors.append(q)
            shape.append(int(np.ceil((self.shape[axis] - 1) / q)) + 1)
        for xyz in range(3):
            spacing.append(self.spacing[xyz] * factors[2 - xyz])
        return Grid(tuple(shape), tuple(spacing), self.origin), tuple(factors)


def _resample_axis(arr: np.ndarray, axis: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    pos = (dst - src[0]) / (src[1] - src[0]) if len(src) > 1 else np.zeros_like(dst)
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, max(len(src) - 2, 0))
    w = np.clip(pos - i0, 0.0, 1.0).astype(np.float32)
    i1 = np.minimum(i0 + 1, len(src) - 1)
    shape = [1, 1, 1]
    shape[axis] = -1
    w = w.reshape(shape)
    a = np.take(arr, i0, axis=axis)
    b = np.take(arr, i1, axis=axis)
    a += (b - a) * w
    return a


def upsample_box(coarse: np.ndarray, factors: Sequence[int], box: Box) -> np.ndarray:
    """Trilinear upsampling of an aligned coarse field (see :meth:`Grid.coarse`) on the fine index ``box``."""
    lo = [b.start // q for b, q in zip(box, factors)]
    hi = [min(-(-(b.stop - 1) // q), n - 1) for b, q, n in zip(box, factors, coarse.shape)]
    hi = [max(h, l) for h, l in zip(hi, lo)]
    block = coarse[lo[0]: hi[0] + 1, lo[1]: hi[1] + 1, lo[2]: hi[2] + 1]
    size = [(h - l) * q + 1 for l, h, q in zip(lo, hi, factors)]
    if all(q == 1 for q in factors):
        out = block
    elif int(np.prod(size)) < 2_000_000:  # small: numpy (torch threads only pay off on large outputs)
        out = block
        for axis, q in enumerate(factors):
            src = np.arange(block.shape[axis], dtype=np.float32)
            out = _resample_axis(out, axis, src, np.arange(size[axis], dtype=np.float32) / q)
    else:
        import torch
        import torch.nn.functional as F

        t = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))[None, None]
        out = F.interpolate(t, size=size, mode="trilinear", align_corners=True)[0, 0].numpy()
    crop = tuple(slice(b.start - l * q, b.stop - l * q) for b, l, q in zip(box, lo, factors))
    return np.ascontiguousarray(out[crop])


def smooth_noise(shape: Sequence[int], sigma_vox: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation (float32)."""
    field = ndimage.gaussian_filter(rng.standard_normal(tuple(shape)).astype(np.float32), sigma_vox, mode="wrap")
    field /= max(float(field.std()), 1e-6)
    return field


def occupancy(field: np.ndarray, width_mm: float) -> np.ndarray:
    """Partial-volume fraction 0..1 of a structure from its signed field (soft edge ``width_mm`` wide)."""
    return np.clip(0.5 - field / np.float32(width_mm), 0.0, 1.0).astype(np.float32, copy=False)


@dataclass
class Capsule:
    """A tube segment from ``p0`` to ``p1`` (LPS mm) whose radius goes linearly from ``r0`` to ``r1``."""

    p0: np.ndarray
    p1: np.ndarray
    r0: float
    r1: float

    def bounds(self, margin: float) -> Tuple[np.ndarray, np.ndarray]:
        r = max(self.r0, self.r1) + margin
        return np.minimum(self.p0, self.p1) - r, np.maximum(self.p0, self.p1) + r

    def field(self, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Signed distance-like field (mm, negative inside) on broadcastable coordinate arrays."""
        d = (self.p1 - self.p0).astype(np.float32)
        length2 = float(d @ d) or 1e-6
        px, py, pz = x - self.p0[0], y - self.p0[1], z - self.p0[2]
        t = np.clip((px * d[0] + py * d[1] + pz * d[2]) / length2, 0.0, 1.0)
        qx, qy, qz = px - t * d[0], py - t * d[1], pz - t * d[2]
        return np.sqrt(qx * qx + qy * qy + qz * qz) - (self.r0 + t * (self.r1 - self.r0))


def draw_capsules(target: np.ndarray, grid: Grid, capsules: Iterable[Capsule], margin: float) -> None:
    """Write ``min(target, capsule field)`` for every capsule within its bounding box (+ ``margin`` mm)."""
    for cap in capsules:
        lo, hi = cap.bounds(margin)
        box = grid.box_around(lo, hi)
        if box is None:
            continue
        z, y, x = grid.mesh(box)
        view = target[box]
        np.minimum(view, cap.field(z, y, x), out=view)
