"""``make_phantom``: a synthetic chest CT with exact ground truth, deterministic per seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np
from scipy import ndimage

from lungai.ctsim import ScannerModel, add_noise
from lungai.image import Image
from lungai.labels import CONSOLIDATION, GROUND_GLASS, LEFT_LUNG, LOBE_LABELS, RIGHT_LUNG
from lungai.phantom.anatomy import Patient
from lungai.phantom.config import PhantomConfig, PRESETS
from lungai.phantom.grid import Grid
from lungai.phantom.pathology import paint_lesions, plan_and_paint_emboli, plan_lesions
from lungai.phantom.render import Contrast, Volumes, draw_airways, draw_tubes, render_tissues
from lungai.phantom.trees import build_trees, sample_lobe_points
from lungai.progress import Progress, ensure

TRUTH_NAMES = ("lungs", "lobes", "arteries", "vessels", "lesions", "lesion_class", "emboli")
PHANTOM_RECON_PIXELS = 512  # noise grid cap (memory: ~0.8 GB back-projector at 512 pixels x 180 views)
DEFAULT_EMBOLI = ("main", "lobar", "segmental", "segmental", "subsegmental", "subsegmental")


@dataclass
class PhantomCase:
    """A synthetic CT (``ct``, HU), its noise-free version and label maps on the same grid, and its facts."""

    ct: Image
    clean_ct: Image
    truth: Dict[str, Image]
    info: Dict[str, Any] = field(default_factory=dict)


def _streams(seed: int) -> Dict[str, np.random.Generator]:
    names = ("anatomy", "fields", "trees", "contrast", "lesions", "emboli", "noise", "canonical")
    children = np.random.SeedSequence(int(seed)).spawn(len(names))
    return {n: np.random.default_rng(c) for n, c in zip(names, children)}


def _render_grid(cfg: PhantomConfig, patient: Patient) -> tuple:
    """Output grid and the rendering grid (z oversampled for thick slices: the slice profile integrates it)."""
    nx, ny, nz = cfg.size
    sx, sy, sz = cfg.spacing
    d = patient.derived
    fov_z, height = nz * sz, patient.lung_height
    if fov_z >= height:  # the whole lungs: apex a little below the top slice
        z_top = d["z_apex"] + min(40.0 * patient.scale, 0.4 * (fov_z - height))
        z_first = z_top - (nz - 1) * sz
    else:  # a slab through the middle of the lungs
        z_first = d["z_apex"] - 0.55 * height - (nz - 1) / 2 * sz
    origin = (-(nx - 1) / 2 * sx, -(ny - 1) / 2 * sy + 0.04 * patient.b_body, z_first)
    out = Grid((nz, ny, nx), (sx, sy, sz), origin)
    m = 1
    if cfg.blur and cfg.thickness > 1.5 * max(sx, sy, 0.8):
        m = int(min(5, np.ceil(cfg.thickness / max(sx, sy, 0.8))))
        m += 1 - m % 2  # odd: the middle sub-slice is the output slice centre
    rz = sz / m
    render = Grid((nz * m, ny, nx), (sx, sy, rz), (origin[0], origin[1], origin[2] - (m - 1) / 2 * rz))
    return out, render, m


def make_phantom(cfg: PhantomConfig, progress: Optional[Progress] = None) -> PhantomCase:
    """Build the phantom described by ``cfg`` (see :class:`PhantomConfig`)."""
    if cfg.preset not in PRESETS:
        raise ValueError(f"{cfg.preset!r} is not a CT preset; choose one of {sorted(PRESETS)}")
    progress = ensure(progress)
    rng = _streams(cfg.seed)
    patient = Patient.sample(rng["anatomy"], cfg.fov_mm, cfg.breathing)
    out_grid, grid, m = _render_grid(cfg, patient)
    cgrid, factors = grid.coarse(3.0 * patient.scale)
    progress.update(0.01, "anatomy fields")
    fields = patient.fields(cgrid, rng["fields"])
    contrast = Contrast.for_phase(cfg.contrast, patient, rng["contrast"])

    vol = Volumes.empty(grid.shape)
    render_tissues(vol, fields, factors, grid, patient, contrast, cfg.fov_mm, progress=progress.span(0.02, 0.35))

    # trees and lesion sites come from a grid fixed in the patient frame, so that the same seed gives the same
    # vessels and lesions whatever the field of view, voxel size or slice thickness
    canon = _canonical_grid(patient)
    canon_fields = patient.fields(canon, rng["canonical"])
    canon_lobes = _coarse_lobes(canon_fields)
    r_min = max(1.0, 0.45 * min(cfg.spacing[0], cfg.spacing[1])) * min(1.0, patient.scale * 1.4)
    points = sample_lobe_points(canon_lobes, canon, per_ml=1.6, rng=rng["trees"])
    landmarks = patient.landmarks()
    trees = build_trees(landmarks, points, patient.scale, r_min, rng["trees"])
    progress.update(0.4, "vessels and airways")
    great = patient.great_vessels()
    draw_tubes(vol, grid, great["esophagus"], patient.muscle_hu - 5)
    draw_tubes(vol, grid, great["aorta"], contrast.aorta)
    draw_tubes(vol, grid, great["svc"], contrast.svc)
    main_pa = great["pulmonary_trunk"] + great["rpa"] + great["lpa"]
    draw_tubes(vol, grid, main_pa, contrast.pulmonary_artery, label=[vol.arteries, vol.vessels])
    draw_tubes(vol, grid, [b.capsule for b in trees.hilar_arteries], contrast.pulmonary_artery,
               label=[vol.arteries, vol.vessels])
    draw_tubes(vol, grid, [b.capsule for b in trees.hilar_veins], contrast.pulmonary_vein, label=[vol.vessels])
    draw_airways(vol, grid, patient.central_airways(), trees.bronchi, patient.muscle_hu, 0.45 * grid.voxel_mm)
    draw_tubes(vol, grid, [b.capsule for b in trees.veins], contrast.pulmonary_vein, within_lungs=True,
               label=[vol.vessels], skip_air=True)
    draw_tubes(vol, grid, [b.capsule for b in trees.arteries], contrast.pulmonary_artery, within_lungs=True,
               label=[vol.arteries, vol.vessels], skip_air=True)
    progress.update(0.55, "pathology")

    lesions = np.zeros(grid.shape, dtype=np.uint16)
    lesion_class = np.zeros(grid.shape, dtype=np.uint8)
    lung_field = np.minimum(canon_fields["right_lung"], canon_fields["left_lung"])
    specs = plan_lesions(cfg.preset, patient, lung_field, canon_lobes, canon, rng["lesions"], cfg.lesion_count,
                         cfg.lesion_scale, cfg.nodule_count)
    lesion_records = paint_lesions(vol, grid, specs, rng["lesions"], lesions, lesion_class)
    emboli = np.zeros(grid.shape, dtype=np.uint8)
    emboli_records: List[Dict] = []
    if cfg.preset == "pe" or cfg.emboli_levels:
        levels = cfg.emboli_levels or DEFAULT_EMBOLI
        if cfg.emboli_levels is None and rng["emboli"].uniform() < 0.4:
            levels = levels[1:]
        emboli_records = plan_and_paint_emboli(vol, grid, trees.hilar_arteries + trees.arteries,
                                               {"rpa": great["rpa"], "lpa": great["lpa"]},
                                               tuple(levels), cfg.occlusive_fraction, rng["emboli"], emboli,
                                               patient.scale)
    progress.update(0.62, "partial volume and slice profile")

    clean = _acquire(vol.hu, cfg, grid, m)
    pick = slice((m - 1) // 2, None, m)
    truth_arrays = {"lungs": vol.lungs[pick], "lobes": vol.lobes[pick], "arteries": vol.arteries[pick],
                    "vessels": vol.vessels[pick], "lesions": lesions[pick], "lesion_class": lesion_class[pick],
                    "emboli": emboli[pick]}
    del vol
    reference = Image(clean, out_grid.spacing, out_grid.origin, np.eye(3))
    truth = {name: reference.like(np.ascontiguousarray(arr)) for name, arr in truth_arrays.items()}
    truth["lesions"], lesion_records = _renumber(truth["lesions"], lesion_records)
    truth["emboli"], emboli_records = _renumber(truth["emboli"], emboli_records)
    meta = dict(slice_thickness_mm=cfg.thickness, phantom_seed=cfg.seed, phantom_preset=cfg.preset)
    clean_ct = reference.like(clean, **meta)
    scanner = ScannerModel(**{"kernel": cfg.kernel, "max_recon_pixels": PHANTOM_RECON_PIXELS, **cfg.scanner})
    if cfg.noise:
        progress.update(0.65, "noise: projection-domain simulation")
        ct = add_noise(clean_ct, cfg.dose, scanner, seed=int(rng["noise"].integers(2 ** 31)),
                       progress=progress.span(0.65, 0.97))
        ct.metadata.update(meta)
    else:
        ct = clean_ct.like(clean_ct.array.copy(), **meta)
    progress.update(0.98, "measuring the truth")
    info = _info(cfg, patient, truth, lesion_records, emboli_records, contrast, scanner)
    progress.update(1.0, "done")
    return PhantomCase(ct=ct, clean_ct=clean_ct, truth=truth, info=info)


def _canonical_grid(patient: Patient) -> Grid:
    """A 4 mm (times the patient scale) grid over the thorax in the patient frame, independent of the scan."""
    s, d = patient.scale, patient.derived
    step = 4.0 * s
    lo = np.array([-patient.a_body - 8 * s, -patient.b_body - 8 * s, d["z_recess"] - 30 * s])
    hi = np.array([patient.a_body + 8 * s, 0.85 * patient.b_body + 8 * s, d["z_apex"] + 30 * s])
    n = np.ceil((hi - lo) / step).astype(int) + 1
    return Grid((int(n[2]), int(n[1]), int(n[0])), (step, step, step), tuple(float(v) for v in lo))


def _coarse_lobes(fields: Dict[str, np.ndarray]) -> np.ndarray:
    from lungai.labels import LLL, LUL, RLL, RML, RUL

    lobes = np.zeros(fields["right_lung"].shape, dtype=np.uint8)
    right, left = fields["right_lung"] < 0, fields["left_lung"] < 0
    upper_r = fields["major_r"] >= 0
    lobes[right & ~upper_r] = RLL
    lobes[right & upper_r & (fields["minor_r"] >= 0)] = RUL
    lobes[right & upper_r & (fields["minor_r"] < 0)] = RML
    lobes[left & (fields["major_l"] >= 0)] = LUL
    lobes[left & (fields["major_l"] < 0)] = LLL
    return lobes


def _acquire(hu: np.ndarray, cfg: PhantomConfig, grid: Grid, m: int) -> np.ndarray:
    """System blur: Gaussian in-plane PSF and the slice sensitivity profile, then the output slices."""
    if cfg.blur:
        sx, sy, rz = grid.spacing
        sig = cfg.in_plane_psf_mm / 2.355
        for axis, step in ((2, sx), (1, sy)):
            if sig / step > 0.2:
                ndimage.gaussian_filter1d(hu, sig / step, axis=axis, output=hu, mode="nearest", truncate=3.0)
        sig_z = np.hypot(cfg.thickness / 2.355, sig) / rz
        if sig_z > 0.2:
            ndimage.gaussian_filter1d(hu, sig_z, axis=0, output=hu, mode="nearest", truncate=3.0)
    return np.ascontiguousarray(hu[(m - 1) // 2:: m], dtype=np.float32)


def _renumber(labels: Image, records: List[Dict]) -> tuple:
    """Drop records whose label vanished (overpainted or off-grid) and number the rest 1..N."""
    arr = labels.array
    where = np.flatnonzero(arr)
    values = arr.ravel()[where]
    counts = np.bincount(values, minlength=max([r["id"] for r in records], default=0) + 1)
    lut = np.zeros(len(counts), dtype=arr.dtype)
    kept = []
    for rec in records:
        if counts[rec["id"]] > 0:
            new = len(kept) + 1
            lut[rec["id"]] = new
            kept.append(dict(rec, id=new))
    out = np.zeros_like(arr)
    out.ravel()[where] = lut[values]
    return labels.like(out), kept


def _info(cfg: PhantomConfig, patient: Patient, truth: Dict[str, Image], lesions: List[Dict], emboli: List[Dict],
          contrast: Contrast, scanner: ScannerModel) -> Dict[str, Any]:
    from lungai.phantom.measure import describe_emboli, describe_lesions, involvement, lobe_volumes

    lungs = truth["lungs"].array
    vml = truth["lungs"].voxel_volume_ml
    right, left = int(np.count_nonzero(lungs == RIGHT_LUNG)), int(np.count_nonzero(lungs == LEFT_LUNG))
    return {
        "generator": "lungai.phantom",
        "seed": cfg.seed,
        "preset": cfg.preset,
        "preset_description": PRESETS[cfg.preset],
        "parameters": cfg.to_dict(),
        "slice_thickness_mm": cfg.thickness,
        "patient": {"scale": round(patient.scale, 4), "breathing": patient.breathing,
                    "body_width_mm": round(2 * patient.a_body, 1), "body_depth_mm": round(1.85 * patient.b_body, 1),
                    "lung_height_mm": round(patient.lung_height, 1), "parenchyma_hu": round(patient.lung_hu, 1)},
        "contrast": {"phase": cfg.contrast, **{k: round(float(v), 1) for k, v in vars(contrast).items()}},
        "scanner": scanner.to_dict(),
        "landmarks_lps": {name: [round(float(c), 2) for c in point] for name, point in patient.landmarks().items()
                          if name in ("carina", "trachea_top", "hilum_r", "hilum_l", "pa_bifurcation", "heart",
                                      "left_atrium", "aortic_root")},
        "lung_volume_ml": {"right": round(right * vml, 2), "left": round(left * vml, 2),
                           "total": round((right + left) * vml, 2)},
        "lobe_volume_ml": lobe_volumes(truth["lobes"]),
        "lesions": describe_lesions(truth, lesions),
        "emboli": describe_emboli(truth, emboli),
        "involvement_percent": involvement(truth),
        "label_values": {"lungs": {"right_lung": 1, "left_lung": 2, "airways": 3},
                         "lobes": {name: value for value, name in LOBE_LABELS.items()},
                         "lesion_class": {"ground_glass": GROUND_GLASS, "consolidation": CONSOLIDATION}},
    }
