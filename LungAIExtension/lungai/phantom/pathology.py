"""Pneumonia lesions, nodules and pulmonary emboli: where they go, how they look, and their exact truth.

Lesions are painted only over lung parenchyma (vessels, bronchial walls and lumens stay, giving visible vessels
in ground glass and air bronchograms in consolidation); their truth is clipped to the lungs. Emboli are filling
defects inside the contrast-filled arterial lumen; their truth is clipped to the arteries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy.spatial import cKDTree

from lungai.labels import CONSOLIDATION, GROUND_GLASS, LEFT_LUNG, LLL, LUL, RIGHT_LUNG, RLL, RML, RUL
from lungai.phantom.anatomy import Patient
from lungai.phantom.grid import Capsule, Grid, occupancy, smooth_noise
from lungai.phantom.render import Volumes, _blend
from lungai.phantom.trees import LOBE_BRONCHUS, LOBE_SIDE, Branch


@dataclass
class LesionSpec:
    """One lesion to paint: an irregular ellipsoid (or a lobe region for lobar pneumonia)."""

    kind: str  # ground_glass | crazy_paving | consolidation | nodule | part_solid_nodule | lobar_consolidation
    centre: np.ndarray
    radii: np.ndarray
    hu: float
    lesion_class: int
    edge_mm: float
    irregularity: float = 0.3
    lobe: int = 0
    fraction: float = 0.0
    extra: Dict[str, float] = field(default_factory=dict)


# -- planning -----------------------------------------------------------------------------------------------
def _candidate_points(lung_field: np.ndarray, lobes: np.ndarray, cgrid: Grid, depth: Tuple[float, float],
                      patient: Patient, posterior_bias: float, basal_bias: float) -> Tuple[np.ndarray, np.ndarray,
                                                                                             np.ndarray]:
    """Coarse voxel centres (xyz mm) whose depth below the pleura lies in ``depth``, with sampling weights."""
    sel = (lung_field <= -depth[0]) & (lung_field >= -depth[1]) & (lobes > 0)
    idx = np.argwhere(sel)
    xyz = np.asarray(cgrid.origin)[None] + idx[:, ::-1] * np.asarray(cgrid.spacing)[None]
    d = patient.derived
    yn = (xyz[:, 1] - d["y_c"]) / d["b_c"]
    zn = (xyz[:, 2] - d["z_recess"]) / patient.lung_height
    w = np.exp(posterior_bias * yn - basal_bias * zn)
    return xyz.astype(np.float32), w / w.sum(), lobes[sel]


def plan_lesions(preset: str, patient: Patient, lung_field: np.ndarray, lobes: np.ndarray, cgrid: Grid,
                 rng: np.random.Generator, count: Optional[int], scale: float,
                 nodule_count: Optional[int]) -> List[LesionSpec]:
    s = patient.scale * scale
    u = rng.uniform
    specs: List[LesionSpec] = []
    if preset.startswith("covid"):
        severity = preset.split("-")[1]
        n = count if count is not None else {"mild": rng.integers(2, 5), "moderate": rng.integers(6, 11),
                                            "severe": rng.integers(12, 19)}[severity]
        size = {"mild": (7, 14), "moderate": (12, 26), "severe": (20, 42)}[severity]
        p_cons = {"mild": 0.0, "moderate": 0.25, "severe": 0.4}[severity]
        p_paving = {"mild": 0.1, "moderate": 0.35, "severe": 0.35}[severity]
        for i in range(int(n)):
            consolidation = u() < p_cons
            depth = (0.0, 3.0) if consolidation and severity == "severe" else (2.0, 14.0)
            pts, w, _ = _candidate_points(lung_field, lobes, cgrid, depth, patient, 2.0, 1.5)
            if severity != "mild":  # bilateral: alternate the sides
                side = (pts[:, 0] < 0) if i % 2 == 0 else (pts[:, 0] >= 0)
                pts, w = pts[side], w[side] / max(w[side].sum(), 1e-12)
            if len(pts) == 0:
                break
            centre = pts[rng.choice(len(pts), p=w)] + rng.normal(0, 2, 3).astype(np.float32)
            r = u(*size) * s
            radii = np.asarray([r * u(0.7, 1.3), r * u(0.7, 1.3), r * u(0.8, 1.5)], dtype=np.float32)
            if consolidation:
                specs.append(LesionSpec("consolidation", centre, radii * 0.8, u(10, 50), CONSOLIDATION, 1.0, 0.35))
            elif u() < p_paving:
                specs.append(LesionSpec("crazy_paving", centre, radii, u(-650, -500), GROUND_GLASS, 3.0, 0.35,
                                        extra=dict(cell_mm=u(6, 10) * patient.scale, septal_hu=u(220, 320))))
            else:
                specs.append(LesionSpec("ground_glass", centre, radii, u(-700, -450), GROUND_GLASS, 3.5, 0.4))
    elif preset == "bacterial":
        lobe = int(rng.choice([RLL, LLL, RUL, RLL, LLL, RML, LUL]))
        root = patient.landmarks()[LOBE_BRONCHUS[lobe]]
        frac = float(min(0.95, u(0.6, 0.9) * scale))
        seed = int(rng.integers(2 ** 31))
        specs.append(LesionSpec("ground_glass", root, np.zeros(3, np.float32), u(-600, -400), GROUND_GLASS, 3.0,
                                lobe=lobe, fraction=-1.0, extra=dict(core_fraction=frac, noise_seed=seed)))
        specs.append(LesionSpec("lobar_consolidation", root, np.zeros(3, np.float32), u(15, 45), CONSOLIDATION,
                                1.5, lobe=lobe, fraction=frac, extra=dict(noise_seed=seed)))
    if preset == "nodules" or nodule_count:
        n = nodule_count if nodule_count is not None else int(rng.integers(3, 8))
        pts, w, _ = _candidate_points(lung_field, lobes, cgrid, (6.0, 60.0), patient, 0.0, -0.8)
        for i in range(int(n)):
            if len(pts) == 0:
                break
            centre = pts[rng.choice(len(pts), p=w)] + rng.normal(0, 1.5, 3).astype(np.float32)
            r = u(2.0, 6.5) * s
            radii = np.asarray([r * u(0.85, 1.15) for _ in range(3)], dtype=np.float32)
            if u() < 0.3:
                specs.append(LesionSpec("part_solid_nodule", centre, radii, u(10, 50), CONSOLIDATION, 0.6, 0.15,
                                        extra=dict(halo=u(1.6, 2.2), halo_hu=u(-600, -450))))
            else:
                specs.append(LesionSpec("nodule", centre, radii, u(20, 60), CONSOLIDATION, 0.6, 0.15))
    return specs


# -- painting -----------------------------------------------------------------------------------------------
def _ellipsoid_field(spec: LesionSpec, z, y, x, noise: np.ndarray, radii: Optional[np.ndarray] = None):
    r = spec.radii if radii is None else radii
    rho = np.sqrt(((x - spec.centre[0]) / r[0]) ** 2 + ((y - spec.centre[1]) / r[1]) ** 2
                  + ((z - spec.centre[2]) / r[2]) ** 2)
    return (rho - 1.0 + spec.irregularity * noise) * float(r.min())


def _septal_lines(z, y, x, where: np.ndarray, cell_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Distance (mm) to the nearest wall of a random polygonal (Voronoi) network: interlobular septa.

    Evaluated only ``where`` (elsewhere a large distance).
    """
    shape = where.shape
    lo = np.asarray([x.min(), y.min(), z.min()]) - cell_mm
    hi = np.asarray([x.max(), y.max(), z.max()]) + cell_mm
    n = int(np.prod((hi - lo) / cell_mm)) + 4
    seeds = rng.uniform(lo, hi, size=(n, 3))
    out = np.full(shape, 1e3, dtype=np.float32)
    pts = np.stack([np.broadcast_to(x, shape)[where], np.broadcast_to(y, shape)[where],
                    np.broadcast_to(z, shape)[where]], -1)
    if len(pts):
        dist, _ = cKDTree(seeds).query(pts, k=2)
        out[where] = 0.5 * (dist[:, 1] - dist[:, 0])
    return out


def paint_lesions(vol: Volumes, grid: Grid, specs: List[LesionSpec], rng: np.random.Generator,
                  ids: np.ndarray, classes: np.ndarray) -> List[Dict]:
    """Paint lesions (GGO first, consolidation over it); returns one record per painted lesion."""
    h = grid.voxel_mm
    order = sorted(range(len(specs)), key=lambda i: specs[i].lesion_class)
    records = []
    for n, i in enumerate(order, start=1):
        spec = specs[i]
        if spec.lobe:
            box = _lobe_box(vol.lobes, spec.lobe)
            if box is None:
                continue
        else:
            extent = spec.radii * (1.0 + spec.irregularity + 0.5) + spec.edge_mm * 2
            if spec.kind == "part_solid_nodule":
                extent = extent * spec.extra["halo"]
            box = grid.box_around(spec.centre - extent, spec.centre + extent)
            if box is None:
                continue
        z, y, x = grid.mesh(box)
        shape = vol.hu[box].shape
        noise_rng = np.random.default_rng(spec.extra["noise_seed"]) if "noise_seed" in spec.extra else rng
        step = np.asarray(grid.spacing[::-1])
        noise = smooth_noise(shape, np.maximum(1.0, 6.0 / step), noise_rng)
        lungs = vol.lungs[box]
        in_lung = (lungs == RIGHT_LUNG) | (lungs == LEFT_LUNG)
        parenchyma = in_lung & (vol.vessels[box] == 0) & (vol.airway_tree[box] == 0)
        tex = smooth_noise(shape, np.maximum(0.7, 2.0 / step), rng)
        hu = vol.hu[box]
        cls_core = None
        if spec.lobe:
            fld = _lobar_field(vol.lobes[box] == spec.lobe, noise, z, y, x, spec)
        else:
            fld = _ellipsoid_field(spec, z, y, x, noise)
        a = occupancy(fld, spec.edge_mm)
        value = spec.hu + (25.0 if spec.lesion_class == GROUND_GLASS else 8.0) * tex
        if spec.kind == "part_solid_nodule":
            halo = _ellipsoid_field(spec, z, y, x, noise, spec.radii * spec.extra["halo"])
            _blend(hu, occupancy(halo, 2.0), spec.extra["halo_hu"] + 20 * tex, parenchyma)
            cls_core = fld < 0
            fld = halo
        _blend(hu, a, value, parenchyma)
        if spec.kind == "crazy_paving":
            lines = _septal_lines(z, y, x, (a > 0) & parenchyma, spec.extra["cell_mm"], rng)
            _blend(hu, occupancy(lines - 0.4, max(h, 0.8)) * a, value + spec.extra["septal_hu"], parenchyma)
        inside = (fld < 0) & in_lung
        if not inside.any():
            continue
        ids[box][inside] = n
        cls = np.full(shape, spec.lesion_class, dtype=np.uint8)
        if cls_core is not None:
            cls[:] = GROUND_GLASS
            cls[cls_core] = CONSOLIDATION
        classes[box][inside] = cls[inside]
        records.append(dict(id=n, type=spec.kind, hu=round(float(spec.hu), 1)))
    return records


def _lobe_box(lobes: np.ndarray, lobe: int):
    idx = np.nonzero(np.any(lobes == lobe, axis=(1, 2)))[0]
    if len(idx) == 0:
        return None
    jdx = np.nonzero(np.any(lobes[idx[0]: idx[-1] + 1] == lobe, axis=(0, 2)))[0]
    kdx = np.nonzero(np.any(lobes[idx[0]: idx[-1] + 1] == lobe, axis=(0, 1)))[0]
    return (slice(idx[0], idx[-1] + 1), slice(jdx[0], jdx[-1] + 1), slice(kdx[0], kdx[-1] + 1))


def _lobar_field(in_lobe: np.ndarray, noise: np.ndarray, z, y, x, spec: LesionSpec) -> np.ndarray:
    """Field (mm) of the consolidated part of a lobe: everything but the part next to the lobar bronchus.

    ``spec.fraction`` > 0 is the consolidated share of the lobe; < 0 asks for the ground-glass rim (up to 8 mm
    wide) around the consolidation of share ``extra["core_fraction"]``.
    """
    zz, yy, xx = np.broadcast_arrays(z, y, x)
    dist = np.sqrt((xx - spec.centre[0]) ** 2 + (yy - spec.centre[1]) ** 2 + (zz - spec.centre[2]) ** 2)
    values = dist[in_lobe]
    if len(values) == 0:
        return np.full(in_lobe.shape, 1e3, dtype=np.float32)
    spread = float(values.std()) + 1e-3
    score = dist + 0.6 * spread * noise
    frac = spec.fraction if spec.fraction > 0 else spec.extra["core_fraction"]
    thr = np.quantile(score[in_lobe], 1.0 - frac)
    fld = thr - score
    if spec.fraction < 0:
        fld = np.abs(fld - 4.0) - 4.0
    return np.where(in_lobe, fld, np.maximum(fld, 1.0)).astype(np.float32)


# -- emboli -------------------------------------------------------------------------------------------------
def plan_and_paint_emboli(vol: Volumes, grid: Grid, arteries: List[Branch], main_arteries: Dict[str, List[Capsule]],
                          levels: Tuple[str, ...], occlusive_fraction: float, rng: np.random.Generator,
                          emboli: np.ndarray, scale: float) -> List[Dict]:
    """Place emboli at the requested levels (one entry per embolus) and paint them as filling defects."""
    h = grid.voxel_mm
    candidates: Dict[str, List[Tuple[Capsule, int]]] = {"main": [], "lobar": [], "segmental": [], "subsegmental": []}
    for name, caps in main_arteries.items():
        for c in caps[1:] if len(caps) > 1 else caps:
            candidates["main"].append((c, -1 if name == "rpa" else 1))
    for b in arteries:
        if b.level in candidates and b.radius >= 0.7 * h and _length(b.capsule) > 2 * b.radius:
            candidates[b.level].append((b.capsule, LOBE_SIDE[b.lobe]))
    records: List[Dict] = []

    def place(level: str, force_occlusive: bool = False) -> None:
        pool = candidates.get(level) or []
        for _ in range(10):  # retry until an embolus lands on the grid with at least a few voxels
            if not pool:
                return
            cap, side = pool[int(rng.integers(len(pool)))]
            occlusive = force_occlusive or (rng.uniform() < occlusive_fraction and level != "main")
            rec = _paint_embolus(vol, grid, cap, occlusive=occlusive, rng=rng, label=len(records) + 1, emboli=emboli)
            if rec is not None:
                rec.update(level=level, side="right" if side < 0 else "left")
                records.append(rec)
                return

    for level in levels:
        place(level)
    for level in ("lobar", "main"):  # coarse grids: rather a central embolus than none
        if not records:
            place(level, force_occlusive=True)
    return records


def _length(c: Capsule) -> float:
    return float(np.linalg.norm(c.p1 - c.p0))


def _paint_embolus(vol: Volumes, grid: Grid, cap: Capsule, occlusive: bool, rng: np.random.Generator,
                   label: int, emboli: np.ndarray) -> Optional[Dict]:
    length = _length(cap)
    axis = (cap.p1 - cap.p0) / max(length, 1e-6)
    r = 0.5 * (cap.r0 + cap.r1)
    t_len = min(length * 0.8, r * rng.uniform(2.0, 5.0) + 2.0)
    t0 = rng.uniform(0.1, max(0.1, 0.9 - t_len / max(length, 1e-6))) * length
    a, b = cap.p0 + axis * t0, cap.p0 + axis * (t0 + t_len)
    if occlusive:
        clot = Capsule(a, b, r + 1.0, r + 1.0)
    else:
        perp = np.cross(axis, rng.normal(size=3).astype(np.float32))
        perp = perp / (np.linalg.norm(perp) + 1e-6)
        shift = perp * r * rng.uniform(0.0, 0.5)
        rr = r * rng.uniform(0.45, 0.65)
        clot = Capsule(a + shift, b + shift, rr, rr * 0.8)
    lo, hi = clot.bounds(2.0)
    box = grid.box_around(lo, hi)
    if box is None:
        return None
    z, y, x = grid.mesh(box)
    fld = clot.field(z, y, x)
    lumen = vol.arteries[box] == 1
    inside = (fld < 0) & lumen & (emboli[box] == 0)
    if np.count_nonzero(inside) < 2:
        return None
    hu_value = rng.uniform(20, 80)
    _blend(vol.hu[box], occupancy(fld, 0.8), hu_value, lumen)
    emboli[box][inside] = label
    return dict(id=label, occlusive=bool(occlusive), hu=round(float(hu_value), 1),
                vessel_diameter_mm=round(2 * r, 2), length_mm=round(float(t_len), 1))
