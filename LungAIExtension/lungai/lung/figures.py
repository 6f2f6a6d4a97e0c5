"""Lung figures a report needs: volumes, densities, right/left ratio and the breathing phase."""

from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np

from lungai.image import Image
from lungai.labels import AIRWAYS, LEFT_LUNG, RIGHT_LUNG

PERCENTILES = (5, 15, 50, 85, 95)
HU_MIN, HU_MAX = -1024, 3071
# breathing phase model: median density of the aerated lung and total volume of an adult at full inspiration
# (about -860 HU, 5-6 l) against expiration (about -750 HU, 2.5-3.5 l); centres and scales of the two scores
PHASE_DENSITY_CENTRE_HU, PHASE_DENSITY_SCALE_HU = -805.0, 35.0
PHASE_VOLUME_CENTRE_ML, PHASE_VOLUME_SCALE_ML = 3800.0, 900.0
PHASE_DENSITY_WEIGHT = 0.7
WHOLE_LUNGS_MIN_ML = 1500.0  # less lung than this in view: a partial field of view, volume is not used


def _histogram(values: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.rint(values), HU_MIN, HU_MAX).astype(np.int64) - HU_MIN
    return np.bincount(clipped, minlength=HU_MAX - HU_MIN + 1)


def _stats(hist: np.ndarray, voxel_ml: float) -> Dict[str, object]:
    count = int(hist.sum())
    if count == 0:
        return {"volume_ml": 0.0, "mean_hu": None, "hu_percentiles": {f"p{p}": None for p in PERCENTILES},
                "low_attenuation_percent_950": None}
    hu = np.arange(HU_MIN, HU_MAX + 1)
    cumulative = np.cumsum(hist)
    pct = {f"p{p}": float(hu[np.searchsorted(cumulative, p / 100.0 * count)]) for p in PERCENTILES}
    return {"volume_ml": round(count * voxel_ml, 2), "mean_hu": round(float((hist * hu).sum() / count), 1),
            "hu_percentiles": pct,
            "low_attenuation_percent_950": round(100.0 * hist[: -950 - HU_MIN].sum() / count, 2)}


def breathing_phase(median_aerated_hu: Optional[float], total_ml: float) -> Dict[str, object]:
    """Inspiration or expiration with a confidence 0..1, from aerated-lung density (mainly) and volume.

    When the field of view holds only part of the lungs (less than :data:`WHOLE_LUNGS_MIN_ML`) the volume says
    nothing: density alone decides, at half the confidence.
    """
    if median_aerated_hu is None or total_ml <= 0:
        return {"phase": "unknown", "confidence": 0.0}
    density_score = (PHASE_DENSITY_CENTRE_HU - median_aerated_hu) / PHASE_DENSITY_SCALE_HU
    whole = total_ml >= WHOLE_LUNGS_MIN_ML
    if whole:
        volume_score = (total_ml - PHASE_VOLUME_CENTRE_ML) / PHASE_VOLUME_SCALE_ML
        score = PHASE_DENSITY_WEIGHT * density_score + (1 - PHASE_DENSITY_WEIGHT) * volume_score
    else:
        score = density_score
    p_inspiration = 1.0 / (1.0 + math.exp(-1.5 * score))
    phase = "inspiration" if p_inspiration >= 0.5 else "expiration"
    confidence = abs(2 * p_inspiration - 1) * (1.0 if whole else 0.5)
    return {"phase": phase, "confidence": round(confidence, 3), "basis": "density and volume" if whole else
            "density only (lungs not wholly in the field of view)",
            "median_aerated_hu": round(float(median_aerated_hu), 1), "total_volume_ml": round(total_ml, 1)}


def lung_figures(labels: Image, ct: Image) -> Dict[str, object]:
    """Per-lung and total volume (ml), mean HU, HU percentiles, emphysema index (LAA-950 %), right/left ratio,
    airway volume and breathing phase, from a lungs label map and its CT (same grid)."""
    if labels.shape != ct.shape:
        raise ValueError(f"labels {labels.shape} and CT {ct.shape} are not on the same grid")
    lab, hu = labels.array, ct.array
    voxel_ml = labels.voxel_volume_ml
    hists = {side: _histogram(hu[lab == side]) for side in (RIGHT_LUNG, LEFT_LUNG)}
    total = hists[RIGHT_LUNG] + hists[LEFT_LUNG]
    right, left = _stats(hists[RIGHT_LUNG], voxel_ml), _stats(hists[LEFT_LUNG], voxel_ml)
    whole = _stats(total, voxel_ml)
    aerated = total.copy()
    aerated[-500 - HU_MIN:] = 0
    median_aerated = None
    if aerated.sum():
        median_aerated = float(np.arange(HU_MIN, HU_MAX + 1)[np.searchsorted(np.cumsum(aerated),
                                                                              0.5 * aerated.sum())])
    ratio = right["volume_ml"] / left["volume_ml"] if left["volume_ml"] else None
    return {"right_lung": right, "left_lung": left, "total": whole,
            "right_left_ratio": None if ratio is None else round(ratio, 3),
            "airways_volume_ml": round(float(np.count_nonzero(lab == AIRWAYS) * voxel_ml), 2),
            "breathing_phase": breathing_phase(median_aerated, float(whole["volume_ml"]))}
