"""Rejection of false lesion components of the weight-free method: partial-volume plates and vessel remnants.

Two kinds of connected component pass the density and shape steps of :mod:`.segmentation` without being lesions:

* **plates**: components confined to a single slice. A lesion of the minimum size reaches the neighbouring slice
  on thin-slice CT; on thick slices the single-slice ground-glass patches are mostly vessels running inside the slab
  (their partial volume). Rejected unless ``keep_single_slice``, or on inputs of fewer than ``EDGE_SCAN_SLICES``
  slices when the slice is the first or last of the scan (single-slice inputs keep working).
* **vessel remnants**: small components (below ``remnant_max_mm3``) lying mostly beside the suppressed vessels
  (``remnant_vessel_fraction`` of their voxels within ``remnant_near_mm``) whose density is a mixture of vessel
  and lung (HU standard deviation above ``remnant_hu_std``). Ground glass is a plateau with a low spread; a
  consolidation of that size is uniformly dense; a vessel's partial-volume shell is neither.
* **tubes**: small components (below ``remnant_max_mm3``) whose longest principal axis is more than
  ``max_elongation`` times the second (square root of the ratio of the coordinate covariance eigenvalues, in mm):
  segments of faint vessels that the density steps took for ground glass. Lesions of that size are round.
* **bulges on thin structures** (:func:`bulges_on_thin_structures`): small components from which the candidate
  densities that the thin-structure opening removed go on, connected to them, with more than ``max_ratio`` times
  their own volume within ``reach_mm``: a crossing or thickening on a faint vessel or bronchial wall seen in
  partial volume (a speck on a line), not a lesion, which stands out as a blob from the lung around it.
* **chest-wall sheets** (:func:`chest_wall_sheets`): consolidation-dense components lying as a thin sheet along the
  lung mask's outer surface (90 % of their voxels within ``max_depth_mm`` of it) with much of their surface
  (``min_contact``) on soft tissue outside the mask (median above ``soft_tissue_hu``): chest wall, mediastinum or
  diaphragm that a lung mask took in. A subpleural consolidation is thicker or mostly surrounded by lung.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cc3d
import numpy as np
from scipy import ndimage as ndi

from lungai.pneumonia.regions import bounding_box, component_boxes, replaced_in_box

EDGE_SCAN_SLICES = 3  # scans with fewer slices keep single-slice components on their first and last slice


@dataclass
class ComponentFeatures:
    """Per-component measurements (index 0 is the background and unused)."""

    voxels: np.ndarray
    slices: np.ndarray
    at_edge: np.ndarray
    hu_std: np.ndarray
    vessel_fraction: np.ndarray
    elongation: np.ndarray


def principal_elongation(ids: np.ndarray, kji: np.ndarray, n: int, spacing_kji: Sequence[float]) -> np.ndarray:
    """Per component: sqrt(largest / second-largest eigenvalue) of the covariance of its voxel positions (mm).

    ``ids`` are the component ids of the foreground voxels and ``kji`` their indices (one row per voxel)."""
    count = np.maximum(np.bincount(ids, minlength=n + 1).astype(np.float64), 1.0)
    coords = [kji[:, a].astype(np.float64) * float(spacing_kji[a]) for a in range(3)]
    means = [np.bincount(ids, weights=c, minlength=n + 1) / count for c in coords]
    cov = np.empty((n + 1, 3, 3))
    for a in range(3):
        for b in range(a, 3):
            value = np.bincount(ids, weights=coords[a] * coords[b], minlength=n + 1) / count - means[a] * means[b]
            cov[:, a, b] = cov[:, b, a] = value
    eig = np.sort(np.clip(np.linalg.eigvalsh(cov), 0.0, None), axis=1)
    return np.sqrt(eig[:, 2] / np.maximum(eig[:, 1], 1e-6))


def component_features(components: np.ndarray, n: int, hu: np.ndarray, near_vessels: np.ndarray,
                       axial_axis: int, spacing_kji: Sequence[float]) -> ComponentFeatures:
    """Voxel count, slices spanned, HU standard deviation, fraction of voxels near vessels, elongation."""
    where = np.nonzero(components)
    ids = components[where].astype(np.int64)
    kji = np.stack(where, axis=1)
    voxels = np.bincount(ids, minlength=n + 1).astype(np.float64)
    count = np.maximum(voxels, 1.0)
    first = np.full(n + 1, np.iinfo(np.int64).max)
    last = np.full(n + 1, -1)
    np.minimum.at(first, ids, kji[:, axial_axis])
    np.maximum.at(last, ids, kji[:, axial_axis])
    slices = np.where(voxels > 0, last - first + 1, 0)
    # on a scan of a few slices (a 2D slice, a thick slab) a component on its first or last slice may go on beyond
    # it; on a whole chest CT those slices cut the lung bases and apices, whose single-slice patches are partial
    # volume like any other
    few_slices = components.shape[axial_axis] < EDGE_SCAN_SLICES
    at_edge = (voxels > 0) & few_slices & ((first == 0) | (last == components.shape[axial_axis] - 1))
    values = hu[where].astype(np.float64)
    mean = np.bincount(ids, weights=values, minlength=n + 1) / count
    squares = np.bincount(ids, weights=values * values, minlength=n + 1) / count
    std = np.sqrt(np.maximum(squares - mean * mean, 0.0))
    near = np.bincount(ids, weights=near_vessels[where].astype(np.float64), minlength=n + 1) / count
    at_edge[0] = False
    return ComponentFeatures(voxels=voxels, slices=slices, at_edge=at_edge, hu_std=std, vessel_fraction=near,
                             elongation=principal_elongation(ids, kji, n, spacing_kji))


def false_components(features: ComponentFeatures, voxel_mm3: float, keep_single_slice: bool,
                     remnant_max_mm3: float, remnant_hu_std: float, remnant_vessel_fraction: float,
                     max_elongation: float) -> np.ndarray:
    """Boolean per component id (0 included, always False): the components to reject."""
    reject = np.zeros(features.voxels.shape, dtype=bool)
    if not keep_single_slice:
        reject |= (features.slices == 1) & ~features.at_edge
    small = features.voxels * voxel_mm3 < remnant_max_mm3
    reject |= small & (features.hu_std > remnant_hu_std) & (features.vessel_fraction > remnant_vessel_fraction)
    reject |= small & (features.elongation > max_elongation)
    reject[0] = False
    return reject


def reject_false_components(lesions: np.ndarray, hu: np.ndarray, near_vessels: np.ndarray, spacing_kji: Sequence[float],
                            axial_axis: int, keep_single_slice: bool = False, remnant_max_mm3: float = 700.0,
                            remnant_hu_std: float = 150.0, remnant_vessel_fraction: float = 0.6,
                            max_elongation: float = 3.0) -> np.ndarray:
    """The lesion mask without its plates and vessel remnants (26-connected components; see the module doc)."""
    components, n = cc3d.connected_components(lesions, connectivity=26, return_N=True)
    if n == 0:
        return lesions
    features = component_features(components, n, hu, near_vessels, axial_axis, spacing_kji)
    reject = false_components(features, float(np.prod(spacing_kji)), keep_single_slice, remnant_max_mm3,
                              remnant_hu_std, remnant_vessel_fraction, max_elongation)
    return lesions & ~reject[components]


def bulges_on_thin_structures(lesions: np.ndarray, before_opening: np.ndarray, spacing_kji: Sequence[float],
                              max_mm3: float, reach_mm: float, max_ratio: float) -> np.ndarray:
    """The lesion mask without its small components that are bulges on thin structures (see the module doc).

    ``before_opening`` holds the candidate densities before the opening that removed thin structures. For each
    component under ``max_mm3``: the candidate voxels within ``reach_mm`` of it and connected to it there, less its
    26-neighbour shell (its own partial-volume rim), are its continuation; it is rejected when that holds more than
    ``max_ratio`` times its volume."""
    margin = [int(np.ceil(reach_mm / s)) + 1 for s in spacing_kji]
    crop = bounding_box(lesions, max(margin))  # the lesions' box: a few percent of a large grid
    full, lesions, before_opening = lesions, lesions[crop], before_opening[crop]
    components, n = cc3d.connected_components(lesions, connectivity=26, return_N=True)
    if n == 0:
        return full
    voxel_mm3 = float(np.prod(spacing_kji))
    shell = ndi.generate_binary_structure(3, 3)
    reject = np.zeros(n + 1, dtype=bool)
    for cid, count, box in component_boxes(components, n, margin):
        if count * voxel_mm3 >= max_mm3:
            continue
        own = components[box] == cid
        within = ndi.distance_transform_edt(~own, sampling=spacing_kji) <= reach_mm
        joined, _ = ndi.label((before_opening[box] & within) | own, shell)
        continuation = (joined == joined[own][0]) & ~ndi.binary_dilation(own, shell)
        reject[cid] = np.count_nonzero(continuation) > max_ratio * count
    return replaced_in_box(full, crop, lesions & ~reject[components])


def chest_wall_sheets(lesions: np.ndarray, smooth: np.ndarray, lung: np.ndarray, spacing_kji: Sequence[float],
                      dense_hu: float, max_depth_mm: float, min_contact: float, soft_tissue_hu: float) -> np.ndarray:
    """The lesion mask without its chest-wall sheets (see the module doc); ``dense_hu``: the consolidation level
    (a component counts when its median smoothed density reaches it)."""
    margin = [int(np.ceil(max_depth_mm / s)) + 2 for s in spacing_kji]
    crop = bounding_box(lesions, max(margin))
    full, lesions, smooth, lung = lesions, lesions[crop], smooth[crop], lung[crop]
    components, n = cc3d.connected_components(lesions, connectivity=26, return_N=True)
    if n == 0:
        return full
    shell_structure = ndi.generate_binary_structure(3, 3)
    reject = np.zeros(n + 1, dtype=bool)
    for cid, _, box in component_boxes(components, n, margin):
        own = components[box] == cid
        values = smooth[box]
        if np.median(values[own]) < dense_hu:
            continue
        inside = lung[box]
        shell = ndi.binary_dilation(own, shell_structure) & ~own
        outside = shell & ~inside
        if np.count_nonzero(outside) < min_contact * np.count_nonzero(shell):
            continue
        if np.median(values[outside]) < soft_tissue_hu:
            continue
        depth = ndi.distance_transform_edt(np.pad(inside, 1, constant_values=True), sampling=spacing_kji)[1:-1, 1:-1, 1:-1]
        reject[cid] = np.percentile(depth[own], 90) <= max_depth_mm
    return replaced_in_box(full, crop, lesions & ~reject[components])


def height_above_floor(lung: np.ndarray, smooth: np.ndarray, axial_axis: int, superior_sign: int,
                       tissue_hu: float) -> np.ndarray:
    """Per lung voxel: how many lung voxels its column holds from it down to the lung's floor (1 on the floor),
    counted only where the floor rests on tissue (the first voxel below the column denser than ``tissue_hu``: the
    diaphragm and the organs under it); 0 elsewhere and where the column reaches the scan's lowest slice (its floor
    is unknown)."""
    up = np.moveaxis(lung, axial_axis, 0)
    values = np.moveaxis(smooth, axial_axis, 0)
    if superior_sign < 0:
        up, values = up[::-1], values[::-1]
    index = np.arange(up.shape[0], dtype=np.int32).reshape(-1, 1, 1)
    # the index of the last voxel outside the lung at or below each voxel (-1: none down to the lowest slice)
    floor = np.maximum.accumulate(np.where(up, np.int32(-1), index), axis=0)
    known = floor >= 0
    below = np.take_along_axis(values, np.maximum(floor, 0), axis=0)
    height = np.where(up & known & (below >= tissue_hu), index - floor, 0).astype(np.int32)
    if superior_sign < 0:
        height = height[::-1]
    return np.moveaxis(height, 0, axial_axis)


def floor_sheets(lesions: np.ndarray, smooth: np.ndarray, lung: np.ndarray, spacing_kji: Sequence[float],
                 axial_axis: int, superior_sign: int, max_height_mm: float, min_fraction: float,
                 ramp_hu_per_mm: float, tissue_hu: float) -> np.ndarray:
    """The lesion mask without its floor sheets: components with ``min_fraction`` of their voxels within
    ``max_height_mm`` above the lung's floor where it rests on tissue (the diaphragm dome and the liver or spleen
    under it), whose density rises towards the floor by at least ``ramp_hu_per_mm`` (least-squares slope of the
    smoothed HU over the height): the partial volume and breathing blur of the dome in the lowest slices, a ramp
    into the organ below rather than a lesion's plateau. A lesion on the dome reaches higher or keeps its density.

    Where a component is mostly a layer one voxel high on the floor (the dome's partial volume at thick slices),
    the ramp has no second point inside it: there the lung voxel right above each such floor voxel counts in the
    slope too. A lesion's plateau goes on upwards inside the component (only its rim is one voxel high)."""
    components, n = cc3d.connected_components(lesions, connectivity=26, return_N=True)
    if n == 0:
        return lesions
    # the columns under the lesions, from the lowest slice up to the lesions' top
    box = list(bounding_box(lesions))
    box[axial_axis] = slice(0, box[axial_axis].stop) if superior_sign > 0 else slice(box[axial_axis].start, None)
    box = tuple(box)
    height = np.zeros(lung.shape, dtype=np.int32)
    height[box] = height_above_floor(lung[box], smooth[box], axial_axis, superior_sign, tissue_hu)
    where = np.nonzero(components)
    ids = components[where].astype(np.int64)
    mm = height[where] * float(spacing_kji[axial_axis])
    near = (mm > 0) & (mm <= max_height_mm)
    count = np.maximum(np.bincount(ids, minlength=n + 1).astype(np.float64), 1.0)
    fraction = np.bincount(ids, weights=near, minlength=n + 1) / count
    values = smooth[where].astype(np.float64)
    # the lung voxel above a one-voxel layer on the floor
    above = list(where)
    above[axial_axis] = where[axial_axis] + superior_sign
    inside = (above[axial_axis] >= 0) & (above[axial_axis] < lung.shape[axial_axis]) & (height[where] == 1)
    above = tuple(a[inside] for a in above)
    layer = lung[above] & ~lesions[above]
    # ... of a component that is mostly such a layer (a lesion on the floor is one voxel high at its rim only)
    layer_ids = ids[inside][layer]
    layer_share = np.bincount(layer_ids, minlength=n + 1) / count
    mostly = layer_share[layer_ids] >= 0.5
    above = tuple(a[layer][mostly] for a in above)
    ids = np.concatenate([ids, layer_ids[mostly]])
    mm = np.concatenate([mm, np.full(len(above[0]), 2.0 * float(spacing_kji[axial_axis]))])
    values = np.concatenate([values, smooth[above].astype(np.float64)])
    near = np.concatenate([near, np.ones(len(above[0]), dtype=bool)])
    # least-squares slope of the density over the height, over the voxels near the floor
    w = near.astype(np.float64)
    sw = np.maximum(np.bincount(ids, weights=w, minlength=n + 1), 1.0)
    mean_h = np.bincount(ids, weights=w * mm, minlength=n + 1) / sw
    mean_v = np.bincount(ids, weights=w * values, minlength=n + 1) / sw
    cov = np.bincount(ids, weights=w * mm * values, minlength=n + 1) / sw - mean_h * mean_v
    var = np.bincount(ids, weights=w * mm * mm, minlength=n + 1) / sw - mean_h ** 2
    slope = np.where(var > 1e-6, cov / np.maximum(var, 1e-6), 0.0)
    reject = (fraction >= min_fraction) & (slope <= -ramp_hu_per_mm)
    reject[0] = False
    return lesions & ~reject[components]
