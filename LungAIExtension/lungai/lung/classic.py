"""Classic (weight-free) lung segmentation: thresholds, connectivity, airway tracking, junction splitting and
dense-lung recovery on a ~2 mm working grid, mapped back exactly to the input grid.

Works on any orientation (canonical [S, P, L] view), spacing and field of view. Inputs only a few slices thick
(e.g. two-slice crops) go through the same steps slice by slice ("planar" mode, no trachea tracking).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from scipy import ndimage

from lungai.arrays import bounding_box
from lungai.errors import InputError
from lungai.image import Image
from lungai.labels import AIRWAYS, LEFT_LUNG, RIGHT_LUNG
from lungai.lung.airways import find_trachea, grow_airways, remove_intrapulmonary
from lungai.lung.body import PURE_AIR_HU, body_interior, outside_air
from lungai.lung.grid import WorkGrid, upsample_labels
from lungai.lung.morphology import FACES, PLANAR, ball, fill_holes_slices, label
from lungai.lung.orientation import Reorientation
from lungai.lung.recovery import hilar_zone, recover_dense_lung
from lungai.lung.separation import separate
from lungai.progress import Progress, ensure

AIR_HU = -400.0               # aerated lung / tissue boundary (half-way between parenchyma and soft tissue)
TARGET_MM = 2.0               # working grid spacing
PLANAR_MAX_EXTENT_MM = 24.0   # thinner inputs are segmented slice by slice
LUNG_MAX_MEAN_HU = -450.0     # an air region denser than this on average is not lung
MAX_PURE_AIR_FRACTION = 0.45  # ... nor one mostly darker than PURE_AIR_HU (bowel or stomach gas)
MIN_CORE_FRACTION = 0.1       # ... nor a thin sheet (foam pads, the gap between table and back)
MIN_GAS_ML = 5.0              # smallest gas pocket split off the lung behind a thin wall
MAX_PURE_AIR_FRACTION_NO_TRACHEA = 0.3  # stricter when no trachea anchors the lungs
TOP_REACH_MM = 10.0           # without a trachea in view, lung reaches this close to the top of the scan
MIN_LUNG_ML = 40.0            # less lung than this in the field of view is "no lungs"
MIN_LUNG_AREA_MM2 = 400.0     # same, per slice, for planar inputs
CLOSING_MM = 3.0
ORGAN_TOP_MM2 = 400.0        # holes resting on this much tissue below are an organ's top, not vessels


@dataclass
class ClassicDetails:
    """What the classic pipeline found, for provenance and debugging."""

    planar: bool
    working_spacing_mm: Tuple[float, float, float]
    trachea_found: bool = False
    recovered_ml: float = 0.0


def _lung_like(labels: np.ndarray, n: int, hu: np.ndarray, mask: np.ndarray,
               planar: bool) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel count of each component, whether its density and shape are those of lung rather than tissue or a
    thin sheet of air, and its fraction of voxels as dark as pure gas.

    Gas in bowel, stomach or outside the body is mostly darker than :data:`PURE_AIR_HU` even on the averaged
    grid; aerated lung (emphysema included) mostly is not, and its mean stays well below soft tissue. Foam
    pads and the air gap between table and back are lung-dark but only a voxel or two thick: lung has a core
    that survives a one-voxel erosion.
    """
    flat = labels[mask]
    values = hu[mask]
    counts = np.bincount(flat, minlength=n + 1)
    means = np.bincount(flat, weights=values, minlength=n + 1) / np.maximum(counts, 1)
    pure = np.bincount(flat, weights=values < PURE_AIR_HU, minlength=n + 1) / np.maximum(counts, 1)
    core = ndimage.binary_erosion(mask, PLANAR if planar else FACES)
    cored = np.bincount(labels[core], minlength=n + 1) / np.maximum(counts, 1)
    lung_like = (means < LUNG_MAX_MEAN_HU) & (cored >= MIN_CORE_FRACTION)
    lung_like[0] = False
    return counts, lung_like, pure


def _touches_side(labels: np.ndarray, n: int) -> np.ndarray:
    touching = np.zeros(n + 1, dtype=bool)
    for face in (labels[:, 0, :], labels[:, -1, :], labels[:, :, 0], labels[:, :, -1]):
        touching[np.unique(face)] = True
    touching[0] = False
    return touching


def _midline_x(body: np.ndarray, lungs: np.ndarray, trachea: Optional[np.ndarray]) -> float:
    if trachea is not None:
        return float(np.nonzero(trachea)[2].mean())
    rows = body[lungs.any(axis=(1, 2))] if lungs.any() else body
    columns = np.flatnonzero(rows.any(axis=(0, 1)))
    return 0.5 * (columns[0] + columns[-1]) if columns.size else body.shape[2] / 2.0


def _select_lungs(hu: np.ndarray, candidates: np.ndarray, body: np.ndarray, spacing: Tuple[float, float, float],
                  planar: bool, details: ClassicDetails) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """(lung air without airways, airway lumen, trachea seed) from the candidate air inside the body."""
    voxel_ml = float(np.prod(spacing)) / 1000.0
    labels, n = label(candidates, planar)
    counts, lung_like, pure = _lung_like(labels, n, hu, candidates, planar)
    if planar:
        big = counts * spacing[1] * spacing[2] >= MIN_LUNG_AREA_MM2 / 4
    else:
        big = counts * voxel_ml >= 5.0
    airways = np.zeros_like(candidates)
    seed = None
    if not planar and (lung_like & big & (pure < MAX_PURE_AIR_FRACTION)).any():
        lungs_air = (lung_like & big & (pure < MAX_PURE_AIR_FRACTION))[labels]
        seed = find_trachea(hu, candidates, body, spacing, lungs_air)
    if seed is not None:
        details.trachea_found = True
        airways = grow_airways(hu, seed, candidates, voxel_ml)
        tree = np.unique(labels[airways])
        tree = tree[tree > 0]
        main_ml = counts[tree].sum() * voxel_ml
        side = _touches_side(labels, n)
        keep = np.zeros(n + 1, dtype=bool)
        keep[tree] = True
        # other big lung-dark regions count when they lie within the box of the airway-connected lungs (a lung
        # part cut off at the working resolution), not below or beside it (table, pads, bowel)
        in_tree = np.zeros(n + 1, dtype=bool)
        in_tree[tree] = True
        box = bounding_box(in_tree[labels], margin=2)
        within = np.bincount(labels[box][candidates[box]], minlength=n + 1) / np.maximum(counts, 1)
        keep |= (lung_like & ~side & (pure < MAX_PURE_AIR_FRACTION) & (within > 0.9)
                 & (counts * voxel_ml >= max(20.0, 0.03 * main_ml)))
    else:
        # no trachea in view: the field of view starts below the carina, so lung reaches its top slices
        # (gas in bowel below the diaphragm and pads under the patient do not); pure-gas regions are not lung
        keep = lung_like & big & (pure < MAX_PURE_AIR_FRACTION_NO_TRACHEA)
        if not planar:
            top = labels[-max(1, int(round(TOP_REACH_MM / spacing[0]))):]
            reaches_top = np.zeros(n + 1, dtype=bool)
            reaches_top[np.unique(top)] = True
            interior = np.bincount(labels[candidates & body_interior(hu)], minlength=n + 1) / np.maximum(counts, 1)
            keep &= reaches_top & (interior > 0.5)
        largest = counts[keep].max() if keep.any() else 0
        keep &= counts >= 0.1 * largest
    keep[0] = False
    lungs = keep[labels] & ~airways
    # pieces cut off by removing the airways (bronchus walls at the working resolution) are dropped
    pieces, m = label(lungs, planar)
    if m:
        sizes = np.bincount(pieces.ravel(), minlength=m + 1)
        small = sizes * (spacing[1] * spacing[2] if planar else voxel_ml) < (
            MIN_LUNG_AREA_MM2 / 8 if planar else 2.0)
        small[0] = False
        lungs &= ~small[pieces]
    if not planar and lungs.any():
        box = bounding_box(lungs, margin=1)
        lungs[box] &= ~_gas_behind_thin_walls(lungs[box], hu[box], voxel_ml)
    return lungs, airways, seed


def _gas_behind_thin_walls(lungs: np.ndarray, hu: np.ndarray, voxel_ml: float) -> np.ndarray:
    """Gas joined to the lung only through a wall thinner than a working voxel (stomach fundus under a thin
    hemidiaphragm): after a one-voxel erosion it is a separate piece, mostly darker than PURE_AIR_HU, which lung
    (emphysema included) is not on the averaged grid. Returned with its one-voxel rim."""
    core = ndimage.binary_erosion(lungs, FACES)
    pieces, n = label(core)
    if n < 2:
        return np.zeros_like(lungs)
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)
    pure = np.bincount(pieces.ravel(), weights=(hu < PURE_AIR_HU).ravel(), minlength=n + 1) / np.maximum(sizes, 1)
    gas = (pure >= MAX_PURE_AIR_FRACTION) & (sizes * voxel_ml >= MIN_GAS_ML)
    gas[0] = False
    gas[np.argmax(np.where(np.arange(n + 1) > 0, sizes, 0))] = False
    if not gas.any():
        return np.zeros_like(lungs)
    found = gas[pieces]
    others = core & ~found
    cube = np.ones((3, 3, 3), dtype=bool)
    return lungs & ndimage.binary_dilation(found, cube) & ~ndimage.binary_dilation(others, cube) | found


def _organ_tops(filled: np.ndarray, walls: np.ndarray, spacing: Tuple[float, float, float]) -> np.ndarray:
    """Holes of a lung's slices that are the top of an organ under it, not vessels: 3D stacks of holes resting on
    tissue outside the lung over at least ORGAN_TOP_MM2 (the apex of the liver or spleen dome, cut by an axial
    slice, is an island inside the lung; a vessel ending on the hilum rests on a few mm^2)."""
    holes = filled & ~walls
    if not holes.any():
        return holes
    stacks, n = label(holes)
    resting = np.zeros_like(holes)
    resting[1:] = holes[1:] & ~filled[:-1]
    area = np.bincount(stacks[resting], minlength=n + 1) * spacing[1] * spacing[2]
    tops = area >= ORGAN_TOP_MM2
    tops[0] = False
    return tops[stacks]


def _fill_lung(labels: np.ndarray, spacing: Tuple[float, float, float], planar: bool) -> np.ndarray:
    """Vessels and airway walls inside each lung filled: hole filling per slice and a small closing."""
    out = labels.copy()
    element = ball(CLOSING_MM, spacing, planar)
    margin = max(element.shape) // 2 + 1
    for side in (RIGHT_LUNG, LEFT_LUNG):
        mask = labels == side
        if not mask.any():
            continue
        box = bounding_box(mask, margin)
        sub = np.pad(mask[box], margin)
        closed = ndimage.binary_closing(sub, element)[margin:-margin, margin:-margin, margin:-margin] | mask[box]
        filled = fill_holes_slices(closed)
        if not planar:
            filled &= ~_organ_tops(filled, closed, spacing)
        closed = filled
        region = out[box]
        region[closed & (region == 0)] = side
    return out


def segment_working(hu: np.ndarray, spacing: Tuple[float, float, float], planar: bool,
                    progress: Optional[Progress] = None) -> Tuple[np.ndarray, ClassicDetails]:
    """Lung labels (1 right, 2 left, 3 airways) on the canonical working grid."""
    progress = ensure(progress)
    details = ClassicDetails(planar=planar, working_spacing_mm=tuple(spacing))
    air = hu < AIR_HU
    body = ~outside_air(hu, air)
    progress.update(0.1, "finding the air inside the body")
    candidates = air & body
    lungs, airways, seed = _select_lungs(hu, candidates, body, spacing, planar, details)
    voxel = float(np.prod(spacing)) / 1000.0
    if planar:
        area = lungs.sum(axis=(1, 2)).max() * spacing[1] * spacing[2] if lungs.any() else 0.0
        if area < MIN_LUNG_AREA_MM2:
            raise InputError(None, f"no lungs in the field of view: the largest lung-like air region is "
                                   f"{area:.0f} mm^2 (a chest CT slice holds at least {MIN_LUNG_AREA_MM2:.0f}); "
                                   "is this a chest CT?")
    elif lungs.sum() * voxel < MIN_LUNG_ML:
        raise InputError(None, f"no lungs in the field of view: only {lungs.sum() * voxel:.0f} ml of lung-like air "
                               f"inside the body (need at least {MIN_LUNG_ML:.0f} ml); this does not look like a "
                               "chest CT (a head, neck or extremity scan, or a field of view below the lungs)")
    progress.update(0.3, "separating right and left lung")
    midline = _midline_x(body, lungs, seed)
    labels = separate(lungs, hu, spacing, midline, planar)
    labels = _fill_lung(labels, spacing, planar)
    progress.update(0.5, "recovering dense lung at the chest wall")
    before = np.count_nonzero(labels)
    hilum = hilar_zone(airways, labels > 0, spacing) if airways.any() else None
    labels = recover_dense_lung(labels, hu, body, spacing, progress.span(0.5, 0.9), planar, hilum)
    labels = _fill_lung(labels, spacing, planar)
    details.recovered_ml = float((np.count_nonzero(labels) - before) * voxel)
    if airways.any():
        airways = remove_intrapulmonary(airways, (labels > 0) & ~airways, spacing[1] * spacing[2])
        labels[airways] = AIRWAYS
    progress.update(1.0, "lungs labelled")
    return labels, details


def is_planar(shape: Tuple[int, int, int], spacing: Tuple[float, float, float]) -> bool:
    return shape[0] * spacing[0] < PLANAR_MAX_EXTENT_MM or shape[0] < 6


def segment_classic(image: Image, progress: Optional[Progress] = None) -> Tuple[np.ndarray, ClassicDetails]:
    """Lung label array on the input grid of a 3D CT in HU (see module docstring)."""
    progress = ensure(progress)
    reo = Reorientation.of(image)
    fine = reo.to_canonical(image.array)
    planar = is_planar(fine.shape, reo.spacing)
    grid = WorkGrid.choose(fine.shape, reo.spacing, TARGET_MM, planar)
    progress.update(0.02, "resampling to the working grid")
    hu = grid.shrink(fine)
    labels, details = segment_working(hu, grid.coarse_spacing, planar, progress.span(0.05, 0.9))
    progress.update(0.92, "mapping the lungs back to full resolution")
    fine_labels = upsample_labels(grid, labels, hu, fine, AIR_HU)
    return reo.from_canonical(fine_labels), details
