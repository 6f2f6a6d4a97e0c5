"""Small spacing-aware morphology helpers shared by the lung pipeline (3D or slice-by-slice)."""

from __future__ import annotations

from typing import Sequence, Tuple

import cc3d
import numpy as np
from scipy import ndimage

PLANAR = np.zeros((3, 3, 3), dtype=bool)
PLANAR[1] = ndimage.generate_binary_structure(2, 1)
FACES = ndimage.generate_binary_structure(3, 1)


def label(mask: np.ndarray, planar: bool = False) -> Tuple[np.ndarray, int]:
    """Connected components (6-connected in 3D, or 4-connected within each axial slice)."""
    if planar:
        labels, n = ndimage.label(mask, PLANAR)
        return labels, int(n)
    labels, n = cc3d.connected_components(mask.astype(np.uint8, copy=False), connectivity=6, return_N=True)
    return labels, int(n)


def ball(radius_mm: float, spacing: Sequence[float], planar: bool = False) -> np.ndarray:
    """Ellipsoidal structuring element of a physical radius on an anisotropic grid."""
    r = [max(0, int(np.floor(radius_mm / s))) for s in spacing]
    if planar:
        r[0] = 0
    grids = np.ogrid[tuple(slice(-n, n + 1) for n in r)]
    dist = sum((g * s / radius_mm) ** 2 for g, s in zip(grids, spacing))
    return dist <= 1.0


def fill_holes_slices(mask: np.ndarray) -> np.ndarray:
    """Fill holes in every axial slice: background not 4-connected to the slice's edges within the slice
    (one labelling of the whole stack instead of an iterated dilation)."""
    background, n = ndimage.label(~mask, PLANAR)
    if n == 0:
        return mask.copy()
    outside = np.zeros(n + 1, dtype=bool)
    for edge in (background[:, 0, :], background[:, -1, :], background[:, :, 0], background[:, :, -1]):
        outside[edge] = True
    outside[0] = True
    return ~outside[background] | mask


def pieces_holding(pieces: np.ndarray, n: int, reference: np.ndarray) -> np.ndarray:
    """Where a labelled piece (of ``n``, from any labelling) holds at least one voxel of ``reference``."""
    hit = np.zeros(n + 1, dtype=bool)
    hit[pieces[reference]] = True
    hit[0] = False
    return hit[pieces]


def large_pieces(mask: np.ndarray, pixel_mm2: float, min_mm2: float) -> np.ndarray:
    """The pieces (8-connected) of a slice mask whose area is at least ``min_mm2``."""
    pieces, n = ndimage.label(mask, np.ones((3, 3), dtype=bool))
    big = np.bincount(pieces.ravel(), minlength=n + 1) * pixel_mm2 >= min_mm2
    big[0] = False
    return big[pieces]


def or_shifted(target: np.ndarray, mask: np.ndarray, step: np.ndarray) -> None:
    """``target[p] |= mask[p + step]`` wherever ``p + step`` lies inside the array."""
    if any(abs(s) >= n for s, n in zip(step, mask.shape)):
        return
    src = tuple(slice(max(0, s), n + min(0, s)) for s, n in zip(step, mask.shape))
    dst = tuple(slice(max(0, -s), n + min(0, -s)) for s, n in zip(step, mask.shape))
    target[dst] |= mask[src]
