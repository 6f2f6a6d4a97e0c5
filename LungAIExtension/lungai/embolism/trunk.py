"""Finding the contrast-enhanced pulmonary trunk, which also decides whether a scan is a CTPA at all.

On a coarse (about 2 mm) copy of the scan the detector raises a blood threshold until no enhanced vessel
system joins the vessels deep in the right lung to those deep in the left lung. In a CTPA the last system
standing is the pulmonary artery (with the right heart): it is the brightest blood, and the pulmonary veins,
left atrium and aorta are less enhanced or not joined to both lungs. The bifurcation is the point of that
system outside the lungs midway on the shortest path from one lung to the other, where the trunk divides;
its lumen density there decides the CTPA adequacy. A scan without such a system above ``BRIGHT_HU`` is not a CTPA.
A central (saddle or main) embolus can split the enhanced lumen of the trunk, so that the two lungs' arteries join
only at the lowest threshold, through the heart chambers: then blood within ``BRIDGE_MM`` of each other counts
as joined and the search is repeated, so that the clot does not put the trunk in the blood pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from scipy import ndimage
from skimage.graph import MCP_Geometric

from lungai.embolism.volume import WorkVolume
from lungai.errors import InputError

COARSE_MM = 2.0
BRIGHT_HU = 170.0          # enhanced blood; unenhanced blood is 30-60 HU
CTPA_MIN_TRUNK_HU = 200.0  # the usual adequacy limit of a CTPA is 200-250 HU in the pulmonary trunk
MIN_LUNG_VESSEL_ML = 0.15  # enhanced vessel volume the system must reach deep in each lung
THRESHOLD_STEP_HU = 20.0
TRUNK_RADIUS_MM = 30.0     # the trunk's density is read within this distance of the bifurcation
BRIDGE_MM = 4.0            # enhanced blood this close counts as one system (across a clot splitting the lumen)
GAP_COST = 10.0            # path cost per mm across such a gap, relative to 1 through blood


@dataclass
class Trunk:
    """The pulmonary trunk found on the coarse grid, and the enhanced pulmonary artery system there."""

    point: Tuple[int, int, int]         # canonical index (full grid) of the trunk at its bifurcation
    hu: float                           # median HU of the enhanced blood around it
    system_threshold_hu: float          # highest blood threshold at which one system still feeds both lungs
    system: np.ndarray                  # coarse boolean mask of that system
    factors: Tuple[int, int, int]       # coarse grid step (voxels) per canonical axis

    def to_dict(self, vol: WorkVolume) -> dict:
        lps = vol.index_to_lps(np.asarray([self.point]))[0]
        return {"trunk_bifurcation_lps": [round(float(c), 1) for c in lps], "trunk_hu": round(self.hu, 1),
                "system_threshold_hu": self.system_threshold_hu}


def coarse_factors(spacing) -> Tuple[int, int, int]:
    return tuple(max(1, int(round(COARSE_MM / s))) for s in spacing)


def _system_at(hu: np.ndarray, core_r: np.ndarray, core_l: np.ndarray, threshold: float, vml: float,
               bridge: np.ndarray):
    """(system, bridged system) joining both lungs' vessels above ``threshold``, or None.

    Connectivity is judged on the blood dilated by ``bridge`` (a gap left by a clot is crossed); the system is
    the blood of the winning component, the bridged system that component itself (for the path between lungs).
    """
    blood = hu > threshold
    labels, n = ndimage.label(ndimage.binary_dilation(blood, structure=bridge), structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return None
    in_r = np.bincount(labels[core_r & blood], minlength=n + 1) * vml
    in_l = np.bincount(labels[core_l & blood], minlength=n + 1) * vml
    both = np.minimum(in_r, in_l)
    both[0] = 0
    best = int(np.argmax(both))
    if both[best] < MIN_LUNG_VESSEL_ML:
        return None
    joined = labels == best
    return joined & blood, joined


def _highest_system(hu: np.ndarray, core_r: np.ndarray, core_l: np.ndarray, ladder: np.ndarray, vml: float,
                    bridge: np.ndarray):
    """(system, bridged system, threshold) at the highest rung of ``ladder`` joining both lungs, by bisection."""
    system, joined, threshold = None, None, float(ladder[0])
    lo, hi = 0, len(ladder) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        found = _system_at(hu, core_r, core_l, float(ladder[mid]), vml, bridge)
        if found is None:
            hi = mid - 1
        else:
            (system, joined), threshold = found, float(ladder[mid])
            lo = mid + 1
    return system, joined, threshold


def _bridge(spacing) -> np.ndarray:
    """Ellipsoidal structuring element of radius ``BRIDGE_MM / 2`` (at least the 6-neighbour cross)."""
    r = [max(1, int(BRIDGE_MM / 2 // s)) for s in spacing]
    zz, yy, xx = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    return (zz / r[0]) ** 2 + (yy / r[1]) ** 2 + (xx / r[2]) ** 2 <= 1.0


def find_trunk(vol: WorkVolume, source: Optional[str] = None) -> Trunk:
    """The enhanced pulmonary trunk; :class:`InputError` ``not a CTPA: ...`` when there is none."""
    factors = coarse_factors(vol.spacing)
    sl = tuple(slice(f // 2, None, f) for f in factors)
    hu, lungs = vol.hu[sl], vol.lungs[sl]
    spacing = tuple(s * f for s, f in zip(vol.spacing, factors))
    vml = float(np.prod(spacing)) / 1000.0
    if not (lungs == 1).any() or not (lungs == 2).any():
        raise InputError(source, "not a CTPA: both lungs must be in the field of view to find the pulmonary "
                                 "arteries, and " + ("only one lung was" if lungs.any() else "no lung was")
                         + " found")
    core_r = ndimage.binary_erosion(lungs == 1, iterations=2)
    core_l = ndimage.binary_erosion(lungs == 2, iterations=2)
    # highest threshold (on a 20 HU ladder) at which one system still joins both lungs, by bisection
    top = float(np.percentile(hu[(lungs == 0)], 99.9))
    ladder = np.arange(BRIGHT_HU, max(top, BRIGHT_HU) + THRESHOLD_STEP_HU, THRESHOLD_STEP_HU)
    system, joined, threshold = _highest_system(hu, core_r, core_l, ladder, vml, np.ones((1, 1, 1), bool))
    if system is None or threshold == ladder[0]:
        # at the lowest rung the whole blood pool joins the lungs: try again across a clot splitting the trunk
        bridged = _highest_system(hu, core_r, core_l, ladder, vml, _bridge(spacing))
        if bridged[0] is not None and (system is None or bridged[2] > threshold):
            system, joined, threshold = bridged
    if system is None:
        raise _not_ctpa(hu, lungs, source, f"no enhanced vessel system (blood above {BRIGHT_HU:.0f} HU) joins "
                                           "the vessels of the two lungs")
    outside = system & (lungs == 0)
    if not outside.any():
        raise _not_ctpa(hu, lungs, source, "the enhanced vessels do not leave the lungs towards the heart")
    bif, blood_hu = _bifurcation(system, joined, joined & (lungs == 0), core_r, core_l, hu, spacing)
    # the system's blood around the bifurcation, without the undiluted contrast of a vena cava
    near = outside & ball_mask(hu.shape, bif, TRUNK_RADIUS_MM, spacing) & (hu < 2.0 * threshold)
    trunk_hu = float(np.median(hu[near])) if near.any() else blood_hu
    if trunk_hu < CTPA_MIN_TRUNK_HU:
        raise _not_ctpa(hu, lungs, source, f"the pulmonary trunk measures only {trunk_hu:.0f} HU")

    def full(p):
        return tuple(int(c * f + f // 2) for c, f in zip(p, factors))

    return Trunk(point=full(bif), hu=trunk_hu,
                 system_threshold_hu=threshold, system=system, factors=factors)


def ball_mask(shape, centre, radius_mm: float, spacing) -> np.ndarray:
    """Voxels of an array of ``shape`` within ``radius_mm`` of the index ``centre``."""
    zz, yy, xx = np.ogrid[tuple(slice(0, n) for n in shape)]
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip((zz, yy, xx), centre, spacing))
    return d2 <= radius_mm ** 2


def _bifurcation(system: np.ndarray, joined: np.ndarray, outside: np.ndarray, core_r: np.ndarray,
                 core_l: np.ndarray, hu: np.ndarray, spacing) -> Tuple[Tuple[int, int, int], float]:
    """The midpoint of the shortest path (within the bridged system ``joined``, outside the lungs) from right to
    left lung vessels, and the median blood HU of the system along that path."""
    cost = np.where(system, 1.0, np.where(joined, GAP_COST, np.inf))  # the path keeps to blood where it can
    dist = []
    for core in (core_r, core_l):
        seeds = np.argwhere(system & core)
        dist.append(MCP_Geometric(cost, sampling=spacing).find_costs(seeds)[0])
    total = np.where(outside, dist[0] + dist[1], np.inf)
    path = total <= total.min() + 2 * max(spacing)
    with np.errstate(invalid="ignore"):
        balance = np.where(path, np.abs(dist[0] - dist[1]), np.inf)
    bif = tuple(int(c) for c in np.unravel_index(int(np.argmin(balance)), total.shape))
    on_blood = path & system
    return bif, float(np.median(hu[on_blood if on_blood.any() else path]))


def _not_ctpa(hu: np.ndarray, lungs: np.ndarray, source: Optional[str], why: str) -> InputError:
    """The 'not a CTPA' error, with the blood density measured between the lungs."""
    between = np.zeros(lungs.shape, dtype=bool)
    cols = np.nonzero(lungs.any(axis=(0, 1)))[0]
    rows = np.nonzero(lungs.any(axis=(0, 2)))[0]
    if len(cols) and len(rows):
        between[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = True
    soft = between & (lungs == 0) & (hu > 0) & (hu < 600)
    blood = f"; soft tissue and blood between the lungs measure a median {np.median(hu[soft]):.0f} HU" \
        if soft.any() else ""
    return InputError(source, f"not a CTPA: {why}{blood}. A CT pulmonary angiogram shows the pulmonary trunk "
                              f"enhanced above {CTPA_MIN_TRUNK_HU:.0f} HU; embolus detection needs one")
