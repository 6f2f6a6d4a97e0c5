"""Lesion edges at half contrast: a lesion's blurred border belongs to it down to the midpoint between its own
density and that of the lung around it.

A fixed ground-glass threshold cuts a faint lesion short: the scanner's blur and the slice profile spread its edge
over a couple of millimetres, and where the lesion is only a little denser than the threshold most of that edge
lies below it. Each lesion is therefore grown, up to ``reach_mm`` and connected to it, into the voxels denser than
the half-contrast level ``(lesion median + surrounding lung median) / 2``, the usual definition of an object's edge
in a blurred image. The surrounding lung is sampled in a shell from ``reach_mm`` to ``background_mm`` around the
lesion, so dependent (denser) lung raises the level and the edge does not creep into it. Dense lesions, whose
half-contrast level is above the ground-glass threshold anyway, do not change.
"""

from __future__ import annotations

from typing import Optional, Sequence

import cc3d
import numpy as np
from scipy import ndimage as ndi

from lungai.pneumonia.regions import bounding_box, component_boxes, replaced_in_box


def grow_to_half_contrast(lesions: np.ndarray, smooth: np.ndarray, allowed: np.ndarray, spacing_kji: Sequence[float],
                          threshold_hu: float, reach_mm: float = 2.0, background_mm: float = 8.0) -> np.ndarray:
    """``lesions`` with each component grown to its half-contrast edge (see the module doc).

    ``allowed`` is where a lesion may grow (and where the surrounding lung is sampled: lung, not vessel, not
    lesion); only levels below ``threshold_hu`` (the ground-glass threshold that made the mask) add voxels."""
    margin = [int(np.ceil(background_mm / s)) + 1 for s in spacing_kji]
    crop = bounding_box(lesions, max(margin))  # the lesions' box: a few percent of a large grid
    full, lesions, smooth, allowed = lesions, lesions[crop], smooth[crop], allowed[crop]
    components, n = cc3d.connected_components(lesions, connectivity=26, return_N=True)
    if n == 0 or reach_mm <= 0:
        return full
    out = lesions.copy()
    connect = ndi.generate_binary_structure(3, 3)
    for cid, _, box in component_boxes(components, n, margin):
        own = components[box] == cid
        distance = ndi.distance_transform_edt(~own, sampling=spacing_kji)
        free = allowed[box] & ~lesions[box]
        shell = free & (distance > reach_mm) & (distance <= background_mm)
        if not shell.any():
            continue
        values = smooth[box]
        level = 0.5 * (float(np.median(values[own])) + float(np.median(values[shell])))
        if level >= threshold_hu:
            continue
        edge = free & (distance <= reach_mm) & (values >= level)
        joined, _ = ndi.label(edge | own, connect)
        out[box] |= np.isin(joined, np.unique(joined[own])) & edge
    return replaced_in_box(full, crop, out)


def faint_components(lesions: np.ndarray, smooth: np.ndarray, allowed: np.ndarray, spacing_kji: Sequence[float],
                     min_contrast_hu: float, gap_mm: float = 2.0, background_mm: float = 8.0,
                     tested: Optional[np.ndarray] = None) -> np.ndarray:
    """The lesion mask without its components that barely stand out from the lung around them: median density
    less than ``min_contrast_hu`` above the median of the lung in a shell ``gap_mm`` to ``background_mm`` around
    them (``allowed``: lung, not vessel; other lesions left out). An opacity is density raised above the
    surrounding lung; dependent lung, whose density rises towards the back as a whole, and the haze of breathing
    blur are as dense as their surroundings. Components with no surrounding lung to compare are kept; with
    ``tested``, only the components holding a ``tested`` voxel are tested."""
    margin = [int(np.ceil(background_mm / s)) + 1 for s in spacing_kji]
    crop = bounding_box(lesions, max(margin))
    full, lesions, smooth, allowed = lesions, lesions[crop], smooth[crop], allowed[crop]
    components, n = cc3d.connected_components(lesions, connectivity=26, return_N=True)
    if n == 0:
        return full
    reject = np.zeros(n + 1, dtype=bool)
    chosen = None if tested is None else set(np.unique(components[tested[crop] & lesions]).tolist())
    for cid, _, box in component_boxes(components, n, margin):
        if chosen is not None and cid not in chosen:
            continue
        own = components[box] == cid
        distance = ndi.distance_transform_edt(~own, sampling=spacing_kji)
        shell = allowed[box] & ~lesions[box] & (distance > gap_mm) & (distance <= background_mm)
        if not shell.any():
            continue
        values = smooth[box]
        reject[cid] = float(np.median(values[own])) - float(np.median(values[shell])) < min_contrast_hu
    return replaced_in_box(full, crop, lesions & ~reject[components])


def faint_parts_beside_dense(lesions: np.ndarray, bridges: np.ndarray, smooth: np.ndarray, allowed: np.ndarray,
                             spacing_kji: Sequence[float], min_contrast_hu: float, denser_by_hu: float,
                             gap_mm: float = 2.0, background_mm: float = 8.0) -> np.ndarray:
    """The lesion mask without its faint parts joined to a far denser one: a component that ``bridges`` (the
    vessels a lesion encloses) join to another whose median density is at least ``denser_by_hu`` higher, and which
    stands less than ``min_contrast_hu`` above the lung around it (see :func:`faint_components`). Dependent lung
    beside a mass or a consolidation would otherwise pass as part of it once the vessels between them are added;
    the parts of one lesion that a vessel splits are of like density and are not tested here."""
    crop = bounding_box(lesions | bridges)
    pieces = cc3d.connected_components(lesions[crop], connectivity=26)
    groups = cc3d.connected_components(lesions[crop] | bridges[crop], connectivity=26)
    inside = pieces > 0
    piece_ids, group_ids = pieces[inside].astype(np.int64), groups[inside].astype(np.int64)
    n = int(piece_ids.max()) + 1 if piece_ids.size else 1
    median = _medians(piece_ids, smooth[crop][inside], n)
    group_of = np.zeros(n, dtype=np.int64)
    group_of[piece_ids] = group_ids
    pieces_in = np.bincount(group_of[1:], minlength=int(groups.max()) + 1)  # pieces per group
    densest = np.full(pieces_in.shape, -np.inf)
    np.maximum.at(densest, group_of[1:], median[1:])
    beside = (pieces_in[group_of] > 1) & (median <= densest[group_of] - denser_by_hu)
    beside[0] = False
    if not beside.any():
        return lesions
    tested = np.zeros(lesions.shape, dtype=bool)
    tested[crop] = beside[pieces]
    return faint_components(lesions, smooth, allowed, spacing_kji, min_contrast_hu, gap_mm, background_mm,
                            tested=tested)


def _medians(ids: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Median of ``values`` per id in ``0..n-1`` (0 where an id has no value), by one sort."""
    order = np.lexsort((values, ids))
    ids, values = ids[order], values[order].astype(np.float64)
    count = np.bincount(ids, minlength=n)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    present = count > 0
    out = np.zeros(n)
    low = start[present] + (count[present] - 1) // 2
    high = start[present] + count[present] // 2
    out[present] = 0.5 * (values[low] + values[high])
    return out
