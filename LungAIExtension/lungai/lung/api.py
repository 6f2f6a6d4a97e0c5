"""``segment_lungs``: one entry point for every lung segmentation method."""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from lungai.checks import check_finite, check_geometry, check_ct_intensities
from lungai.errors import InputError
from lungai.image import Image
from lungai.lung import backends
from lungai.lung.classic import AIR_HU, TARGET_MM, segment_classic
from lungai.lung.figures import lung_figures
from lungai.lung.result import LungResult
from lungai.lung.zones import compute_zones
from lungai.progress import Progress, ensure
from lungai.provenance import Provenance

METHODS = ("auto", "classic", "model", "lungmask", "totalsegmentator")


def _as_volume(image: Image) -> Image:
    """A 2D axial slice becomes a one-slice volume (results are squeezed back)."""
    if image.ndim == 3:
        return image
    direction = np.eye(3)
    direction[:2, :2] = image.direction
    return Image(image.array[None], tuple(image.spacing) + (1.0,), tuple(image.origin) + (0.0,), direction,
                 dict(image.metadata))


def _check(image: Image) -> None:
    source = image.metadata.get("source")
    check_geometry(image, source) if min(image.shape) >= 2 else None
    check_finite(image, source)
    check_ct_intensities(image, source)


def resolve_method(method: str, model_name: Optional[str] = None) -> str:
    """``auto`` is the registry's lungs model when it, its weights and its trust for automatic use are installed
    (see :func:`lungai.lung.backends.trusted_for_auto`), else ``classic``."""
    if method not in METHODS:
        raise ValueError(f"unknown lung segmentation method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "auto":
        return "model" if backends.model_available(model_name, for_auto=True) else "classic"
    return method


def segment_lungs(image: Image, method: str = "auto", progress: Optional[Progress] = None,
                  model_name: Optional[str] = None, device: str = "cpu") -> LungResult:
    """Right lung, left lung and airways of a chest CT in HU, with zones, figures and provenance.

    Raises :class:`InputError` for images that are not a chest CT (MR, 8-bit pictures, no lungs in the field
    of view) and :class:`LungAIError` when a learned backend or its weights are missing. ``progress.cancel()``
    stops the run at its next step.
    """
    progress = ensure(progress)
    started = time.perf_counter()
    chosen = resolve_method(method, model_name)
    volume = _as_volume(image)
    _check(volume)
    source = image.metadata.get("source")
    work = progress.span(0.0, 0.85)
    details = {}
    lobes = None
    if chosen == "classic":
        try:
            labels_array, found = segment_classic(volume, work)
        except InputError as exc:
            raise InputError(source, exc.problem) from None
        details = {"planar": found.planar, "trachea_found": found.trachea_found,
                   "recovered_dense_lung_ml": round(found.recovered_ml, 1),
                   "working_spacing_mm": [round(s, 3) for s in found.working_spacing_mm]}
        provenance = Provenance("lungs-classic", parameters={"air_threshold_hu": AIR_HU,
                                                              "working_grid_mm": TARGET_MM, **details})
    else:
        if chosen == "model":
            out = backends.run_model(volume, model_name, device, work)
        elif chosen == "lungmask":
            out = backends.run_lungmask(volume, device, work)
        else:
            out = backends.run_totalsegmentator(volume, device, work)
        labels_array, lobes, provenance = out.labels, out.lobes, out.provenance
    labels = volume.like(labels_array.astype(np.uint8))
    if not ((labels.array == 1) | (labels.array == 2)).any():
        raise InputError(source, "no lungs in the field of view (the segmentation found no lung)")
    progress.update(0.88, "zones")
    zones = compute_zones(labels, planar=bool(details.get("planar", False)))
    progress.update(0.94, "lung figures")
    figures = lung_figures(labels, volume)
    provenance.parameters.setdefault("requested_method", method)
    provenance.parameters["seconds"] = round(time.perf_counter() - started, 2)
    lobe_image = None if lobes is None else volume.like(lobes.astype(np.uint8))
    if image.ndim == 2:
        labels, zones = image.like(labels.array[0]), image.like(zones.array[0])
        lobe_image = None if lobe_image is None else image.like(lobe_image.array[0])
    progress.update(1.0, "lungs done")
    return LungResult(labels=labels, zones=zones, figures=figures, provenance=provenance, lobes=lobe_image,
                      details=details)
