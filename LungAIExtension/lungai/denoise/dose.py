"""Calibrated low-dose simulation: a normal-dose CT as the same scanner would have made it at a lower dose.

The physics is :mod:`lungai.ctsim`'s projection-domain noise insertion (forward projection, photon counts
from an incident flux with electronic noise, extra sinogram noise for the lower dose, filtered
back-projection). Two things are calibrated here against real full/quarter-dose pairs
(``shared/data/ldct``, see :func:`calibrate_kernel` and ``Testing/benchmarks/eval_denoise_ldct.py``):

* **The reconstruction kernel.** The noise is reconstructed with a ramp filter and then shaped by a radial
  transfer ``G(f)`` measured per kernel group (smooth B30f-like, sharp D45f-like). For parallel-beam FBP a
  radial filter on the image equals the same filter in the projection domain, so this is FBP with the
  vendor's kernel: the noise power spectrum takes the real kernel's shape.
* **The incident flux**, per slice, from the scan itself: the input's own noise in flat soft tissue is the
  full-dose noise, and at dose 1/2 the inserted noise has exactly the full-dose variance, so the flux that
  makes that inserted noise match the measured noise is the scan's flux (tube current modulation included).
  ``noise_gain`` corrects the small bias of measuring noise on anatomy (fitted on the pairs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from lungai import quality
from lungai.ctsim import ScannerModel, add_noise, simulate_dose
from lungai.errors import InputError
from lungai.image import Image
from lungai.progress import Progress, ensure

KERNEL_GROUPS = ("smooth", "sharp")
REFERENCE_FLUX = 1.0e9  # photons/mm^2 per rotation: the order of a clinical chest CT
#: ctsim's slice thickness the flux refers to, when the image does not say.
DEFAULT_THICKNESS_MM = 3.0
HIGH_PASS_PX = 1.0
FLUX_STEP = 0.05  # consecutive slices whose fluxes differ by less than this (relative) share one simulation


@dataclass(frozen=True)
class KernelCalibration:
    """Noise texture and level of one kernel group, fitted on real full/quarter-dose pairs."""

    group: str
    examples: str
    frequencies: Tuple[float, ...]  # cycles/mm
    transfer: Tuple[float, ...]  # G(f), radial amplitude transfer applied to ramp-filtered noise
    noise_gain: float  # real inserted noise / predicted, median over the calibration pairs
    typical_flux: float  # median calibrated flux of the pairs (for noise-free phantoms)
    nps_mean_frequency: float  # of real quarter-minus-full noise, cycles/mm

    def transfer_at(self, f: np.ndarray) -> np.ndarray:
        """G at frequencies ``f``; beyond the fitted range the trend of the last four points continues."""
        fq, g = np.asarray(self.frequencies), np.asarray(self.transfer)
        out = np.interp(f, fq, g, left=g[0], right=g[-1])
        slope = np.polyfit(fq[-4:], g[-4:], 1)[0]
        beyond = np.asarray(f) > fq[-1]
        extrapolated = np.clip(g[-1] + slope * (np.asarray(f) - fq[-1]), 0.0, 1.5 * g[-1])
        return np.where(beyond, extrapolated, out)


# Fitted by `python Testing/benchmarks/eval_denoise_ldct.py calibrate` on all 22 pairs of shared/data/ldct
# (AAPM-Mayo LDCT challenge, Siemens; B30f and D45f); the benchmark also reports leave-one-patient-out errors.
CALIBRATIONS: Dict[str, KernelCalibration] = {
    "smooth": KernelCalibration(
        "smooth", "B30f",
        frequencies=(0.0127, 0.0381, 0.0635, 0.0889, 0.1143, 0.1397, 0.1651, 0.1905, 0.2159, 0.2413, 0.2667, 0.2921,
                     0.3175, 0.3429, 0.3683, 0.3937, 0.419, 0.4444, 0.4698, 0.4952, 0.5206, 0.546, 0.5714, 0.5968),
        transfer=(1.1748, 1.3062, 1.3062, 1.3023, 1.3043, 1.3324, 1.3461, 1.2279, 1.1643, 1.1443, 1.1104, 1.0774,
                  0.9673, 0.9932, 0.847, 0.7581, 0.7282, 0.6894, 0.6142, 0.5315, 0.5155, 0.4507, 0.4062, 0.3784),
        noise_gain=1.1659, typical_flux=7.179e+08, nps_mean_frequency=0.3371),
    "sharp": KernelCalibration(
        "sharp", "D45f",
        frequencies=(0.0127, 0.0381, 0.0635, 0.0889, 0.1143, 0.1397, 0.1651, 0.1905, 0.2159, 0.2413, 0.2667, 0.2921,
                     0.3175, 0.3429, 0.3683, 0.3937, 0.419, 0.4444, 0.4698, 0.4952, 0.5206, 0.546, 0.5714, 0.5968),
        transfer=(1.0016, 0.8243, 0.8243, 0.8682, 0.8704, 0.8611, 0.8478, 0.8451, 0.8561, 0.8741, 0.8987, 0.9418,
                  0.9233, 1.0043, 0.9764, 1.033, 1.0759, 1.1039, 1.0971, 1.1527, 1.2255, 1.1881, 1.1848, 1.2858),
        noise_gain=1.1512, typical_flux=1.649e+08, nps_mean_frequency=0.4866),
}


def scanner(flux: float) -> ScannerModel:
    """The simulated scanner: ramp-filtered FBP (the kernel is applied by :func:`shape_noise`)."""
    return ScannerModel(incident_flux=float(flux), kernel="ramp", views=180, max_recon_pixels=512)


def shape_noise(noise: np.ndarray, pixel_mm: float, calibration: KernelCalibration) -> np.ndarray:
    """Apply the kernel's radial transfer to every axial slice of a noise image (HU)."""
    vol = noise if noise.ndim == 3 else noise[None]
    ny, nx = vol.shape[-2:]
    fy, fx = np.fft.fftfreq(ny, d=pixel_mm), np.fft.rfftfreq(nx, d=pixel_mm)
    g = calibration.transfer_at(np.hypot(fy[:, None], fx[None, :])).astype(np.float32)
    out = np.fft.irfft2(np.fft.rfft2(vol, axes=(-2, -1)) * g, s=(ny, nx), axes=(-2, -1)).astype(np.float32)
    return out if noise.ndim == 3 else out[0]


def _with_thickness(image: Image) -> Image:
    if image.ndim != 3:
        raise InputError(image.metadata.get("source"), "dose simulation needs a 3D CT (one or more axial slices)")
    if image.metadata.get("slice_thickness_mm"):
        return image
    thickness = float(image.spacing[2]) if image.shape[0] > 1 else DEFAULT_THICKNESS_MM
    return image.like(image.array, **dict(image.metadata, slice_thickness_mm=thickness))


def _slab(image: Image, start: int, stop: int) -> Image:
    """Axial slices ``start:stop`` as an image of their own (origin moved to the first of them)."""
    origin = image.index_to_lps((0, 0, start))
    return Image(image.array[start:stop], image.spacing, tuple(origin), image.direction, dict(image.metadata))


def _inserted_noise(image: Image, dose: float, flux: float, calibration: KernelCalibration, seed: int,
                    progress: Optional[Progress] = None) -> np.ndarray:
    lower = simulate_dose(image, dose, scanner(flux), seed=seed, progress=progress)
    raw = lower.array.astype(np.float32) - image.array.astype(np.float32)
    return shape_noise(raw, float(np.mean(image.spacing[:2])), calibration)


def _slice_rois(image: Image) -> List[List[quality.Roi]]:
    pixel_mm = float(np.mean(image.spacing[:2]))
    return [quality.uniform_rois(sl, pixel_mm, max_rois=32) for sl in image.array]


def _per_slice_std(volume: np.ndarray, rois: Sequence[Sequence[quality.Roi]]) -> np.ndarray:
    """Per-slice std of the high-pass part (slice minus its Gaussian blur, sigma HIGH_PASS_PX) in ``rois``.

    Comparing high-pass noise of the scan and of the simulated noise (which has the calibrated texture) keeps
    anatomical texture, mostly of low frequency, from passing for noise.
    """
    out = np.full(len(volume), np.nan)
    for k, (sl, r) in enumerate(zip(volume, rois)):
        if len(r) >= 3:
            sl = sl.astype(np.float32)
            out[k] = quality.noise_std(sl - ndimage.gaussian_filter(sl, HIGH_PASS_PX), r)
    return out


def _fill_nearest(values: np.ndarray) -> np.ndarray:
    ok = np.flatnonzero(np.isfinite(values))
    if ok.size == 0:
        raise ValueError("no slice has flat soft tissue to measure noise in")
    return values[ok[np.abs(np.arange(len(values))[:, None] - ok[None, :]).argmin(axis=1)]]


def estimate_flux(image: Image, calibration: KernelCalibration, seed: int = 0,
                  progress: Optional[Progress] = None) -> np.ndarray:
    """Per-slice incident flux that reproduces the scan's own noise (see module docstring)."""
    image = _with_thickness(image)
    rois = _slice_rois(image)
    measured = _per_slice_std(image.array.astype(np.float32), rois)
    if np.all(~np.isfinite(measured)):
        raise InputError(image.metadata.get("source"), "no flat soft tissue found to measure the scan's noise "
                                                       "level (needed to calibrate the dose simulation)")
    if np.nanmax(measured) < 1.0:
        raise InputError(image.metadata.get("source"), "the image looks noise-free (noise below 1 HU): give the "
                                                       "incident flux to simulate a dose, or use add_noise")
    flux = np.full(image.shape[0], REFERENCE_FLUX)
    for iteration in range(2):  # the second pass corrects for electronic noise, which does not scale as 1/flux
        probe = np.empty(image.shape, np.float32)
        for a, b in _runs(flux):
            part = _slab(image, a, b)
            probe[a:b] = _inserted_noise(part, 0.5, float(np.median(flux[a:b])), calibration, seed + 7919 + a)
        ratio = _fill_nearest(_per_slice_std(probe, rois) / (measured * calibration.noise_gain))
        flux = flux * ratio ** 2
        if progress is not None:
            progress.update((iteration + 1) / 2, "calibrating the flux")
    return flux


def _runs(flux: np.ndarray) -> List[Tuple[int, int]]:
    """Consecutive slices whose flux stays within FLUX_STEP of the run's first slice."""
    runs, start = [], 0
    for k in range(1, len(flux) + 1):
        if k == len(flux) or abs(flux[k] / flux[start] - 1.0) > FLUX_STEP:
            runs.append((start, k))
            start = k
    return runs


def kernel_group_of(image: Image) -> str:
    """Smooth or sharp: from the DICOM kernel name when known, else from the noise texture of the scan."""
    name = str(image.metadata.get("kernel", image.metadata.get("convolution_kernel", ""))).strip().upper()
    if name:
        digits = "".join(ch for ch in name if ch.isdigit())
        if name.startswith(("B", "I", "Q", "H", "D", "BR", "BL")) and digits:
            return "sharp" if int(digits[:2]) >= 45 else "smooth"
        if any(word in name for word in ("LUNG", "BONE", "SHARP", "EDGE", "DETAIL", "YA", "YB", "FC5")):
            return "sharp"
        if any(word in name for word in ("STANDARD", "SOFT", "SMOOTH", "FC1", "FC0")):
            return "smooth"
    pixel_mm = float(np.mean(image.spacing[:2]))
    vol = image.array if image.ndim == 3 else image.array[None]
    picks = vol[:: max(1, len(vol) // 8)]
    rois = quality.uniform_rois(picks, pixel_mm, max_rois=48)
    if len(rois) < 3:
        return "smooth"
    # the noise texture of flat soft tissue: sharp kernels put their noise power at higher frequencies
    freq, nps = quality.noise_power_spectrum(picks, rois, pixel_mm)
    mean_f = quality.nps_shape(freq, nps)["mean_frequency"]
    cal = CALIBRATIONS
    mid = 0.5 * (cal["smooth"].nps_mean_frequency + cal["sharp"].nps_mean_frequency)
    return "sharp" if mean_f > mid else "smooth"


def simulate_low_dose(image: Image, dose_fraction: float, kernel: str = "auto", seed: int = 0,
                      progress: Optional[Progress] = None,
                      calibration: Optional[KernelCalibration] = None,
                      flux: Optional[np.ndarray] = None) -> Image:
    """``image`` (a normal-dose CT in HU) as if scanned at ``dose_fraction`` (0 < d < 1) of its dose.

    ``kernel``: ``smooth``, ``sharp`` or ``auto`` (see :func:`kernel_group_of`). The flux is calibrated per slice
    from the scan's own noise unless ``flux`` (per slice, from :func:`estimate_flux`) is given. Metadata records
    dose, kernel group and flux range.
    """
    progress = ensure(progress)
    if not 0.0 < dose_fraction < 1.0:
        raise ValueError(f"dose_fraction must be between 0 and 1 (exclusive), got {dose_fraction}")
    image = _with_thickness(image)
    group = calibration.group if calibration else kernel_group_of(image) if kernel == "auto" else kernel
    if calibration is None:
        if group not in KERNEL_GROUPS:
            raise ValueError(f"unknown kernel group {group!r}; choose one of {', '.join(KERNEL_GROUPS)} or auto")
        calibration = CALIBRATIONS[group]
    progress.update(0.0, "measuring the scan's noise level")
    if flux is None:
        flux = estimate_flux(image, calibration, seed, progress.span(0.0, 0.4))
    flux = np.broadcast_to(np.asarray(flux, dtype=float), (image.shape[0],))
    noise = np.empty(image.shape, np.float32)
    runs = _runs(flux)
    span = progress.span(0.4, 1.0)
    for n, (a, b) in enumerate(runs):
        part = _slab(image, a, b)
        noise[a:b] = _inserted_noise(part, dose_fraction, float(np.median(flux[a:b])), calibration, seed + a)
        span.update((n + 1) / len(runs), f"inserting noise, slices {b}/{image.shape[0]}")
    meta = dict(image.metadata, dose_fraction=float(dose_fraction), kernel_group=calibration.group,
                flux_min=float(flux.min()), flux_max=float(flux.max()), noise_model="calibrated-projection-insertion")
    return image.like((image.array.astype(np.float32) + noise).astype(np.float32), **meta)


def flux_for_noise(clean: Image, noise_std_hu: float, group: str = "smooth", seed: int = 0) -> float:
    """Full-dose flux at which a noise-free image gets ``noise_std_hu`` of noise in its flat soft tissue.

    Phantoms are often smaller than patients (less attenuation, less noise at the same flux); this sets the
    normal-dose noise to a clinical level instead (e.g. about 12 HU for a smooth kernel at 3 mm).
    """
    clean = _with_thickness(clean)
    rois = quality.uniform_rois(clean.array, float(np.mean(clean.spacing[:2])), max_rois=48)
    flux = CALIBRATIONS[group].typical_flux
    for _ in range(2):  # the second pass corrects for electronic noise
        noisy = add_calibrated_noise(clean, 1.0, group, flux=flux, seed=seed)
        flux *= (quality.noise_std(noisy.array - clean.array, rois) / noise_std_hu) ** 2
    return float(flux)


def add_calibrated_noise(clean: Image, dose_fraction: float, group: str = "smooth",
                         flux: Optional[float] = None, seed: int = 0) -> Image:
    """A noise-free image (e.g. the phantom's ``clean_ct``) as scanned at ``dose_fraction`` of a typical
    full dose of the kernel group (its calibrated median flux unless ``flux`` is given)."""
    cal = CALIBRATIONS[group]
    clean = _with_thickness(clean)
    noisy = add_noise(clean, dose_fraction, scanner(flux or cal.typical_flux), seed=seed)
    raw = noisy.array.astype(np.float32) - clean.array.astype(np.float32)
    noise = shape_noise(raw, float(np.mean(clean.spacing[:2])), cal)
    return clean.like((clean.array.astype(np.float32) + noise).astype(np.float32),
                      **dict(clean.metadata, dose_fraction=float(dose_fraction), kernel_group=group))


# -- calibration -----------------------------------------------------------------------------------------------

@dataclass
class PairNoise:
    """Real and simulated inserted noise of one full/quarter pair (for calibration and its report)."""

    patient: str
    kernel: str
    real_std: float
    sim_std: float
    real_mean_frequency: float
    sim_mean_frequency: float
    shape_difference: float
    extra: Dict[str, float] = field(default_factory=dict)

    @property
    def std_error(self) -> float:
        return self.sim_std / self.real_std - 1.0


def _pair_image(pair) -> Image:
    return pair.full.like(pair.full.array, **dict(pair.full.metadata, slice_thickness_mm=DEFAULT_THICKNESS_MM))


def calibrate_kernel(pairs: Sequence, group: str, n_bins: int = 24, seed: int = 0) -> KernelCalibration:
    """Fit the kernel transfer ``G(f)``, ``noise_gain`` and typical flux of one kernel group on real pairs.

    ``pairs``: :class:`lungai.denoise.ldct.LdctPair` of that group. ``G`` is the square root of the mean ratio of
    real to ramp-simulated NPS (shape only, normalised to unit mean square), on a common frequency grid.
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError(f"no pairs to calibrate the {group} kernel")
    f_max = min(0.5 / p.pixel_mm for p in pairs)
    grid = np.linspace(0.0, f_max, n_bins + 1)[1:] - 0.5 * f_max / n_bins
    ratios, real_means = [], []
    flat = KernelCalibration(group, "", (0.0, 1.0), (1.0, 1.0), 1.0, REFERENCE_FLUX, 0.0)
    for p in pairs:
        image = _pair_image(p)
        rois = quality.uniform_rois(image.array, p.pixel_mm)
        real = p.quarter.array - p.full.array
        sim = _inserted_noise(image, 0.25, REFERENCE_FLUX, flat, seed)
        fr, nps_real = quality.noise_power_spectrum(real, rois, p.pixel_mm)
        fs, nps_sim = quality.noise_power_spectrum(sim, rois, p.pixel_mm)
        a, b = np.interp(grid, fr, nps_real), np.interp(grid, fs, nps_sim)
        ratios.append((a / a.mean()) / (b / b.mean()))
        real_means.append(quality.nps_shape(fr, nps_real)["mean_frequency"])
    g2 = np.exp(np.mean(np.log(np.maximum(np.asarray(ratios), 1e-6)), axis=0))
    g = np.sqrt(g2 / np.mean(g2))
    shaped = KernelCalibration(group, ", ".join(sorted({p.kernel for p in pairs})), tuple(np.round(grid, 4)),
                               tuple(np.round(g, 4)), 1.0, REFERENCE_FLUX, float(np.median(real_means)))
    gains, fluxes = [], []
    for p in pairs:
        image = _pair_image(p)
        flux = estimate_flux(image, shaped, seed)
        sim = _inserted_noise(image, 0.25, float(np.median(flux)), shaped, seed + 1)
        rois = quality.uniform_rois(image.array, p.pixel_mm)
        gains.append(quality.noise_std(p.quarter.array - p.full.array, rois) / quality.noise_std(sim, rois))
        fluxes.append(float(np.median(flux)))
    gain = float(np.median(gains))
    # flux scales as 1 / noise variance: the gain-corrected typical flux
    return KernelCalibration(group, shaped.examples, shaped.frequencies, shaped.transfer, round(gain, 4),
                             float(np.median(fluxes)) / gain ** 2, shaped.nps_mean_frequency)


def compare_pair(pair, calibration: KernelCalibration, dose: float = 0.25, seed: int = 0) -> PairNoise:
    """Simulate the pair's quarter dose from its full dose and compare the inserted noise with the real one."""
    image = _pair_image(pair)
    sim = simulate_low_dose(image, dose, seed=seed, calibration=calibration).array - pair.full.array
    real = pair.quarter.array - pair.full.array
    rois = quality.uniform_rois(pair.full.array, pair.pixel_mm)
    fr, nps_r = quality.noise_power_spectrum(real, rois, pair.pixel_mm)
    fs, nps_s = quality.noise_power_spectrum(sim, rois, pair.pixel_mm)
    return PairNoise(pair.patient, pair.kernel, quality.noise_std(real, rois), quality.noise_std(sim, rois),
                     quality.nps_shape(fr, nps_r)["mean_frequency"], quality.nps_shape(fs, nps_s)["mean_frequency"],
                     quality.nps_shape_difference(fr, nps_s, nps_r),
                     {"real_quarter_std": quality.noise_std(pair.quarter.array, rois),
                      "sim_quarter_std": quality.noise_std(pair.full.array + sim, rois)})
