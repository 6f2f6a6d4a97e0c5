"""Air outside the patient, on the canonical working grid."""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage

PURE_AIR_HU = -960.0          # darker than any aerated lung voxel on a block-averaged grid
ROOM_AIR_PURE_FRACTION = 0.5  # border-touching air mostly this dark is room air, not lung


def outside_air(hu: np.ndarray, air: np.ndarray) -> np.ndarray:
    """Air connected to the side edges of each axial slice, unless it looks like lung cut by a small field of view.

    Lung touching the image edge (a cropped reconstruction) has the density of parenchyma, room air is darker;
    so a border-touching air region is room air when most of it is darker than :data:`PURE_AIR_HU`.
    """
    out = np.zeros(air.shape, dtype=bool)
    for z in range(air.shape[0]):
        labels, n = cc3d.connected_components(air[z].astype(np.uint8), connectivity=4, return_N=True)
        if n == 0:
            continue
        edges = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        edge_labels = np.unique(edges[edges > 0])
        if edge_labels.size == 0:
            continue
        counts = np.bincount(labels.ravel(), minlength=n + 1)
        pure = np.bincount(labels.ravel(), weights=(hu[z] < PURE_AIR_HU).ravel(), minlength=n + 1)
        room = np.zeros(n + 1, dtype=bool)
        room[edge_labels] = pure[edge_labels] > ROOM_AIR_PURE_FRACTION * counts[edge_labels]
        out[z] = room[labels]
    return out


def body_interior(hu: np.ndarray, tissue_hu: float = -400.0) -> np.ndarray:
    """Inside of the patient outline: per axial slice, the largest tissue region with its holes filled.

    The table and pads under the patient are separate regions, so air inside them is outside the body.
    """
    out = np.zeros(hu.shape, dtype=bool)
    for z in range(hu.shape[0]):
        labels, n = cc3d.connected_components((hu[z] > tissue_hu).astype(np.uint8), connectivity=4, return_N=True)
        if n == 0:
            continue
        counts = np.bincount(labels.ravel())
        counts[0] = 0
        out[z] = ndimage.binary_fill_holes(labels == int(np.argmax(counts)))
    return out
