"""Lung regions used for pneumonia quantification: sides, zones, lobes and the patient axes of the grid.

All masks are arrays on the CT grid (``[k, j, i]``). Zones follow :data:`lungai.terminology.ZONE_NAMES`
(label value = position in that list + 1), as :func:`lungai.lung.zones.compute_zones` makes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cc3d
import numpy as np
from scipy import ndimage as ndi

from lungai.arrays import bounding_box
from lungai.image import Image
from lungai.labels import LEFT_LUNG, RIGHT_LUNG
from lungai.terminology import ZONE_NAMES

SIDES: Dict[int, str] = {RIGHT_LUNG: "right", LEFT_LUNG: "left"}
LEVELS = ("upper", "middle", "lower")


@dataclass
class PatientAxes:
    """Array axes of the grid along the patient's axes and their directions."""

    axial: int  # array axis running cranio-caudally (slices are taken across it)
    superior_sign: int  # +1 when a higher index along ``axial`` is more superior
    ap: int  # array axis running antero-posteriorly
    posterior_sign: int  # +1 when a higher index along ``ap`` is more posterior

    @classmethod
    def of(cls, image: Image) -> "PatientAxes":
        return cls(image.array_axis_of(2), image.array_axis_sign(2), image.array_axis_of(1),
                   image.array_axis_sign(1))


@dataclass
class LungRegions:
    """Everything quantification needs to know about the lungs of one CT."""

    lungs: np.ndarray  # label map: 1 right lung, 2 left lung, 3 airways
    zones: np.ndarray  # 0 outside, 1..12 in ZONE_NAMES order
    zone_names: List[str]
    lobes: Optional[np.ndarray] = None  # 0 outside, 1..5 (lungai.labels), or None when not available
    organ_tops: Optional[np.ndarray] = None  # partial-volume organ tops inside the lungs' outline (not filled)

    @property
    def lung_mask(self) -> np.ndarray:
        return (self.lungs == RIGHT_LUNG) | (self.lungs == LEFT_LUNG)

    @property
    def has_lobes(self) -> bool:
        return self.lobes is not None and bool(np.any(self.lobes))


ORGAN_TOP_FRACTION = 0.5  # a hole with at least this share of its area resting on tissue below it ...
ORGAN_TOP_MM2 = 50.0  # ... (and at least this area) is the top of an organ bulging into the lung ...
ORGAN_TOP_HU = -100.0  # ... when it is partial volume (below this mean HU), not a consolidation


def fill_lungs(lungs: np.ndarray, axes: PatientAxes, hu: Optional[np.ndarray] = None,
               spacing_kji: Optional[Tuple[float, float, float]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Fill holes of each lung slice by slice (vessels and dense lesions that a threshold lung mask leaves out).

    With ``hu``, holes that are the partial-volume top of an organ bulging up into the lung (the diaphragm dome
    over the liver, the heart) are left out: a hole of mean density below ORGAN_TOP_HU with at least
    ORGAN_TOP_FRACTION of its area (and ORGAN_TOP_MM2) resting on tissue outside the lungs on the slice below it,
    or on such a hole. Returns the filled label map and the organ tops left out.
    """
    out = lungs.copy()
    tops = np.zeros(lungs.shape, dtype=bool)
    structure = ndi.generate_binary_structure(3, 1)
    index = [slice(None)] * 3
    index[axes.axial] = [0, 2]
    structure[tuple(index)] = False  # no connection between slices: a 2D fill of every slice at once
    pad = [(0, 0)] * 3
    pad[axes.axial] = (1, 1)
    for label in SIDES:
        mask = lungs == label
        if not mask.any():
            continue
        box = bounding_box(mask, 1)
        sub = np.pad(mask[box], pad)
        inner = tuple(slice(1, -1) if axis == axes.axial else slice(None) for axis in range(3))
        holes = ndi.binary_fill_holes(sub, structure=structure)[inner] & ~mask[box]
        if hu is not None and spacing_kji is not None:
            top = _organ_tops(holes, (lungs[box] > 0) | holes, hu[box], axes, structure, spacing_kji)
            tops[box] |= top
            holes &= ~top
        target = out[box]
        target[holes & (target == 0)] = label
    return out, tops


def _organ_tops(holes: np.ndarray, lung: np.ndarray, hu: np.ndarray, axes: PatientAxes, structure: np.ndarray,
                spacing_kji) -> np.ndarray:
    """The holes (per-slice components) that are partial-volume organ tops (see :func:`fill_lungs`)."""
    components, n = ndi.label(holes, structure=structure)
    if n == 0:
        return np.zeros_like(holes)
    where = np.nonzero(holes)
    ids = components[where]
    size = np.bincount(ids, minlength=n + 1).astype(np.float64)
    dark = np.bincount(ids, weights=hu[where].astype(np.float64), minlength=n + 1) < ORGAN_TOP_HU * size
    pixel_mm2 = float(np.prod([s for axis, s in enumerate(spacing_kji) if axis != axes.axial]))
    # each hole voxel's neighbour towards the feet (none below the most inferior slice)
    below = list(where)
    below[axes.axial] = where[axes.axial] - axes.superior_sign
    known = (below[axes.axial] >= 0) & (below[axes.axial] < holes.shape[axes.axial])
    below = tuple(b[known] for b in below)
    ids_known = ids[known]
    on_tissue = ~lung[below]  # resting on tissue outside the lungs ...
    below_ids = components[below]
    tops = np.zeros(n + 1, dtype=bool)
    for _ in range(holes.shape[axes.axial]):  # ... or on an organ top below (a stack of them)
        resting = on_tissue | tops[below_ids]
        area = np.bincount(ids_known, weights=resting, minlength=n + 1)
        new = dark & (area * pixel_mm2 >= ORGAN_TOP_MM2) & (area >= ORGAN_TOP_FRACTION * size)
        new[0] = False
        if np.array_equal(new, tops):
            break
        tops = new
    return tops[components]


def regions_from_labels(image: Image, lungs: np.ndarray, zones: Optional[np.ndarray] = None,
                        lobes: Optional[np.ndarray] = None, fill: bool = True) -> LungRegions:
    """Build :class:`LungRegions` from a lungs label map; zones are computed when not given.

    ``fill`` closes the holes of each lung per slice so that dense lesions and vessels a threshold-based lung
    mask leaves out still count as lung (zones and lobes are extended into the filled voxels by nearest label),
    except the partial-volume tops of organs (see :func:`fill_lungs`), which are kept in ``organ_tops``.
    """
    lungs = np.asarray(lungs)
    if lungs.shape != image.shape:
        raise ValueError(f"lung label map {lungs.shape} is not on the CT grid {image.shape}")
    axes = PatientAxes.of(image)
    lungs = lungs.astype(np.uint8)
    tops = None
    if fill:
        filled, tops = fill_lungs(lungs, axes, np.asarray(image.array), tuple(reversed(image.spacing)))
        added = filled != lungs
        lungs = filled
        if added.any():
            if zones is not None:
                zones = _extend_labels(np.asarray(zones), lungs, added)
            if lobes is not None:
                lobes = _extend_labels(np.asarray(lobes), lungs, added)
    if zones is None:
        from lungai.lung.zones import compute_zones

        zones = compute_zones(image.like(lungs)).array
    return LungRegions(lungs=lungs, zones=np.asarray(zones).astype(np.uint8), zone_names=list(ZONE_NAMES),
                       organ_tops=tops,
                       lobes=None if lobes is None else np.asarray(lobes).astype(np.uint8))


def _extend_labels(labels: np.ndarray, lungs: np.ndarray, added: np.ndarray, margin: int = 8) -> np.ndarray:
    """Give voxels newly added to the lungs the label of the nearest labelled voxel (searched near them).

    One distance transform per connected group of added voxels, on its box grown by ``margin`` (the added voxels
    are a few scattered holes; one transform over the whole lung would cost seconds on a 512x512x300 CT)."""
    source = labels.astype(np.uint8)
    labels = source.copy()
    if not labels.any():
        return labels
    within = bounding_box(added)
    groups = cc3d.connected_components(added[within], connectivity=26)
    for index, found in enumerate(ndi.find_objects(groups), start=1):
        if found is None:
            continue
        box = tuple(slice(max(0, w.start + s.start - margin), min(size, w.start + s.stop + margin))
                    for w, s, size in zip(within, found, added.shape))
        sub_labels = source[box]
        if not sub_labels.any():
            continue
        target = np.zeros(sub_labels.shape, dtype=bool)
        inner = tuple(slice(w.start + s.start - b.start, w.start + s.stop - b.start)
                      for w, s, b in zip(within, found, box))
        target[inner] = groups[found] == index
        nearest = ndi.distance_transform_edt(sub_labels == 0, return_distances=False, return_indices=True)
        labels[box][target] = sub_labels[tuple(n[target] for n in nearest)]
    labels[(lungs != RIGHT_LUNG) & (lungs != LEFT_LUNG)] = 0
    return labels


def component_boxes(components: np.ndarray, n: int,
                    margin: Sequence[int]) -> Iterator[Tuple[int, int, Tuple[slice, ...]]]:
    """Id, voxel count and bounding box (grown by ``margin`` voxels per axis, clipped to the grid) of each of the
    ``n`` components of a cc3d label map."""
    stats = cc3d.statistics(components)
    for cid in range(1, n + 1):
        found = stats["bounding_boxes"][cid]
        yield cid, int(stats["voxel_counts"][cid]), tuple(
            slice(max(0, f.start - m), min(size, f.stop + m)) for f, m, size in zip(found, margin, components.shape))


def replaced_in_box(full: np.ndarray, box: Tuple[slice, ...], part: np.ndarray) -> np.ndarray:
    """A copy of ``full`` whose ``box`` holds ``part`` (for work done on a mask's bounding box only)."""
    out = full.copy()
    out[box] = part
    return out
