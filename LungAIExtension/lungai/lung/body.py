"""Air outside the patient, and the body region, on the canonical working grid."""

from __future__ import annotations

import numpy as np

from lungai.lung.morphology import label

# border-touching air darker than this on average is room air (lung parenchyma is -950..-500 HU)
ROOM_AIR_MEAN_HU = -950.0


def outside_air(hu: np.ndarray, air: np.ndarray) -> np.ndarray:
    """Air connected to the side edges of each axial slice, unless it looks like lung cut by a small field of view.

    Lung touching the image edge (a cropped reconstruction) has the density of parenchyma, room air is darker;
    so a border-touching air region is room air when its mean HU is below :data:`ROOM_AIR_MEAN_HU`.
    """
    labels, n = label(air, planar=True)
    if n == 0:
        return np.zeros_like(air)
    edges = np.concatenate([labels[:, 0, :].ravel(), labels[:, -1, :].ravel(),
                            labels[:, :, 0].ravel(), labels[:, :, -1].ravel()])
    edge_labels = np.unique(edges[edges > 0])
    flat = labels.ravel()
    counts = np.bincount(flat, minlength=n + 1)
    sums = np.bincount(flat, weights=hu.ravel(), minlength=n + 1)
    means = sums / np.maximum(counts, 1)
    room = np.zeros(n + 1, dtype=bool)
    room[edge_labels] = means[edge_labels] < ROOM_AIR_MEAN_HU
    return room[labels]
