"""Canonical patient orientation for the lung pipeline: arrays indexed [S, P, L] whatever the input layout.

Any input (flipped, permuted or tilted axes) is viewed as an array whose axis 0 runs inferior->superior, axis 1
anterior->posterior and axis 2 right->left (the LPS directions), by transposing and flipping only: no
resampling, so the mapping back to the input grid is exact. Oblique directions are matched to the nearest axes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from lungai.image import Image

# canonical array axis n holds LPS axis CANONICAL_LPS[n] (array order z, y, x)
CANONICAL_LPS = (2, 1, 0)


@dataclass(frozen=True)
class Reorientation:
    """Transpose + flips taking an input array ([k, j, i]) to the canonical [S, P, L] layout and back."""

    axes: Tuple[int, int, int]      # input array axis feeding canonical axis n
    flips: Tuple[bool, bool, bool]  # canonical axis n reversed after transposing
    spacing: Tuple[float, float, float]  # mm along canonical axes (z, y, x)

    @classmethod
    def of(cls, image: Image) -> "Reorientation":
        """The reorientation of a 3D image, choosing the axis assignment closest to its direction matrix."""
        if image.ndim != 3:
            raise ValueError("canonical orientation needs a 3D image")
        d = np.abs(image.direction)  # rows LPS axes, columns ITK axes (i, j, k)
        best = max(itertools.permutations(range(3)), key=lambda p: sum(d[lps, p[lps]] for lps in range(3)))
        axes, flips, spacing = [], [], []
        for lps in CANONICAL_LPS:
            itk_axis = best[lps]
            axes.append(2 - itk_axis)  # ITK axis (i, j, k) -> array axis (k, j, i)
            flips.append(bool(image.direction[lps, itk_axis] < 0))
            spacing.append(float(image.spacing[itk_axis]))
        return cls(tuple(axes), tuple(flips), tuple(spacing))

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        """A (possibly non-contiguous) view of ``array`` in canonical layout."""
        out = np.transpose(array, self.axes)
        for axis, flip in enumerate(self.flips):
            if flip:
                out = np.flip(out, axis)
        return out

    def from_canonical(self, array: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_canonical`; returns a contiguous array in the input layout."""
        out = array
        for axis, flip in enumerate(self.flips):
            if flip:
                out = np.flip(out, axis)
        return np.ascontiguousarray(np.transpose(out, np.argsort(self.axes)))
