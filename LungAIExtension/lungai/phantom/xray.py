"""``make_xray``: a frontal chest radiograph simulated as attenuation line integrals through the CT phantom."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, Optional

import numpy as np
from scipy import ndimage

from lungai.ctsim import hu_to_mu
from lungai.image import Image
from lungai.phantom.config import PRESETS, XRAY_PRESETS, PhantomConfig
from lungai.phantom.ct import make_phantom
from lungai.progress import Progress, ensure

# radiograph preset -> CT preset whose anatomy and lesions are projected
CT_PRESET = {"healthy": "healthy", "bacterial": "bacterial", "viral": "covid-moderate"}


@dataclass
class XrayCase:
    """A 2D radiograph (0..1, bone and opacities bright, patient's right on the image left) with its truth."""

    image: Image
    truth: Dict[str, Image]
    info: Dict[str, Any] = field(default_factory=dict)


def make_xray(cfg: PhantomConfig, progress: Optional[Progress] = None, photons_per_pixel: float = 2.0e4,
              depth_mm: float = 340.0) -> XrayCase:
    """Frontal (PA) radiograph of the phantom: ``cfg.size[:2]`` pixels at ``cfg.spacing[:2]`` mm (width, height).

    Presets: ``healthy``, ``bacterial`` (lobar consolidation), ``viral`` (bilateral interstitial and ground-glass
    opacities); CT presets are accepted too (``covid-*`` look viral).
    """
    progress = ensure(progress)
    if cfg.preset not in XRAY_PRESETS and cfg.preset not in PRESETS:
        raise ValueError(f"unknown radiograph preset {cfg.preset!r}; choose one of {sorted(XRAY_PRESETS)}")
    ct_preset = CT_PRESET.get(cfg.preset, cfg.preset)
    width, height = cfg.size[0] * cfg.spacing[0], cfg.size[1] * cfg.spacing[1]
    step = float(max(2.0, min(cfg.spacing[0], cfg.spacing[1])))
    extra = dict(lesion_scale=1.25, lesion_count=None) if cfg.preset == "viral" else {}
    ct_cfg = replace(cfg, size=(int(np.ceil(width / step)), int(np.ceil(depth_mm / step)), int(np.ceil(height / step))),
                     spacing=(step, step, step), slice_thickness=None, preset=ct_preset, noise=False, blur=False,
                     contrast="none", **extra)
    case = make_phantom(ct_cfg, progress.span(0.0, 0.8))
    hu = case.clean_ct.array
    mu = hu_to_mu(hu)
    # radiographic energies: bone attenuates relatively more than at CT energies (photoelectric effect)
    mu *= 1.0 + 0.8 * np.clip((hu - 100.0) / 1000.0, 0.0, None)
    line = mu.sum(axis=1) * step  # (z, x) attenuation line integrals along the antero-posterior axis
    lungs_2d = np.any((case.truth["lungs"].array == 1) | (case.truth["lungs"].array == 2), axis=1)
    opacity_2d = np.any(case.truth["lesions"].array > 0, axis=1)
    # rows from head to feet, columns from the patient's right to left; resample to the detector grid
    line, lungs_2d, opacity_2d = line[::-1], lungs_2d[::-1], opacity_2d[::-1]
    zoom = (line.shape[0] / cfg.size[1], line.shape[1] / cfg.size[0])
    rows = (np.arange(cfg.size[1]) + 0.5) * zoom[0] - 0.5
    cols = (np.arange(cfg.size[0]) + 0.5) * zoom[1] - 0.5
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    line = ndimage.map_coordinates(line, [rr, cc], order=1, mode="nearest")
    lungs_2d = ndimage.map_coordinates(lungs_2d.astype(np.float32), [rr, cc], order=1, mode="nearest") >= 0.5
    opacity_2d = ndimage.map_coordinates(opacity_2d.astype(np.float32), [rr, cc], order=1, mode="nearest") >= 0.5
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 7]))
    if cfg.blur:
        line = ndimage.gaussian_filter(line, 0.6 / np.asarray([cfg.spacing[1], cfg.spacing[0]]))
    if cfg.noise:  # quantum noise of the detected photons
        expected = photons_per_pixel * cfg.dose * np.exp(-line)
        counts = np.maximum(rng.poisson(expected), 1.0)
        line = np.log(photons_per_pixel * cfg.dose / counts)
    image = _display(line, np.asarray([cfg.spacing[1], cfg.spacing[0]]))
    spacing = (cfg.spacing[0], cfg.spacing[1])
    img = Image.from_array(image.astype(np.float32), spacing=spacing,
                           metadata={"view": "PA", "phantom_seed": cfg.seed, "phantom_preset": cfg.preset})
    truth = {"lungs": img.like(lungs_2d.astype(np.uint8)), "opacity": img.like(opacity_2d.astype(np.uint8))}
    lung_px = max(int(lungs_2d.sum()), 1)
    info = {"generator": "lungai.phantom.xray", "seed": cfg.seed, "preset": cfg.preset, "ct_preset": ct_preset,
            "view": "PA", "parameters": cfg.to_dict(), "photons_per_pixel": photons_per_pixel,
            "lung_area_cm2": round(float(lungs_2d.sum()) * spacing[0] * spacing[1] / 100.0, 2),
            "opacity_percent_of_lung": round(100.0 * float((opacity_2d & lungs_2d).sum()) / lung_px, 2),
            "ct_info": {k: case.info[k] for k in ("lesions", "involvement_percent", "lung_volume_ml", "patient")}}
    progress.update(1.0, "done")
    return XrayCase(img, truth, info)


def _display(line: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Clinical-style rendering: the log signal windowed on the body (air saturates black), a contrast curve and
    mild unsharp masking (the edge enhancement of radiograph processing)."""
    body = line > 0.5
    values = line[body] if body.sum() > 100 else line.ravel()
    lo, hi = np.percentile(values, [0.5, 99.8])
    img = np.clip((line - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    img = 1.0 / (1.0 + np.exp(-6.0 * (img - 0.45)))  # film-like S curve
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6)
    blurred = ndimage.gaussian_filter(img, 6.0 / spacing)
    return np.clip(img + 0.5 * (img - blurred), 0.0, 1.0)
