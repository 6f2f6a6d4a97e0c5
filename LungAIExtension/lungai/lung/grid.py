"""The working grid: block-averaged copy of the canonical CT at about 2 mm, and exact mapping back.

Blocks of whole input voxels are averaged (integer factors per axis), which removes noise and aliasing and makes
each working voxel the union of known input voxels. Labels go back by block replication, then the lung border is
redrawn at input resolution from the input HU values (see :func:`upsample_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np
from scipy import ndimage

from lungai.arrays import bounding_box
from lungai.labels import AIRWAYS


@dataclass(frozen=True)
class WorkGrid:
    """Integer block factors between the canonical input array and the working array."""

    factors: Tuple[int, int, int]
    fine_shape: Tuple[int, int, int]
    fine_spacing: Tuple[float, float, float]

    @classmethod
    def choose(cls, shape: Tuple[int, ...], spacing: Tuple[float, ...], target_mm: float,
               planar: bool = False) -> "WorkGrid":
        """Factors bringing each axis near ``target_mm`` (never along z for a planar, thin-slab input)."""
        factors = [max(1, int(round(target_mm / s))) for s in spacing]
        factors = [min(f, max(1, n // 8)) for f, n in zip(factors, shape)]
        if planar:
            factors[0] = 1
        return cls(tuple(factors), tuple(int(n) for n in shape), tuple(float(s) for s in spacing))

    @property
    def coarse_shape(self) -> Tuple[int, int, int]:
        return tuple(n // f for n, f in zip(self.fine_shape, self.factors))

    @property
    def coarse_spacing(self) -> Tuple[float, float, float]:
        return tuple(s * f for s, f in zip(self.fine_spacing, self.factors))

    def shrink(self, fine: np.ndarray) -> np.ndarray:
        """Block mean of ``fine`` (canonical layout) as float32; remainder voxels at the far ends are dropped."""
        (nz, ny, nx), (fz, fy, fx) = self.coarse_shape, self.factors
        crop = fine[: nz * fz, : ny * fy, : nx * fx]
        if self.factors == (1, 1, 1):
            return np.ascontiguousarray(crop, dtype=np.float32)
        out = np.zeros((nz, ny, nx), dtype=np.float32)
        for a in range(fz):  # summing strided views keeps memory at one working-size buffer
            for b in range(fy):
                for c in range(fx):
                    out += crop[a::fz, b::fy, c::fx]
        out /= float(fz * fy * fx)
        return out

    def expand(self, coarse: np.ndarray) -> np.ndarray:
        """Block replication of a working-grid array onto the full canonical grid (edges repeated)."""
        fz, fy, fx = self.factors
        nz, ny, nx = coarse.shape
        out = np.empty(self.fine_shape, dtype=coarse.dtype)
        for a in range(fz):  # strided writes: one pass over the output, no temporary copies
            for b in range(fy):
                for c in range(fx):
                    out[a: nz * fz: fz, b: ny * fy: fy, c: nx * fx: fx] = coarse
        if self.fine_shape[0] > nz * fz:
            out[nz * fz:] = out[nz * fz - 1]
        if self.fine_shape[1] > ny * fy:
            out[:, ny * fy:] = out[:, ny * fy - 1: ny * fy]
        if self.fine_shape[2] > nx * fx:
            out[:, :, nx * fx:] = out[:, :, nx * fx - 1: nx * fx]
        return out


def upsample_labels(grid: WorkGrid, coarse_labels: np.ndarray, coarse_hu: np.ndarray, fine_hu: np.ndarray,
                    air_hu: float) -> np.ndarray:
    """Label map on the full canonical grid with the aerated lung border redrawn from the full-resolution HU.

    Only working voxels on the lung/background border are revisited, and only where the border is aerated
    lung against tissue: there a full-resolution voxel is lung when its HU is below ``air_hu``. Borders through
    dense lung (recovered consolidation, effusion, vessels) keep the working-grid outline, since intensity says
    nothing there. Airway voxels are never changed.
    """
    fine = grid.expand(coarse_labels)
    if grid.factors == (1, 1, 1) or not coarse_labels.any():
        return fine
    box = bounding_box(coarse_labels > 0, margin=2)
    offset = [s.start for s in box]
    coarse_labels, coarse_hu = coarse_labels[box], coarse_hu[box]
    lung = (coarse_labels == 1) | (coarse_labels == 2)
    struct = ndimage.generate_binary_structure(3, 1)
    border = ndimage.binary_dilation(lung, struct) & ~ndimage.binary_erosion(lung, struct, border_value=1)
    dense_lung = lung & (coarse_hu >= air_hu)
    border &= ~ndimage.binary_dilation(dense_lung, struct)
    border &= coarse_labels != AIRWAYS
    border &= ~ndimage.binary_dilation(coarse_labels == AIRWAYS, struct)
    # side of each border voxel: its own lung label, else the neighbouring one
    side = np.where(lung, coarse_labels, ndimage.grey_dilation(np.where(lung, coarse_labels, 0), footprint=struct))
    idx = [i + o for i, o in zip(np.nonzero(border), offset)]
    if idx[0].size == 0:
        return fine
    fz, fy, fx = grid.factors
    oz, oy, ox = np.meshgrid(np.arange(fz), np.arange(fy), np.arange(fx), indexing="ij")
    zz = (idx[0][:, None] * fz + oz.ravel()[None, :]).ravel()
    yy = (idx[1][:, None] * fy + oy.ravel()[None, :]).ravel()
    xx = (idx[2][:, None] * fx + ox.ravel()[None, :]).ravel()
    values = np.repeat(side[border], fz * fy * fx)
    aerated = fine_hu[zz, yy, xx] < air_hu
    fine[zz, yy, xx] = np.where(aerated, values, 0).astype(fine.dtype)
    return fine
