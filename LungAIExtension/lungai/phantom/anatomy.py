"""Procedural thoracic anatomy: patient proportions drawn per seed and the smooth fields that describe them.

Patient frame (LPS, millimetres): x to the patient's left, y posterior, z superior; x = 0 is the midline,
y = 0 the body centre and z = 0 the carina. Every structure is a field (negative inside, about the distance
to its surface in mm near it) evaluated on a coarse grid; see :mod:`lungai.phantom.grid`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from lungai.phantom.grid import Capsule, Grid, draw_capsules, smooth_noise

Vec = np.ndarray


def _v(*xyz: float) -> Vec:
    return np.asarray(xyz, dtype=np.float32)


def _smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _superellipse(x, y, a, b, p: float):
    """Approximate signed distance (mm) to the superellipse |x/a|^p + |y/b|^p = 1 (first-order, rho-1 / |grad|)."""
    ux, uy = np.abs(x) / a + 1e-6, np.abs(y) / b + 1e-6
    rho = (ux ** p + uy ** p) ** (1.0 / p)
    grad = rho ** (1.0 - p) * np.sqrt((ux ** (p - 1) / a) ** 2 + (uy ** (p - 1) / b) ** 2)
    return (rho - 1.0) / np.maximum(grad, 1.0 / np.maximum(a, b))


def _smax(a, b, k: float = 4.0):
    """Smooth maximum (rounded intersection of two fields)."""
    return 0.5 * (a + b + np.sqrt((a - b) ** 2 + k * k))


@dataclass
class Patient:
    """Body proportions and landmark positions of one synthetic patient (all mm, patient frame)."""

    scale: float
    breathing: str
    a_body: float
    b_body: float
    p_body: float
    t_fat: float
    wall_lat: float
    wall_ant: float
    wall_post: float
    lung_height: float
    dome_drop_left: float
    heart_angle: float
    heart_radii: Tuple[float, float, float]
    fissure: Dict[str, float]
    rib_spacing: float
    rib_drop: float
    vertebra_height: float
    lung_hu: float
    gravity_hu: float
    fat_hu: float
    muscle_hu: float
    blood_hu: float
    liver_hu: float
    derived: Dict[str, float] = field(default_factory=dict)

    # -- sampling ---------------------------------------------------------------------------------------------
    @classmethod
    def sample(cls, rng: np.random.Generator, fov_mm: Tuple[float, float, float], breathing: str) -> "Patient":
        u = rng.uniform
        a_body, b_body = u(150, 172), u(118, 136)
        # fit the body inside the in-plane field of view (small FOVs give a smaller patient)
        scale = float(min(1.0, 0.47 * fov_mm[0] / a_body, 0.47 * fov_mm[1] / (0.93 * b_body)))
        s = scale
        expiration = breathing == "expiration"
        height = u(262, 298) * s * (0.80 if expiration else 1.0)
        p = cls(
            scale=s, breathing=breathing, a_body=a_body * s, b_body=b_body * s, p_body=u(2.2, 2.7),
            t_fat=u(8, 24) * s, wall_lat=u(6, 9) * s, wall_ant=u(10, 16) * s, wall_post=u(18, 26) * s,
            lung_height=height, dome_drop_left=u(8, 20) * s, heart_angle=np.deg2rad(u(25, 40)),
            heart_radii=(u(58, 67) * s, u(44, 51) * s, u(52, 60) * s),
            fissure=dict(k_r=u(0.95, 1.3), k_l=u(1.05, 1.4), z_r=u(-38, -22) * s, z_l=u(-30, -14) * s,
                         minor=u(-26, -12) * s, curve=u(0.0008, 0.003) / s, tilt=u(0.3, 0.7)),
            rib_spacing=u(22, 26) * s * (0.9 if expiration else 1.0), rib_drop=u(75, 100) * s,
            vertebra_height=u(24, 28) * s,
            lung_hu=u(-870, -835) if not expiration else u(-730, -680),
            gravity_hu=u(25, 45) if not expiration else u(50, 80),
            fat_hu=u(-110, -85), muscle_hu=u(42, 58), blood_hu=u(36, 48), liver_hu=u(52, 66))
        p._derive(expiration)
        return p

    def _derive(self, expiration: bool) -> None:
        s, d = self.scale, self.derived
        inflate = 0.95 if expiration else 1.0
        d["a_c"] = (self.a_body - self.t_fat - self.wall_lat) * inflate
        d["b_c"] = (0.85 * self.b_body + self.b_body - 2 * self.t_fat - self.wall_ant - self.wall_post) / 2 * inflate
        d["y_c"] = -self.b_body + self.t_fat + self.wall_ant + d["b_c"] / inflate
        d["z_apex"] = 0.40 * self.lung_height / (0.8 if expiration else 1.0) * (0.92 if expiration else 1.0)
        d["z_cav_top"] = d["z_apex"] + 18 * s
        d["z_recess"] = d["z_apex"] - self.lung_height
        d["z_dome_r"] = d["z_apex"] - (0.74 if expiration else 0.78) * self.lung_height
        d["z_dome_l"] = d["z_dome_r"] - self.dome_drop_left
        d["r_v"] = 17 * s
        d["w_v"] = 21 * s
        d["y_v"] = d["y_c"] + d["b_c"] - d["r_v"]
        d["y_tr"] = d["y_v"] - d["r_v"] - 22 * s
        rx, ry, rz = self.heart_radii
        d["z_heart"] = d["z_dome_l"] + 0.85 * rz
        d["x_heart"] = 0.2 * d["a_c"]
        d["y_heart"] = d["y_c"] - d["b_c"] + 0.78 * ry + 8 * s

    # -- named points --------------------------------------------------------------------------------------
    def landmarks(self) -> Dict[str, Vec]:
        s, d = self.scale, self.derived
        y_tr = d["y_tr"]
        heart = _v(d["x_heart"], d["y_heart"], d["z_heart"])
        rz = self.heart_radii[2]
        return {
            "carina": _v(0, y_tr, 0),
            "trachea_top": _v(0, y_tr - 6 * s, d["z_apex"] + 160 * s),
            "rmb_end": _v(-22 * s, y_tr + 4 * s, -18 * s),
            "rul_end": _v(-44 * s, y_tr + 2 * s, -9 * s),
            "bi_end": _v(-31 * s, y_tr + 8 * s, -40 * s),
            "rml_end": _v(-44 * s, y_tr - 20 * s, -56 * s),
            "rll_end": _v(-40 * s, y_tr + 20 * s, -66 * s),
            "lmb_end": _v(38 * s, y_tr + 10 * s, -30 * s),
            "lul_end": _v(51 * s, y_tr - 8 * s, -20 * s),
            "lll_end": _v(48 * s, y_tr + 24 * s, -58 * s),
            "heart": heart,
            "aortic_root": heart + _v(-0.35 * self.heart_radii[0], 0.05 * self.heart_radii[1], 0.75 * rz),
            "asc_top": _v(-9 * s, y_tr - 24 * s, 20 * s),
            "arch_top": _v(4 * s, y_tr - 8 * s, 36 * s),
            "arch_back": _v(20 * s, d["y_v"] - d["r_v"] - 8 * s, 26 * s),
            "desc_aorta": _v(25 * s, d["y_v"] - d["r_v"] * 0.7, 8 * s),
            "desc_bottom": _v(22 * s, d["y_v"] - d["r_v"] * 0.9, d["z_recess"] - 120 * s),
            "svc_top": _v(-27 * s, y_tr - 22 * s, d["z_apex"] + 160 * s),
            "svc_bottom": _v(-26 * s, y_tr - 26 * s, heart[2] + 0.6 * rz),
            "rvot": heart + _v(0.05 * self.heart_radii[0], -0.55 * self.heart_radii[1], 0.75 * rz),
            "pa_bifurcation": _v(9 * s, y_tr - 16 * s, -22 * s),
            "rpa_mid": _v(-20 * s, y_tr - 12 * s, -26 * s),
            "hilum_r": _v(-40 * s, y_tr - 6 * s, -30 * s),
            "lpa_mid": _v(28 * s, y_tr + 4 * s, -14 * s),
            "hilum_l": _v(40 * s, y_tr + 10 * s, -22 * s),
            "left_atrium": heart + _v(-0.05 * self.heart_radii[0], 0.55 * self.heart_radii[1], 0.45 * rz),
            "esophagus": _v(6 * s, d["y_v"] - d["r_v"] - 8 * s, 0),
        }

    # -- tubes of the mediastinum and central airways -------------------------------------------------------
    def great_vessels(self) -> Dict[str, List[Capsule]]:
        s, m = self.scale, self.landmarks()
        r_ao, r_desc = 15 * s, 12 * s

        def chain(points, radii):
            return [Capsule(points[i], points[i + 1], radii[i], radii[i + 1]) for i in range(len(points) - 1)]

        arch_branches = [Capsule(m["arch_top"] + _v(dx * s, dy * s, 0), m["arch_top"] + _v(dx * s * 1.2, dy * s,
                                 260 * s), r * s, r * s) for dx, dy, r in ((-12, -8, 6.0), (2, -2, 4.5), (14, 6, 5.0))]
        return {
            "aorta": chain([m["aortic_root"], m["asc_top"], m["arch_top"], m["arch_back"], m["desc_aorta"],
                            m["desc_bottom"]], [r_ao, r_ao, 13.5 * s, r_desc, r_desc, 11 * s]) + arch_branches,
            "svc": chain([m["svc_top"], m["svc_bottom"]], [9 * s, 10 * s]),
            "pulmonary_trunk": chain([m["rvot"], m["pa_bifurcation"]], [14 * s, 13 * s]),
            "rpa": chain([m["pa_bifurcation"], m["rpa_mid"], m["hilum_r"]], [11 * s, 10 * s, 9 * s]),
            "lpa": chain([m["pa_bifurcation"], m["lpa_mid"], m["hilum_l"]], [10.5 * s, 9.5 * s, 8.5 * s]),
            "esophagus": chain([m["esophagus"] + _v(0, 0, 250 * s), m["esophagus"],
                                m["esophagus"] + _v(8 * s, -6 * s, -0.95 * self.lung_height)], [7 * s] * 3),
        }

    def central_airways(self) -> Dict[str, List[Capsule]]:
        """Lumen capsules of trachea, main and lobar bronchi (the ``airways`` ground truth)."""
        s, m = self.scale, self.landmarks()
        return {
            "trachea": [Capsule(m["trachea_top"], m["carina"], 8.5 * s, 8.5 * s)],
            "right_main": [Capsule(m["carina"], m["rmb_end"], 7.0 * s, 6.0 * s)],
            "left_main": [Capsule(m["carina"], m["lmb_end"], 6.5 * s, 5.5 * s)],
            "rul": [Capsule(m["rmb_end"], m["rul_end"], 4.5 * s, 4.0 * s)],
            "bronchus_intermedius": [Capsule(m["rmb_end"], m["bi_end"], 5.5 * s, 5.0 * s)],
            "rml": [Capsule(m["bi_end"], m["rml_end"], 3.5 * s, 3.0 * s)],
            "rll": [Capsule(m["bi_end"], m["rll_end"], 4.5 * s, 4.0 * s)],
            "lul": [Capsule(m["lmb_end"], m["lul_end"], 4.5 * s, 4.0 * s)],
            "lll": [Capsule(m["lmb_end"], m["lll_end"], 4.5 * s, 4.0 * s)],
        }

    # -- smooth fields on the coarse grid ---------------------------------------------------------------------
    def fields(self, grid: Grid, rng: np.random.Generator) -> Dict[str, np.ndarray]:
        """All coarse fields (float32, mm, negative inside) used to render the CT."""
        s, d = self.scale, self.derived
        z, y, x = grid.mesh()
        shape = grid.shape
        f: Dict[str, np.ndarray] = {}
        full = np.zeros(shape, dtype=np.float32)

        # body outline: superellipse with a flat back and slight taper towards the neck
        taper = 1.0 - 0.10 * _smoothstep((z - d["z_apex"]) / (80 * s))
        a_b, b_b = self.a_body * taper, self.b_body * taper
        body = _superellipse(x, y, a_b, b_b, self.p_body)
        f["body"] = full + _smax(body, y - 0.85 * self.b_body, 10 * s)
        f["fat_inner"] = f["body"] + self.t_fat * (1.0 + 0.25 * np.clip(-y / self.b_body, 0, 1))

        # thoracic cavity (inside the ribs); narrows to the apices, lungs sit inside it
        top, bottom = d["z_cav_top"], d["z_recess"]
        t = (top - z) / (top - bottom)
        g_a = np.clip(t / 0.6, 0.01, 1.0) ** 0.65
        g_b = np.clip(t / 0.5, 0.01, 1.0) ** 0.5
        a_c, b_c = d["a_c"] * g_a, d["b_c"] * g_b
        y_c = d["y_c"] + 0.25 * d["b_c"] * (1.0 - g_b)
        # towards the top the cavity splits into two apices beside the thoracic inlet
        x_apex = 0.18 * d["a_c"] * (1.0 - g_a)
        cavity_inplane = _superellipse(np.maximum(np.abs(x) - x_apex, 0.0), y - y_c, a_c, b_c, 2.3)
        f["cavity"] = full + np.maximum(cavity_inplane, z - top)
        phi = np.arctan2(np.abs(x), y - y_c)  # 0 posterior, pi anterior

        # diaphragm: two domes, right higher; lungs above, abdomen below
        zd = np.zeros(shape, dtype=np.float32)
        for side, z_dome in ((-1, d["z_dome_r"]), (1, d["z_dome_l"])):
            q2 = ((x - side * 0.42 * d["a_c"]) / (0.62 * d["a_c"])) ** 2 + ((y - d["y_c"] + 0.15 * d["b_c"])
                                                                           / (0.8 * d["b_c"])) ** 2
            depth = z_dome - d["z_recess"]
            surf = z_dome - 0.75 * depth * np.minimum(q2, 1.4) - 0.3 * depth * np.clip((y - d["y_c"]) / d["b_c"], 0, 1)
            w = _smoothstep((x + 20 * s) / (40 * s)) if side == 1 else 1.0 - _smoothstep((x + 20 * s) / (40 * s))
            zd = zd + w * surf
        f["below_diaphragm"] = (z - zd).astype(np.float32)  # negative below the diaphragm

        # heart: rotated ellipsoid with chambers and septum
        hx, hy, hz = d["x_heart"], d["y_heart"], d["z_heart"]
        ca, sa = np.cos(self.heart_angle), np.sin(self.heart_angle)
        u_ = (x - hx) * ca - (y - hy) * sa
        v_ = (x - hx) * sa + (y - hy) * ca
        rx, ry, rz = self.heart_radii
        rho_h = np.sqrt((u_ / rx) ** 2 + (v_ / ry) ** 2 + ((z - hz) / rz) ** 2)
        f["heart"] = (rho_h - 1.0) * ry
        f["heart_cavity"] = (np.sqrt((u_ / (rx - 9 * s)) ** 2 + (v_ / (ry - 9 * s)) ** 2
                                    + ((z - hz) / (rz - 9 * s)) ** 2) - 1.0) * (ry - 9 * s)
        f["septum"] = (0.45 * u_ + 0.89 * v_).astype(np.float32)  # > 0: left (posterior) chambers

        # mediastinal column between the lungs (trachea, oesophagus, great vessels), narrow in front
        y_front = d["y_c"] - d["b_c"]
        w_col = 5 * s + 12 * s * _smoothstep((y - y_front - 20 * s) / (45 * s))
        column = np.abs(x) - w_col
        f["mediastinum"] = np.minimum(column, f["heart"] - 4 * s)
        vessels = np.full(shape, 1e3, dtype=np.float32)
        tubes = [c for name, caps in self.great_vessels().items() for c in caps]
        tubes += [c for name in ("trachea", "right_main", "left_main") for c in self.central_airways()[name]]
        draw_capsules(vessels, grid, [Capsule(c.p0, c.p1, c.r0 + 2 * s, c.r1 + 2 * s) for c in tubes], 6 * s)
        f["mediastinum"] = np.minimum(f["mediastinum"], vessels)

        # spine: vertebral body, canal, posterior arch and spinous process, transverse processes
        yv = d["y_v"]
        f["vertebra"] = full + (np.sqrt((x / d["w_v"]) ** 2 + ((y - yv) / d["r_v"]) ** 2) - 1) * d["r_v"]
        y_canal = yv + d["r_v"] + 9 * s
        canal = np.sqrt(x ** 2 + (y - y_canal) ** 2)
        f["canal"] = full + canal - 8 * s
        arch = np.abs(canal - 13 * s) - 4 * s
        arch = np.maximum(arch, yv + d["r_v"] - y)
        spinous = np.maximum(np.abs(x) - 4 * s, np.maximum(y_canal + 10 * s - y, y - y_canal - 30 * s))
        transverse = np.maximum(np.abs(y - y_canal + 2 * s) - 5 * s, np.maximum(8 * s - np.abs(x), np.abs(x) - 38 * s))
        f["posterior_arch"] = full + np.minimum(np.minimum(arch, spinous), transverse)
        f["mediastinum"] = np.minimum(f["mediastinum"], f["vertebra"] - 5 * s)

        # ribs: tubes just outside the cavity following the chest wall, sloping down anteriorly
        z0 = d["z_cav_top"] - 14 * s
        drop = self.rib_drop * (phi / np.pi) ** 1.1
        index = np.clip(np.round((z0 - drop - z) / self.rib_spacing), 0, 11)
        z_rib = z0 - drop - index * self.rib_spacing
        radial = (cavity_inplane - 5.5 * s) / (3.5 * s)
        vertical = (z - z_rib) / (5.0 * s)
        rib = (np.sqrt(radial ** 2 + vertical ** 2) - 1.0) * 3.5 * s
        bone_end = np.where(index < 7, 0.74 * np.pi, np.where(index < 10, 0.66 * np.pi, 0.42 * np.pi))
        cart_end = np.where(index < 7, 0.93 * np.pi, np.where(index < 10, 0.86 * np.pi, 0.0))
        start = 0.16 * np.pi
        f["rib"] = np.maximum(rib, np.maximum((start - phi) * 60 * s, (phi - bone_end) * 60 * s)).astype(np.float32)
        f["cartilage"] = np.maximum(rib, np.maximum((bone_end - phi) * 60 * s,
                                                    (phi - cart_end) * 60 * s)).astype(np.float32)

        # scapulae: curved plates on the posterolateral ribs in the upper chest
        scap = np.abs(cavity_inplane - 16 * s) - 2.5 * s
        scap = np.maximum(scap, np.maximum((0.35 - phi) * 80 * s, (phi - 1.05) * 80 * s))
        z_scap_top = d["z_apex"] - 5 * s
        scap = np.maximum(scap, np.maximum(z - z_scap_top, z_scap_top - 0.5 * self.lung_height - z))
        f["scapula"] = scap.astype(np.float32)

        # sternum (manubrium to xiphoid) in front of the cavity
        ys = y_front - 9 * s
        st = ((np.abs(x) / (15 * s)) ** 4 + (np.abs(y - ys) / (6.5 * s)) ** 4) ** 0.25
        f["sternum"] = np.maximum((st - 1.0) * 6.5 * s, np.maximum(z - (d["z_apex"] - 25 * s),
                                                                 d["z_dome_r"] + 5 * s - z)).astype(np.float32)

        # lungs: cavity minus mediastinum, above the diaphragm, split at the midline
        pleura = 1.5 * s
        common = np.maximum(np.maximum(f["cavity"], pleura - f["mediastinum"]), zd - z)
        f["right_lung"] = np.maximum(common, x + pleura).astype(np.float32)
        f["left_lung"] = np.maximum(common, pleura - x).astype(np.float32)

        # fissures: right oblique + horizontal, left oblique (positive side: upper/middle lobes)
        fi = self.fissure
        yh = d["y_tr"]
        for name, k, zr in (("major_r", fi["k_r"], fi["z_r"]), ("major_l", fi["k_l"], fi["z_l"])):
            surf = zr + k * (y - yh) + fi["curve"] * (y - yh) ** 2 + k * fi["tilt"] * (np.abs(x) - 40 * s)
            f[name] = ((z - surf) / np.sqrt(1 + k * k)).astype(np.float32)
        f["minor_r"] = (z - (fi["minor"] + 0.08 * (y - yh) + 0.05 * np.abs(x))).astype(np.float32)

        # abdomen below the diaphragm: liver on the right, stomach and spleen on the left
        inside = full + cavity_inplane - 4 * s
        liver_edge = 0.25 * d["a_c"] - 0.6 * np.clip(zd - z, 0, None)
        f["liver"] = np.maximum(np.maximum(inside, f["below_diaphragm"] + 5 * s), x - liver_edge)
        f["liver"] = np.maximum(f["liver"], d["z_dome_r"] - 170 * s - z).astype(np.float32)
        sc = _v(0.42 * d["a_c"], d["y_c"] - 0.15 * d["b_c"], d["z_dome_l"] - 50 * s)
        f["stomach"] = (np.sqrt(((x - sc[0]) / (45 * s)) ** 2 + ((y - sc[1]) / (38 * s)) ** 2
                                + ((z - sc[2]) / (52 * s)) ** 2) - 1) * 38 * s
        f["stomach"] = np.maximum(f["stomach"], f["below_diaphragm"] + 4 * s).astype(np.float32)
        f["stomach_gas_level"] = full + (sc[2] + 18 * s - z)
        spc = _v(0.68 * d["a_c"], d["y_c"] + 0.45 * d["b_c"], d["z_dome_l"] - 55 * s)
        f["spleen"] = (np.sqrt(((x - spc[0]) / (30 * s)) ** 2 + ((y - spc[1]) / (24 * s)) ** 2
                               + ((z - spc[2]) / (50 * s)) ** 2) - 1) * 24 * s
        f["spleen"] = np.maximum(f["spleen"], f["below_diaphragm"] + 4 * s).astype(np.float32)
        f["abdomen"] = np.maximum(inside, f["below_diaphragm"]).astype(np.float32)

        # textures: lung parenchyma (fine and coarse scales), fat/bowel mottling, bone marrow
        step = np.asarray(grid.spacing[::-1])
        f["tex_fine"] = smooth_noise(shape, 3.0 * s / step, rng)
        f["tex_coarse"] = smooth_noise(shape, 12.0 * s / step, rng)
        for key in list(f):
            f[key] = np.array(np.broadcast_to(f[key], shape), dtype=np.float32)  # writable, C order
        return f

    def gravity(self, y: np.ndarray) -> np.ndarray:
        """Dependent-lung density increase (HU) from anterior (0) to posterior (``gravity_hu``)."""
        d = self.derived
        return self.gravity_hu * np.clip((y - (d["y_c"] - d["b_c"])) / (2 * d["b_c"]), 0, 1)
