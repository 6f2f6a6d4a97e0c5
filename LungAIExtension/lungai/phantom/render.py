"""Turning the anatomy fields and trees into HU values and label maps on the rendering grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from lungai.labels import AIRWAYS, LEFT_LUNG, LLL, LUL, RIGHT_LUNG, RLL, RML, RUL
from lungai.phantom.anatomy import Patient
from lungai.phantom.grid import Box, Capsule, Grid, occupancy, upsample_box
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


class _Slab:
    """One slab of the rendering grid: coarse fields upsampled only inside the boxes where they matter."""

    WHOLE_SLAB = ("tex_fine", "tex_coarse")

    def __init__(self, fields: Dict[str, np.ndarray], factors, grid: Grid, k0: int, k1: int, margin: float):
        self.fields, self.factors, self.grid, self.margin = fields, factors, grid, margin
        self.k0, self.k1 = k0, k1
        self._cache: Dict[tuple, np.ndarray] = {}

    def box(self, name: str, offset: float = 0.0) -> Optional[Box]:
        """Slab-relative box of the voxels within ``margin`` of the structure (field + offset < margin)."""
        f, (qz, qy, qx) = self.fields[name], self.factors
        c0, c1 = self.k0 // qz, min(-(-(self.k1 - 1) // qz), f.shape[0] - 1)
        near = (f[c0: c1 + 1] + offset) < self.margin
        if not near.any():
            return None
        rows = np.nonzero(near.any(axis=(0, 2)))[0]
        cols = np.nonzero(near.any(axis=(0, 1)))[0]
        ny, nx = self.grid.shape[1], self.grid.shape[2]
        return (slice(0, self.k1 - self.k0), slice(max(0, (rows[0] - 1) * qy), min(ny, (rows[-1] + 1) * qy + 1)),
                slice(max(0, (cols[0] - 1) * qx), min(nx, (cols[-1] + 1) * qx + 1)))

    def get(self, name: str, box: Box) -> np.ndarray:
        if name in self.WHOLE_SLAB:  # textures: upsample the slab once, then cut boxes out of it
            key = (name,)
            if key not in self._cache:
                ny, nx = self.grid.shape[1], self.grid.shape[2]
                self._cache[key] = upsample_box(self.fields[name], self.factors,
                                                (slice(self.k0, self.k1), slice(0, ny), slice(0, nx)))
            return self._cache[key][:, box[1], box[2]]
        key = (name, box[1].start, box[1].stop, box[2].start, box[2].stop)
        if key not in self._cache:
            absolute = (slice(self.k0, self.k1), box[1], box[2])
            self._cache[key] = upsample_box(self.fields[name], self.factors, absolute)
        return self._cache[key]

    def mesh(self, box: Box):
        return self.grid.mesh((slice(self.k0, self.k1), box[1], box[2]))


def _paint(hu: np.ndarray, slab: _Slab, name: str, value, width: float, offset: float = 0.0,
           weight=None, box: Optional[Box] = None) -> Optional[Box]:
    """Blend ``value`` (number or callable(box) -> array) into ``hu`` by the partial volume of field ``name``."""
    box = box or slab.box(name, offset)
    if box is None:
        return None
    a = occupancy(slab.get(name, box) + offset, width)
    if weight is not None:
        a *= weight(box)
    v = value(box) if callable(value) else value
    view = hu[box]
    view += a * (v - view)
    return box


def render_tissues(vol: Volumes, fields: Dict[str, np.ndarray], factors, grid: Grid, patient: Patient,
                   contrast: Contrast, fov_xy: tuple, slab_size: int = 16, progress=None) -> None:
    """Body, chest wall, bones, mediastinum, heart, abdomen and lungs (with lobes and fissures), slab by slab."""
    d, s = patient.derived, patient.scale
    h = grid.voxel_mm
    nz = grid.shape[0]
    for k0 in range(0, nz, slab_size):
        k1 = min(nz, k0 + slab_size)
        sl = _Slab(fields, factors, grid, k0, k1, margin=h + 2.0 * max(grid.spacing) + 1.0)
        hu = vol.hu[k0:k1]
        hu[...] = -1000.0
        whole = (slice(0, k1 - k0), slice(0, grid.shape[1]), slice(0, grid.shape[2]))
        z, y, x = sl.mesh(whole)
        # CT table below the patient (not part of the anatomy truth)
        y_table = 0.85 * patient.b_body + 10 * s
        table = np.maximum(np.abs(y - y_table - 7 * s) - 7 * s, np.abs(x) - min(0.46 * fov_xy[0], 230.0))
        table = np.broadcast_to(table, hu.shape)
        hu += occupancy(table, h) * (200.0 - hu)
        hu += occupancy(table + 1.5, h) * (-750.0 - hu)

        def tex(box, name="tex_fine"):
            return sl.get(name, box)

        # soft tissues: subcutaneous fat, muscle with thin fat planes, abdomen and its organs, mediastinal fat
        _paint(hu, sl, "body", lambda b: patient.fat_hu + 6 * tex(b), h)
        _paint(hu, sl, "fat_inner", lambda b: patient.muscle_hu + 4 * tex(b), h)
        b = sl.box("fat_inner")
        if b is not None:
            fi = sl.get("fat_inner", b) + 3 * s * tex(b, "tex_coarse")
            plane = np.abs(fi + 9 * s) - 0.9 * s
            a = occupancy(plane, h) * (sl.get("cavity", b) > 2 * s) * (tex(b, "tex_coarse") > -0.3)
            hu[b] += a * (patient.fat_hu + 10 - hu[b])
        _paint(hu, sl, "abdomen", lambda b: -45 + 35 * tex(b, "tex_coarse"), h)
        _paint(hu, sl, "liver", lambda b: patient.liver_hu + 3 * tex(b), h)
        _paint(hu, sl, "spleen", lambda b: patient.liver_hu - 8 + 3 * tex(b), h)
        b = _paint(hu, sl, "stomach", lambda b: 15 + 5 * tex(b), h)
        if b is not None:
            _paint(hu, sl, "stomach", -1000.0, h, offset=3 * s, box=b,
                   weight=lambda b: occupancy(sl.get("stomach_gas_level", b), h))
        _paint(hu, sl, "cavity", lambda b: patient.fat_hu + 15 + 8 * tex(b), h,
               weight=lambda b: sl.get("below_diaphragm", b) >= 0)
        # heart: myocardium, chambers (right anterior, left posterior of the septum)
        b = _paint(hu, sl, "heart", contrast.myocardium, h)
        if b is not None and sl.box("heart_cavity") is not None:
            septum = sl.get("septum", b)
            _paint(hu, sl, "heart_cavity", contrast.right_heart, h, box=b,
                   weight=lambda _: occupancy(septum + 5 * s, h))
            _paint(hu, sl, "heart_cavity", contrast.left_heart, h, box=b,
                   weight=lambda _: occupancy(5 * s - septum, h))
        # skeleton: cortical shell and marrow, intervertebral discs, spinal canal, costal cartilage
        for name in ("vertebra", "posterior_arch", "rib", "sternum", "scapula"):
            b = _paint(hu, sl, name, CORTICAL_HU, h)
            if b is not None:
                _paint(hu, sl, name, lambda b: MARROW_HU + 40 * tex(b), h, offset=1.6 * s, box=b)
        b = sl.box("vertebra", 0.5)
        if b is not None:
            zb = sl.mesh(b)[0]
            phase = np.mod(zb - d["z_apex"], patient.vertebra_height)
            disc = (np.abs(phase - 0.5 * patient.vertebra_height) > 0.5 * patient.vertebra_height - 3.0 * s)
            _paint(hu, sl, "vertebra", DISC_HU, h, offset=0.5, box=b, weight=lambda _: disc)
        _paint(hu, sl, "canal", CSF_HU, h)
        _paint(hu, sl, "cartilage", lambda b: CARTILAGE_HU + 10 * tex(b), h)
        # lungs with dependent density gradient and texture; lobes and fissures
        lungs = vol.lungs[k0:k1]
        lobes = vol.lobes[k0:k1]
        lungs[...] = 0
        lobes[...] = 0
        for name, label, major in (("right_lung", RIGHT_LUNG, "major_r"), ("left_lung", LEFT_LUNG, "major_l")):
            b = sl.box(name)
            if b is None:
                continue
            yb = sl.mesh(b)[1]
            _paint(hu, sl, name, lambda b: patient.lung_hu + patient.gravity(yb) + 12 * tex(b)
                   + 10 * tex(b, "tex_coarse"), h, box=b)
            inside = sl.get(name, b) < 0
            lungs[b][inside] = label
            mj = sl.get(major, b)
            lob = lobes[b]
            if label == RIGHT_LUNG:
                mn = sl.get("minor_r", b)
                lob[inside & (mj < 0)] = RLL
                lob[inside & (mj >= 0) & (mn >= 0)] = RUL
                lob[inside & (mj >= 0) & (mn < 0)] = RML
                fissure = np.minimum(np.abs(mj), np.where(mj > 0, np.abs(mn), 1e3))
            else:
                lob[inside & (mj >= 0)] = LUL
                lob[inside & (mj < 0)] = LLL
                fissure = np.abs(mj)
            a = occupancy(fissure - 0.3, max(h, 0.6)) * inside
            hu[b] += a * (-550.0 - hu[b])
        if progress is not None:
            progress.update(k1 / nz, "anatomy")


def tube_fields(grid: Grid, tubes: Iterable[Capsule]) -> Iterator[Tuple[tuple, np.ndarray]]:
    """For each capsule whose reach (1.5 voxels beyond its surface) meets the grid: the box around it and the
    signed distance field (mm, negative inside) on that box."""
    h = grid.voxel_mm
    for cap in tubes:
        lo, hi = cap.bounds(1.5 * h)
        box = grid.box_around(lo, hi)
        if box is not None:
            yield box, cap.field(*grid.mesh(box))


def draw_tubes(vol: Volumes, grid: Grid, tubes: Iterable[Capsule], value: float, *, within_lungs: bool = False,
               label: Optional[List[np.ndarray]] = None, skip_air: bool = False) -> None:
    """Paint tubes with partial volume; ``label`` arrays get 1 inside; ``within_lungs`` clips to the lungs."""
    h = grid.voxel_mm
    for box, fld in tube_fields(grid, tubes):
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
    for box, fld in tube_fields(grid, central_caps):
        _blend(vol.hu[box], occupancy(fld, h), -995.0)
        inside = fld < 0
        vol.lungs[box][inside] = AIRWAYS
        vol.lobes[box][inside] = 0
        vol.arteries[box][inside] = 0
        vol.vessels[box][inside] = 0

