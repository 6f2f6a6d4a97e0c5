"""Turning the anatomy fields and trees into HU values and label maps on the rendering grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

import numpy as np

from lungai.labels import AIRWAYS, LEFT_LUNG, LLL, LUL, RIGHT_LUNG, RLL, RML, RUL
from lungai.phantom.anatomy import Patient
from lungai.phantom.grid import Box, Capsule, Grid, occupancy, resample
from lungai.phantom.trees import Branch

CORTICAL_HU, MARROW_HU, CARTILAGE_HU, DISC_HU, CSF_HU = 850.0, 230.0, 120.0, 85.0, 15.0


@dataclass
class Contrast:
    """Blood HU per compartment for the contrast phase."""

    pulmonary_artery: float
    right_heart: float
    left_heart: float
    aorta: float
    pulmonary_vein: float
    svc: float
    myocardium: float

    @classmethod
    def for_phase(cls, phase: str, patient: Patient, rng: np.random.Generator) -> "Contrast":
        b = patient.blood_hu
        if phase == "ctpa":
            pa = rng.uniform(280, 420)
            return cls(pa, pa * rng.uniform(0.85, 1.0), rng.uniform(150, 220), rng.uniform(140, 210),
                       rng.uniform(150, 220), rng.uniform(450, 700), rng.uniform(90, 120))
        return cls(b, b, b, b + 2, b, b, patient.muscle_hu - 5)


@dataclass
class Volumes:
    """The arrays being rendered (render grid): HU and every label map."""

    hu: np.ndarray
    lungs: np.ndarray
    lobes: np.ndarray
    arteries: np.ndarray
    vessels: np.ndarray
    airway_tree: np.ndarray  # internal: any bronchus (wall or lumen), to keep lesions off the airways

    @classmethod
    def empty(cls, shape) -> "Volumes":
        return cls(np.full(shape, -1000.0, dtype=np.float32), *(np.zeros(shape, dtype=np.uint8) for _ in range(5)))


def _blend(hu: np.ndarray, a: np.ndarray, value, mask: Optional[np.ndarray] = None) -> None:
    """hu <- hu + a * (value - hu), optionally only where ``mask``."""
    if mask is not None:
        a = a * mask
    hu += a * (value - hu)


def render_tissues(vol: Volumes, fields: Dict[str, np.ndarray], cgrid: Grid, grid: Grid, patient: Patient,
                   contrast: Contrast, fov_xy: tuple, slab: int = 12, progress=None) -> None:
    """Body, chest wall, bones, mediastinum, heart, abdomen and lungs (with lobes and fissures), slab by slab."""
    d, s = patient.derived, patient.scale
    h = grid.voxel_mm
    nz = grid.shape[0]
    for k0 in range(0, nz, slab):
        box: Box = (slice(k0, min(nz, k0 + slab)), slice(None), slice(None))
        F = _LazyFields(fields, cgrid, grid, box)
        z, y, x = grid.mesh(box)
        hu = vol.hu[box]
        hu[...] = -1000.0
        # CT table below the patient (not part of the anatomy truth)
        y_table = 0.85 * patient.b_body + 10 * s
        table = np.maximum(np.abs(y - y_table - 7 * s) - 7 * s, np.abs(x) - min(0.46 * fov_xy[0], 230.0))
        _blend(hu, occupancy(np.broadcast_to(table, hu.shape), h), 200.0)
        _blend(hu, occupancy(np.broadcast_to(table + 1.5, hu.shape), h), -750.0)
        # soft tissues
        tex = F["tex_fine"]
        _blend(hu, occupancy(F["body"], h), patient.fat_hu + 6 * tex)
        _blend(hu, occupancy(F["fat_inner"], h), patient.muscle_hu + 4 * tex)
        below = F["below_diaphragm"] < 0
        _blend(hu, occupancy(F["abdomen"], h), -45 + 35 * F["tex_coarse"])
        _blend(hu, occupancy(F["liver"], h), patient.liver_hu + 3 * tex)
        _blend(hu, occupancy(F["spleen"], h), patient.liver_hu - 8 + 3 * tex)
        stomach = occupancy(F["stomach"], h)
        gas = occupancy(F["stomach_gas_level"], h)
        _blend(hu, stomach, 15 + 5 * tex)
        _blend(hu, occupancy(F["stomach"] + 3 * s, h) * gas, -1000.0)
        thorax = occupancy(F["cavity"], h) * ~below
        _blend(hu, thorax, patient.fat_hu + 15 + 8 * tex)
        # heart: pericardial fat, myocardium, chambers (right anterior, left posterior)
        heart = F["heart"]
        _blend(hu, occupancy(heart, h), contrast.myocardium)
        septum = F["septum"]
        right = occupancy(septum + 5 * s, h)  # 1 on the right (anterior) side of the septum
        chamber = occupancy(F["heart_cavity"], h)
        _blend(hu, chamber * right, contrast.right_heart)
        _blend(hu, chamber * occupancy(5 * s - septum, h), contrast.left_heart)
        # skeleton
        for name in ("vertebra", "posterior_arch", "rib", "sternum"):
            fld = F[name]
            _blend(hu, occupancy(fld, h), CORTICAL_HU)
            _blend(hu, occupancy(fld + 1.6 * s, h), MARROW_HU + 40 * tex)
        disc_phase = np.mod(z - d["z_apex"], patient.vertebra_height)
        disc = np.abs(disc_phase - 0.5 * patient.vertebra_height) > 0.5 * patient.vertebra_height - 3.0 * s
        _blend(hu, occupancy(F["vertebra"] + 0.5, h) * disc, DISC_HU)
        _blend(hu, occupancy(F["canal"], h), CSF_HU)
        _blend(hu, occupancy(F["cartilage"], h), CARTILAGE_HU + 10 * tex)
        # lungs
        lung_hu = patient.lung_hu + patient.gravity(y) + 12 * tex + 10 * F["tex_coarse"]
        fr, fl = F["right_lung"], F["left_lung"]
        _blend(hu, occupancy(fr, h), lung_hu)
        _blend(hu, occupancy(fl, h), lung_hu)
        lungs = vol.lungs[box]
        lungs[...] = 0
        lungs[fr < 0] = RIGHT_LUNG
        lungs[fl < 0] = LEFT_LUNG
        # lobes and fissures (thin, slightly denser surfaces between lobes)
        major_r, minor_r, major_l = F["major_r"], F["minor_r"], F["major_l"]
        lobes = vol.lobes[box]
        lobes[...] = 0
        right_mask, left_mask = lungs == RIGHT_LUNG, lungs == LEFT_LUNG
        lobes[right_mask & (major_r < 0)] = RLL
        lobes[right_mask & (major_r >= 0) & (minor_r >= 0)] = RUL
        lobes[right_mask & (major_r >= 0) & (minor_r < 0)] = RML
        lobes[left_mask & (major_l >= 0)] = LUL
        lobes[left_mask & (major_l < 0)] = LLL
        fissure_r = np.minimum(np.abs(major_r), np.where(major_r > 0, np.abs(minor_r), 1e3))
        for fis, mask in ((fissure_r, right_mask), (np.abs(major_l), left_mask)):
            _blend(hu, occupancy(fis - 0.35, max(h, 0.6)) * mask, -350.0)
        if progress is not None:
            progress.update(min(1.0, (k0 + slab) / nz), "anatomy")


class _LazyFields:
    """Fine-grid values of coarse fields for one slab, resampled on first use."""

    def __init__(self, fields, cgrid, grid, box):
        self._fields, self._cgrid, self._grid, self._box, self._cache = fields, cgrid, grid, box, {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = resample(self._fields[name], self._cgrid, self._grid, self._box)
        return self._cache[name]


def draw_tubes(vol: Volumes, grid: Grid, tubes: Iterable[Capsule], value: float, *, within_lungs: bool = False,
               label: Optional[List[np.ndarray]] = None, skip_air: bool = False) -> None:
    """Paint tubes with partial volume; ``label`` arrays get 1 inside; ``within_lungs`` clips to the lungs."""
    h = grid.voxel_mm
    for cap in tubes:
        lo, hi = cap.bounds(1.5 * h)
        box = grid.box_around(lo, hi)
        if box is None:
            continue
        z, y, x = grid.mesh(box)
        fld = cap.field(z, y, x)
        inside = fld < 0
        if not inside.any() and not (fld < h).any():
            continue
        a = occupancy(fld, h)
        mask = None
        if within_lungs:
            lung = vol.lungs[box]
            mask = (lung == RIGHT_LUNG) | (lung == LEFT_LUNG)
        if skip_air:
            keep = vol.airway_tree[box] == 0
            mask = keep if mask is None else mask & keep
        _blend(vol.hu[box], a, value, mask)
        if label is not None:
            sel = inside if mask is None else inside & mask
            for arr in label:
                arr[box][sel] = 1


def draw_airways(vol: Volumes, grid: Grid, central: Dict[str, List[Capsule]], tree: List[Branch],
                 wall_hu: float, min_radius: float) -> None:
    """Airway walls then lumens: central airways (the ``airways`` truth) and the intrapulmonary bronchi."""
    h = grid.voxel_mm
    central_caps = [c for caps in central.values() for c in caps]
    tree_caps = [b.capsule for b in tree if b.radius * 0.8 >= min_radius]
    lumens = [Capsule(c.p0, c.p1, c.r0 * 0.8, c.r1 * 0.8) for c in tree_caps]
    walls = [Capsule(c.p0, c.p1, c.r0 + max(0.25 * c.r0, 0.6), c.r1 + max(0.25 * c.r1, 0.6)) for c in lumens]
    central_walls = [Capsule(c.p0, c.p1, c.r0 + 1.6, c.r1 + 1.6) for c in central_caps]
    draw_tubes(vol, grid, central_walls, wall_hu, label=[vol.airway_tree])
    draw_tubes(vol, grid, walls, wall_hu, within_lungs=True, label=[vol.airway_tree])
    draw_tubes(vol, grid, lumens, -990.0, within_lungs=True)
    for cap in central_caps:
        lo, hi = cap.bounds(1.5 * h)
        box = grid.box_around(lo, hi)
        if box is None:
            continue
        z, y, x = grid.mesh(box)
        fld = cap.field(z, y, x)
        _blend(vol.hu[box], occupancy(fld, h), -995.0)
        inside = fld < 0
        vol.lungs[box][inside] = AIRWAYS
        vol.lobes[box][inside] = 0
        vol.arteries[box][inside] = 0
        vol.vessels[box][inside] = 0

