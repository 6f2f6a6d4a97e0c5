"""Space-filling bronchovascular trees: bronchi with their companion pulmonary arteries, and pulmonary veins.

Each lobe gets its own tree grown from the lobar bronchus into points scattered through the lobe: a node's
points are split in two along their principal axis, each half gets a child branch aimed at its centroid and
radii follow Murray's law (r^3 shared in proportion to the tissue supplied). Arteries run beside the bronchi,
offset perpendicular to them; veins are a separate tree draining to the left atrium between the bronchovascular
bundles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from lungai.labels import LLL, LUL, RLL, RML, RUL
from lungai.phantom.grid import Capsule

LOBE_SIDE = {RUL: -1, RML: -1, RLL: -1, LUL: 1, LLL: 1}
LOBE_BRONCHUS = {RUL: "rul_end", RML: "rml_end", RLL: "rll_end", LUL: "lul_end", LLL: "lll_end"}


@dataclass
class Branch:
    """One tube of a tree with its lobe, generation below the lobar root and (for arteries) clinical level."""

    capsule: Capsule
    lobe: int
    depth: int
    level: str = ""

    @property
    def radius(self) -> float:
        return 0.5 * (self.capsule.r0 + self.capsule.r1)


def _grow(root: np.ndarray, points: np.ndarray, r_root: float, r_min: float, rng: np.random.Generator,
          lobe: int) -> List[Branch]:
    """Grow one tree from ``root`` through ``points`` (N, 3); returns its branches, root segment first."""
    branches: List[Branch] = []
    stack = [(root.astype(np.float32), points, r_root, 0)]
    while stack:
        node, pts, r, depth = stack.pop()
        centre = pts.mean(axis=0)
        if len(pts) < 4 or r < r_min or depth > 18:
            if np.linalg.norm(centre - node) > r:
                branches.append(Branch(Capsule(node, centre.astype(np.float32), r, 0.8 * r), lobe, depth))
            continue
        cov = np.cov((pts - centre).T)
        axis = np.linalg.eigh(cov)[1][:, -1]
        proj = (pts - centre) @ axis
        split = np.median(proj)
        halves = [pts[proj < split], pts[proj >= split]]
        if min(len(h) for h in halves) == 0:
            continue
        frac = rng.uniform(0.3, 0.5) if depth > 0 else rng.uniform(0.15, 0.3)
        bp = (node + frac * (centre - node)).astype(np.float32)
        branches.append(Branch(Capsule(node, bp, r, r * 0.97), lobe, depth))
        n = float(len(pts))
        for half in halves:
            stack.append((bp, half, r * (len(half) / n) ** (1.0 / 3.0), depth + 1))
    return branches


def _companion(branches: List[Branch], side: int, gap: float) -> List[Branch]:
    """Tubes running beside ``branches`` (arteries beside bronchi), offset perpendicular to each branch.

    The offset is defined per node, so the companion tree stays connected at every branching.
    """
    ref = np.asarray([side * 0.6, -0.5, 0.62], dtype=np.float32)
    offsets: Dict[bytes, np.ndarray] = {}

    def offset_for(point: np.ndarray, direction: np.ndarray, radius: float) -> np.ndarray:
        key = point.tobytes()
        if key not in offsets:
            dvec = direction / (np.linalg.norm(direction) + 1e-6)
            perp = ref - (ref @ dvec) * dvec
            if np.linalg.norm(perp) < 1e-3:
                perp = np.cross(dvec, np.asarray([1.0, 0, 0], dtype=np.float32))
            offsets[key] = perp / np.linalg.norm(perp) * (radius * (1.8 + gap))
        return offsets[key]

    out = []
    for b in branches:
        c = b.capsule
        direction = c.p1 - c.p0
        o0 = offset_for(c.p0, direction, c.r0)
        o1 = offset_for(c.p1, direction, c.r1)
        out.append(Branch(Capsule(c.p0 + o0, c.p1 + o1, c.r0, c.r1), b.lobe, b.depth))
    return out


def artery_level(depth: int, radius: float) -> str:
    if depth == 0:
        return "lobar"
    if depth <= 2:
        return "segmental"
    if depth <= 4 and radius >= 0.9:
        return "subsegmental"
    return "distal"


@dataclass
class LungTrees:
    bronchi: List[Branch]
    arteries: List[Branch]
    veins: List[Branch]
    hilar_arteries: List[Branch]
    hilar_veins: List[Branch]


def build_trees(landmarks: Dict[str, np.ndarray], lobe_points: Dict[int, np.ndarray], scale: float,
                r_min: float, rng: np.random.Generator) -> LungTrees:
    """Bronchi, arteries and veins of all five lobes, plus the hilar arteries and veins joining them."""
    s = scale
    bronchi: List[Branch] = []
    arteries: List[Branch] = []
    veins: List[Branch] = []
    hilar_a: List[Branch] = []
    hilar_v: List[Branch] = []
    la = landmarks["left_atrium"]
    for lobe, pts in lobe_points.items():
        side = LOBE_SIDE[lobe]
        root = landmarks[LOBE_BRONCHUS[lobe]]
        if len(pts) < 8:
            continue
        r_root = (5.5 if lobe != RML else 4.0) * s
        tree = _grow(root, pts, r_root, r_min, rng, lobe)
        bronchi.extend(tree)
        companion = _companion(tree, side, 0.3)
        for b in companion:
            b.capsule.r0 *= 1.05
            b.capsule.r1 *= 1.05
            b.level = artery_level(b.depth, b.radius)
        arteries.extend(companion)
        hilum = landmarks["hilum_r" if side < 0 else "hilum_l"]
        hilar_a.append(Branch(Capsule(hilum, companion[0].capsule.p0, 8.0 * s, companion[0].capsule.r0), lobe, -1,
                              "lobar"))
        # veins: an independent tree from a root below and behind the bronchus, draining to the left atrium
        vroot = (root + np.asarray([side * -3.0, 5.0, -14.0], dtype=np.float32) * s).astype(np.float32)
        vpts = pts[rng.permutation(len(pts))] + rng.normal(0, 4.0 * s, pts.shape).astype(np.float32)
        vtree = _grow(vroot, vpts, r_root * 1.1, r_min, rng, lobe)
        veins.extend(vtree)
        hilar_v.append(Branch(Capsule(la + np.asarray([side * 14 * s, 0, 0], dtype=np.float32), vroot,
                                      7.0 * s, r_root * 1.1), lobe, -1))
    return LungTrees(bronchi, arteries, veins, hilar_a, hilar_v)


def sample_lobe_points(lobes: np.ndarray, grid, per_ml: float, rng: np.random.Generator,
                       max_points: Optional[int] = 4000) -> Dict[int, np.ndarray]:
    """Random points (N, 3) in LPS mm filling each lobe of a coarse lobe label map."""
    out = {}
    voxel_ml = float(np.prod(grid.spacing)) / 1000.0
    for lobe in (RUL, RML, RLL, LUL, LLL):
        idx = np.argwhere(lobes == lobe)
        if len(idx) == 0:
            out[lobe] = np.zeros((0, 3), dtype=np.float32)
            continue
        n = int(min(max_points or 10 ** 9, max(8, len(idx) * voxel_ml * per_ml)))
        pick = idx[rng.choice(len(idx), size=min(n, len(idx)), replace=len(idx) < n)]
        kji = pick + rng.uniform(-0.5, 0.5, pick.shape)
        xyz = np.asarray(grid.origin)[None] + kji[:, ::-1] * np.asarray(grid.spacing)[None]
        out[lobe] = xyz.astype(np.float32)
    return out
