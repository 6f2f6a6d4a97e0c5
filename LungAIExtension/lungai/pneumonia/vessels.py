"""Bright tubular structures (pulmonary vessels) by Hessian eigenvalue analysis (Frangi vesselness).

Computed on a coarse grid (about 2 mm voxels, by bin averaging), because it only has to find the vessels that are
too thick for the morphological opening of the lesion candidates to remove (3 mm and wider); thinner vessels and
the partial-volume rims of all vessels are removed by that opening. The Hessian is evaluated with scale-normalised
Gaussian derivatives and its eigenvalues only at dense voxels, which keeps a 512x512x300 CT to about a second.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
from scipy import ndimage as ndi

_PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))


def shrink_factors(spacing_kji: Sequence[float], target_mm: float) -> Tuple[int, ...]:
    """Integer bin sizes per array axis that bring the spacing closest to ``target_mm`` (never below 1)."""
    return tuple(max(1, int(round(target_mm / s))) for s in spacing_kji)


def bin_average(array: np.ndarray, factors: Sequence[int]) -> np.ndarray:
    """Mean over non-overlapping blocks of ``factors`` voxels (edges padded by replication).

    Summed one axis at a time (several times faster than one reduction over a six-axis view)."""
    pads = [(0, (-n) % f) for n, f in zip(array.shape, factors)]
    out = np.pad(array, pads, mode="edge") if any(p for _, p in pads) else array
    if out.dtype == bool:
        out = out.view(np.uint8)
    total = np.uint16 if out.dtype.kind in "bui" else np.float32
    for axis, f in enumerate(factors):
        if f == 1:
            continue
        shape = list(out.shape)
        shape[axis:axis + 1] = [shape[axis] // f, f]
        out = out.reshape(shape).sum(axis=axis + 1, dtype=total)
    return out.astype(np.float32) / np.float32(np.prod(factors))


def expand_blocks(array: np.ndarray, factors: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`bin_average` for display/masking: repeat each block value, cropped to ``shape``."""
    out = array
    for axis, f in enumerate(factors):
        out = np.repeat(out, f, axis=axis)
    return out[tuple(slice(0, n) for n in shape)]


def vesselness(hu: np.ndarray, spacing_kji: Sequence[float], scales_mm: Sequence[float], candidates: np.ndarray,
               alpha: float = 0.5, beta: float = 0.5, c: float = 120.0, ridge: float = 0.5,
               with_axes: bool = False):
    """Frangi vesselness of bright tubes, maximum over ``scales_mm``, at the ``candidates`` voxels (0 elsewhere).

    ``c`` is the structure-strength constant in scale-normalised HU; vessels against lung (about 800 HU of
    contrast) score near 1, ground-glass blobs and plates (fissures, lesion borders) near 0. Only voxels near a
    centre line count (scale-normalised gradient at most ``ridge`` times the largest eigenvalue magnitude), which
    keeps the tube-like shoulders of round lesions out. With ``with_axes`` it also returns, per voxel, the unit
    direction of the tube there (the eigenvector of the smallest eigenvalue magnitude at the best scale; array
    ``[..., 3]`` in array-axis order, in voxel units of each axis scaled to mm).
    """
    out = np.zeros(hu.shape, dtype=np.float32)
    axes = np.zeros(hu.shape + (3,), dtype=np.float32) if with_axes else None
    where = np.nonzero(candidates)
    if where[0].size == 0:
        return (out, axes) if with_axes else out
    hu = hu.astype(np.float32, copy=False)
    for scale in scales_mm:
        sigma = [scale / s for s in spacing_kji]
        h = np.empty((where[0].size, 3, 3), dtype=np.float32)
        for a, b in _PAIRS:
            order = [0, 0, 0]
            order[a] += 1
            order[b] += 1
            # per-voxel derivative -> per mm^2, then scale-normalised by scale^2
            d = ndi.gaussian_filter(hu, sigma, order=order, mode="nearest")[where] * (
                scale ** 2 / (spacing_kji[a] * spacing_kji[b]))
            h[:, a, b] = d
            h[:, b, a] = d
        grad = np.stack([ndi.gaussian_filter(hu, sigma, order=[int(a == b) for b in range(3)], mode="nearest")[where]
                         * (scale / spacing_kji[a]) for a in range(3)], axis=1)
        if with_axes:
            lam, vectors = np.linalg.eigh(h)
        else:
            lam = np.linalg.eigvalsh(h)
        order_idx = np.argsort(np.abs(lam), axis=1)
        lam = np.take_along_axis(lam, order_idx, axis=1)
        l1, l2, l3 = lam[:, 0], lam[:, 1], lam[:, 2]
        bright_tube = (l2 < 0) & (l3 < 0)
        a2, a3 = np.abs(l2), np.abs(l3) + 1e-6
        ra = a2 / a3
        rb = np.abs(l1) / np.sqrt(a2 * a3 + 1e-6)
        s2 = l1 ** 2 + l2 ** 2 + l3 ** 2
        v = (1 - np.exp(-ra ** 2 / (2 * alpha ** 2))) * np.exp(-rb ** 2 / (2 * beta ** 2)) * (
            1 - np.exp(-s2 / (2 * c ** 2)))
        # on a vessel's centre line the intensity gradient vanishes; on the shoulders of blobs it does not
        centred = np.linalg.norm(grad, axis=1) <= ridge * a3
        v = np.where(bright_tube & centred, v, 0).astype(np.float32)
        if with_axes:
            better = v > out[where]
            axis = np.take_along_axis(vectors, order_idx[:, None, :1], axis=2)[:, :, 0]
            axes[tuple(w[better] for w in where)] = axis[better]
        out[where] = np.maximum(out[where], v)
    return (out, axes) if with_axes else out


def continues_along_axis(centres: np.ndarray, axes: np.ndarray, radius_mm: np.ndarray, dense: np.ndarray,
                         spacing_kji: Sequence[float], reach: float = 1.5) -> np.ndarray:
    """The centre-line voxels whose dense structure goes on along the tube's axis beyond ``reach`` radii (on at
    least one side: a vessel's end has one), unlike a ball, whose medial axis is a point."""
    where = np.nonzero(centres)
    if where[0].size == 0:
        return centres.copy()
    spacing = np.asarray(spacing_kji, dtype=np.float32)
    position = np.stack(where, axis=1).astype(np.float32)
    step = axes[where] / spacing * (reach * radius_mm[where] + float(spacing.max()))[:, None]
    goes_on = np.zeros(where[0].size, dtype=bool)
    for sign in (1.0, -1.0):
        target = np.rint(position + sign * step).astype(np.int64)
        inside = np.all((target >= 0) & (target < np.asarray(dense.shape)), axis=1)
        hit = np.zeros_like(goes_on)
        hit[inside] = dense[tuple(target[inside].T)]
        goes_on |= hit
    out = np.zeros_like(centres)
    out[tuple(w[goes_on] for w in where)] = True
    return out


def tube_zone(centres: np.ndarray, radius_mm: np.ndarray, spacing_kji: Sequence[float], shell_fraction: float,
              margin_mm: float, bin_edges_mm: Sequence[float]) -> np.ndarray:
    """The vessels around their centre lines, rebuilt as a union of balls, with their partial-volume shells.

    Every centre-line voxel carries the vessel radius there (``radius_mm``); it contributes a ball of
    ``radius * (1 + shell_fraction) + margin_mm``: the shell in which a vessel's blur and the slab averaging of
    thick slices put ground-glass densities grows with the vessel's calibre. Radii are grouped by
    ``bin_edges_mm`` (each group uses its largest radius), one distance transform per group.
    """
    zone = np.zeros(centres.shape, dtype=bool)
    edges = [0.0, *bin_edges_mm, np.inf]
    for lo, hi in zip(edges[:-1], edges[1:]):
        seeds = centres & (radius_mm > lo) & (radius_mm <= hi)
        if not seeds.any():
            continue
        reach = float(radius_mm[seeds].max()) * (1.0 + shell_fraction) + margin_mm
        pad = [int(np.ceil(reach / s)) + 1 for s in spacing_kji]
        box = []
        for axis, n in enumerate(seeds.shape):
            present = np.flatnonzero(seeds.any(axis=tuple(a for a in range(3) if a != axis)))
            box.append(slice(max(0, int(present[0]) - pad[axis]), min(n, int(present[-1]) + 1 + pad[axis])))
        box = tuple(box)
        zone[box] |= ndi.distance_transform_edt(~seeds[box], sampling=spacing_kji) <= reach
    return zone


def bounded_across_axis(centres: np.ndarray, axes: np.ndarray, radius_mm: np.ndarray, dense: np.ndarray,
                        spacing_kji: Sequence[float], reach: float = 2.0, directions: int = 8,
                        min_free: float = 0.75) -> np.ndarray:
    """The centre-line voxels around which the dense structure ends across the tube's axis: of ``directions``
    points on a ring perpendicular to the axis at ``reach`` radii (plus one voxel), at least ``min_free`` lie
    outside it (a branch or a neighbouring vessel may block a few). The edge of a consolidation or a mass, where
    the dense structure goes on to one side, is no tube however ridge-like its border."""
    where = np.nonzero(centres)
    if where[0].size == 0:
        return centres.copy()
    spacing = np.asarray(spacing_kji, dtype=np.float32)
    position = np.stack(where, axis=1).astype(np.float32)
    axis = axes[where].astype(np.float32)
    axis /= np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-6)
    # two unit vectors across the axis (mm space)
    helper = np.where(np.abs(axis[:, :1]) < 0.9, np.array([[1.0, 0.0, 0.0]], dtype=np.float32),
                      np.array([[0.0, 1.0, 0.0]], dtype=np.float32))
    u = np.cross(axis, helper)
    u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-6)
    v = np.cross(axis, u)
    distance = (reach * radius_mm[where] + float(spacing.max()))[:, None]
    free = np.zeros(where[0].size, dtype=np.int32)
    for angle in np.linspace(0.0, 2.0 * np.pi, directions, endpoint=False):
        step = (np.cos(angle) * u + np.sin(angle) * v) * distance / spacing
        target = np.rint(position + step).astype(np.int64)
        inside = np.all((target >= 0) & (target < np.asarray(dense.shape)), axis=1)
        hit = np.zeros(where[0].size, dtype=bool)
        hit[inside] = dense[tuple(target[inside].T)]
        free += ~hit
    out = np.zeros_like(centres)
    keep = free >= min_free * directions
    out[tuple(w[keep] for w in where)] = True
    return out
