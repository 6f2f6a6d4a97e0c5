"""Rejection of false lesion components of the weight-free method: partial-volume plates and vessel remnants.

Two kinds of connected component pass the density and shape steps of :mod:`.segmentation` without being lesions:

* **plates**: components confined to a single slice. A lesion of the minimum size reaches the neighbouring slice
  on thin-slice CT; on thick slices the single-slice ground-glass patches are mostly vessels running inside the slab
  (their partial volume). Rejected unless ``keep_single_slice``.
* **vessel remnants**: small components (below ``remnant_max_mm3``) lying mostly beside the suppressed vessels
  (``remnant_vessel_fraction`` of their voxels within ``remnant_near_mm``) whose density is a mixture of vessel
  and lung (HU standard deviation above ``remnant_hu_std``). Ground glass is a plateau with a low spread; a
  consolidation of that size is uniformly dense; a vessel's partial-volume shell is neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cc3d
import numpy as np


@dataclass
class ComponentFeatures:
    """Per-component measurements (index 0 is the background and unused)."""

    voxels: np.ndarray
    slices: np.ndarray
    hu_std: np.ndarray
    vessel_fraction: np.ndarray


def component_features(components: np.ndarray, n: int, hu: np.ndarray, near_vessels: np.ndarray,
                       axial_axis: int) -> ComponentFeatures:
    """Voxel count, number of slices spanned, HU standard deviation and fraction of voxels near vessels."""
    stats = cc3d.statistics(components)
    voxels = np.asarray(stats["voxel_counts"][: n + 1], dtype=np.float64)
    slices = np.array([0] + [b[axial_axis].stop - b[axial_axis].start for b in stats["bounding_boxes"][1: n + 1]])
    flat = components.ravel()
    values = hu.ravel().astype(np.float64)
    total = np.bincount(flat, weights=values, minlength=n + 1)
    squares = np.bincount(flat, weights=values * values, minlength=n + 1)
    near = np.bincount(flat, weights=near_vessels.ravel().astype(np.float64), minlength=n + 1)
    count = np.maximum(voxels, 1.0)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    return ComponentFeatures(voxels=voxels, slices=slices, hu_std=std, vessel_fraction=near / count)


def false_components(features: ComponentFeatures, voxel_mm3: float, keep_single_slice: bool,
                     remnant_max_mm3: float, remnant_hu_std: float, remnant_vessel_fraction: float) -> np.ndarray:
    """Boolean per component id (0 included, always False): the components to reject."""
    reject = np.zeros(features.voxels.shape, dtype=bool)
    if not keep_single_slice:
        reject |= features.slices == 1
    reject |= ((features.voxels * voxel_mm3 < remnant_max_mm3) & (features.hu_std > remnant_hu_std)
               & (features.vessel_fraction > remnant_vessel_fraction))
    reject[0] = False
    return reject


def reject_false_components(lesions: np.ndarray, hu: np.ndarray, near_vessels: np.ndarray, spacing_kji: Sequence[float],
                            axial_axis: int, keep_single_slice: bool = False, remnant_max_mm3: float = 700.0,
                            remnant_hu_std: float = 150.0, remnant_vessel_fraction: float = 0.6) -> np.ndarray:
    """The lesion mask without its plates and vessel remnants (26-connected components; see the module doc)."""
    components, n = cc3d.connected_components(lesions, connectivity=26, return_N=True)
    if n == 0:
        return lesions
    features = component_features(components, n, hu, near_vessels, axial_axis)
    reject = false_components(features, float(np.prod(spacing_kji)), keep_single_slice, remnant_max_mm3,
                              remnant_hu_std, remnant_vessel_fraction)
    return lesions & ~reject[components]
