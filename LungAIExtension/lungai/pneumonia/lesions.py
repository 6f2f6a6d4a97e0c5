"""Lesions as instances: 26-connected components of the lesion mask, with their measurements.

A lesion is kept when its equivalent-sphere diameter (the diameter of a ball of the same volume) reaches
``min_size_mm``; smaller specks are removed from the label map as well. Its type is the class holding most of
its voxels (``ground_glass`` or ``consolidation``), with the consolidation fraction reported alongside.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

import cc3d
import numpy as np
from scipy.spatial import ConvexHull, QhullError

from lungai.image import Image
from lungai.labels import CONSOLIDATION, LESION_LABELS, LOBE_LABELS
from lungai.pneumonia.regions import SIDES, LungRegions, bounding_box


@dataclass
class Lesion:
    """One lesion; positions in LPS millimetres and ITK index (i, j, k)."""

    id: int
    type: str
    volume_ml: float
    consolidation_fraction: float
    side: str
    zone: str
    lobe: Optional[str]
    mean_hu: float
    largest_diameter_mm: float
    equivalent_diameter_mm: float
    centroid_lps: Tuple[float, float, float]
    centroid_ijk: Tuple[float, float, float]
    voxels: int

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


def equivalent_diameter_mm(volume_ml: float) -> float:
    return float((6.0 * volume_ml * 1000.0 / np.pi) ** (1.0 / 3.0))


def largest_diameter_mm(points_mm: np.ndarray) -> float:
    """Largest distance between two voxel centres (maximum Feret diameter), through the convex hull."""
    if len(points_mm) < 2:
        return 0.0
    candidates = points_mm
    if len(points_mm) > 4:
        try:
            candidates = points_mm[ConvexHull(points_mm).vertices]
        except QhullError:  # flat or degenerate lesions: fall back to all points
            candidates = points_mm
    if len(candidates) > 3000:
        candidates = candidates[np.random.default_rng(0).choice(len(candidates), 3000, replace=False)]
    diff = candidates[:, None, :] - candidates[None, :, :]
    return float(np.sqrt((diff ** 2).sum(axis=-1)).max())


def _majority(values: np.ndarray) -> int:
    values = values[values > 0]
    return int(np.bincount(values).argmax()) if values.size else 0


def find_lesions(image: Image, labels: np.ndarray, regions: LungRegions,
                 min_size_mm: float = 0.0) -> Tuple[List[Lesion], np.ndarray, np.ndarray]:
    """Lesion instances of a class label map.

    Returns the lesions (largest first, ids 1..N), the instance map (0 background, id per lesion) and the class
    label map with lesions below ``min_size_mm`` removed.
    """
    labels = np.asarray(labels)
    kept_labels = labels.copy()
    within = bounding_box(labels > 0)  # the lesions' box: a few percent of a 512x512x300 grid
    components, n = cc3d.connected_components(labels[within] > 0, connectivity=26, return_N=True)
    instances = np.zeros(labels.shape, dtype=np.uint16 if n < 65535 else np.uint32)
    if n == 0:
        return [], instances, kept_labels
    offset = np.array([s.start for s in within])
    voxel_ml = image.voxel_volume_ml
    stats = cc3d.statistics(components)
    lesions: List[Lesion] = []
    to_drop = []
    matrix = image.index_to_lps_matrix()
    for cid in range(1, n + 1):
        count = int(stats["voxel_counts"][cid])
        volume = count * voxel_ml
        if equivalent_diameter_mm(volume) < min_size_mm:
            to_drop.append(cid)
            continue
        bbox = stats["bounding_boxes"][cid]
        sub = components[bbox] == cid
        kji = np.argwhere(sub) + np.array([s.start for s in bbox]) + offset
        idx = tuple(kji.T)
        cls = labels[idx]
        consolidation = float(np.mean(cls == CONSOLIDATION))
        ijk = kji[:, ::-1].astype(float)
        lps = ijk @ matrix[:3, :3].T + matrix[:3, 3]
        side = _majority(regions.lungs[idx])
        zone = _majority(regions.zones[idx])
        lobe = _majority(regions.lobes[idx]) if regions.has_lobes else 0
        lesions.append(Lesion(
            id=0, type=LESION_LABELS[CONSOLIDATION] if consolidation >= 0.5 else LESION_LABELS[1],
            volume_ml=volume, consolidation_fraction=consolidation, side=SIDES.get(side, "unknown"),
            zone=regions.zone_names[zone - 1] if zone else "unknown",
            lobe=LOBE_LABELS.get(lobe) if lobe else None, mean_hu=float(image.array[idx].mean()),
            largest_diameter_mm=largest_diameter_mm(lps), equivalent_diameter_mm=equivalent_diameter_mm(volume),
            centroid_lps=tuple(float(v) for v in lps.mean(axis=0)),
            centroid_ijk=tuple(float(v) for v in ijk.mean(axis=0)), voxels=count))
        lesions[-1].id = cid  # temporary: component id, renumbered below
    if to_drop:
        kept_labels[within][np.isin(components, to_drop)] = 0
    lesions.sort(key=lambda les: -les.volume_ml)
    remap = np.zeros(n + 1, dtype=instances.dtype)
    for new_id, lesion in enumerate(lesions, start=1):
        remap[lesion.id] = new_id
        lesion.id = new_id
    instances[within] = remap[components]
    return lesions, instances, kept_labels
