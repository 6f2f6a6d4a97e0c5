"""Projection-domain CT noise simulation: realistic quantum and electronic noise at any dose.

Per axial slice the image is turned into linear attenuation, forward projected (parallel beam) to line
integrals ``p``, photon counts are drawn (Poisson at ``N0 * dose * exp(-p)`` plus Gaussian electronic noise),
the log gives noisy line integrals, and the *noise* sinogram (noisy minus clean) is reconstructed by filtered
back-projection and added to the image (noise insertion). Because only the noise is reconstructed, the anatomy
stays exactly as given and the noise has CT's texture (ramp-filtered spectrum, streaky behind dense paths,
stronger in the centre of large patients).

Two entry points:

* :func:`add_noise` - noise-free image in, the image at a given dose out (used by the phantom).
* :func:`simulate_dose` - a real scan taken at full dose in, the same scan at ``dose_fraction`` out: only the
  *extra* noise variance ``var(dose) - var(full)`` is inserted (Gaussian in the sinogram with exactly that
  variance; the established "lower-dose simulation" approach), so the output noise matches a real scan at
  that dose.

Noise is reconstructed on a square grid of at most ``ScannerModel.max_recon_pixels`` per side covering the
slice and resampled to the image grid; the back-projector is a cached sparse matrix, applied to all slices
of a batch at once, so a 300-slice volume takes seconds, not minutes.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import numpy as np
import scipy.sparse as sp

from lungai.image import Image
from lungai.progress import Progress, ensure

MU_WATER_PER_MM = 0.0192  # linear attenuation of water at about 70 keV effective energy (1/mm)


@dataclass(frozen=True)
class ScannerModel:
    """Acquisition model of the simulated scanner (parallel-beam geometry, one rotation per slice).

    ``incident_flux`` is the unattenuated photon fluence per mm^2 at the detector (referred to the isocentre)
    over one full rotation at full dose; it is spread over the views, so changing ``views`` or the detector
    sampling does not change the dose. ``electronic_noise`` is the SD of the additive detector noise in photon
    counts per bin and view. ``kernel`` chooses the reconstruction filter: ``"standard"`` (Hann-apodised ramp,
    soft-tissue kernel), ``"sharp"`` (Shepp-Logan, lung kernel) or ``"ramp"``. ``reference_slice_mm`` is the
    slice thickness the fluence refers to: thicker slices collect proportionally more photons.
    """

    incident_flux: float = 3.6e7
    electronic_noise: float = 3.0
    views: int = 180
    kernel: str = "standard"
    max_recon_pixels: int = 512
    mu_water: float = MU_WATER_PER_MM
    min_counts: float = 1.0

    def __post_init__(self) -> None:
        if self.incident_flux <= 0 or self.views < 8 or self.max_recon_pixels < 32:
            raise ValueError("ScannerModel needs incident_flux > 0, views >= 8 and max_recon_pixels >= 32")
        if self.kernel not in _KERNELS:
            raise ValueError(f"unknown kernel {self.kernel!r}; choose one of {sorted(_KERNELS)}")
        if self.electronic_noise < 0:
            raise ValueError("electronic_noise must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


_KERNELS = ("ramp", "sharp", "standard")


# -- geometry ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Geometry:
    pixels: int  # R: the reconstruction grid is R x R
    pixel_mm: float
    views: int
    bins: int

    @property
    def bin_mm(self) -> float:
        return self.pixel_mm


@functools.lru_cache(maxsize=4)
def _backprojector(pixels: int, views: int, bins: int) -> sp.csr_matrix:
    """Pixel-driven linear-interpolation back-projector B (R*R x V*D) in units of pixels/bins.

    ``B @ q`` sums, for every pixel, the filtered projection of every view at the pixel's detector position;
    ``B.T`` is the matching (adjoint) forward projector.
    """
    c = (np.arange(pixels, dtype=np.float32) - (pixels - 1) / 2.0)
    theta = np.pi * np.arange(views) / views
    cos, sin = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
    nnz = 2 * views * pixels * pixels
    cols = np.empty((pixels, pixels, views, 2), dtype=np.int32)
    data = np.empty((pixels, pixels, views, 2), dtype=np.float32)
    offsets = (np.arange(views, dtype=np.int32) * bins)[None, :]
    for row in range(pixels):  # one image row at a time keeps the temporaries small
        u = c[:, None] * cos[None] + (c[row] * sin + (bins - 1) / 2.0)[None]
        i0 = np.clip(np.floor(u).astype(np.int32), 0, bins - 2)
        w = u - i0
        cols[row, :, :, 0] = i0 + offsets
        cols[row, :, :, 1] = cols[row, :, :, 0] + 1
        data[row, :, :, 0] = 1.0 - w
        data[row, :, :, 1] = w
    indptr = np.arange(0, nnz + 1, 2 * views, dtype=np.int64)
    return sp.csr_matrix((data.reshape(-1), cols.reshape(-1), indptr), shape=(pixels * pixels, views * bins))


@functools.lru_cache(maxsize=8)
def _filter_response(bins: int, kernel: str) -> Tuple[np.ndarray, int]:
    """Frequency response of the discrete ramp filter (Kak & Slaney spatial kernel) with apodisation."""
    n_fft = int(2 ** np.ceil(np.log2(2 * bins)))
    n = np.arange(n_fft)
    n = np.where(n > n_fft // 2, n - n_fft, n)
    h = np.zeros(n_fft)
    h[n == 0] = 0.25
    odd = (n % 2) != 0
    h[odd] = -1.0 / (np.pi * n[odd]) ** 2
    response = np.real(np.fft.rfft(h))
    f = np.fft.rfftfreq(n_fft)  # cycles per bin, 0..0.5
    if kernel == "standard":
        response = response * (0.5 + 0.5 * np.cos(np.pi * f / 0.5))
    elif kernel == "sharp":
        response = response * np.sinc(f)
    return response.astype(np.float32), n_fft


def _geometry(image: Image, scanner: ScannerModel) -> _Geometry:
    nx, ny = image.size[0], image.size[1]
    sx, sy = image.spacing[0], image.spacing[1]
    extent = max(nx * sx, ny * sy)
    pixels = int(min(scanner.max_recon_pixels, int(np.ceil(extent / min(sx, sy)))))
    pixels += pixels % 2
    bins = int(np.ceil(pixels * np.sqrt(2.0))) + 3
    return _Geometry(pixels, extent / pixels, scanner.views, bins)


# -- resampling between the image grid and the square reconstruction grid -----------------------------------
def _same_grid(image: Image, geo: _Geometry) -> bool:
    nx, ny = image.size[0], image.size[1]
    return nx == ny == geo.pixels and abs(image.spacing[0] - geo.pixel_mm) < 1e-6 * geo.pixel_mm \
        and abs(image.spacing[1] - geo.pixel_mm) < 1e-6 * geo.pixel_mm


def _to_recon_grid(slices: np.ndarray, image: Image, geo: _Geometry) -> np.ndarray:
    """Resample (B, ny, nx) slices onto the centred R x R grid (bilinear via torch)."""
    if _same_grid(image, geo):
        return np.ascontiguousarray(slices, dtype=np.float32)
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32))[:, None]
    return F.grid_sample(t, _sampling_grid(image, geo, to_recon=True).expand(t.shape[0], -1, -1, -1),
                         mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0].numpy()


def _from_recon_grid(slices: np.ndarray, image: Image, geo: _Geometry) -> np.ndarray:
    if _same_grid(image, geo):
        return slices
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32))[:, None]
    return F.grid_sample(t, _sampling_grid(image, geo, to_recon=False).expand(t.shape[0], -1, -1, -1),
                         mode="bicubic", padding_mode="border", align_corners=False)[:, 0].numpy()


def _sampling_grid(image: Image, geo: _Geometry, to_recon: bool):
    """Normalised grid_sample coordinates mapping one grid's pixel centres into the other (both centred)."""
    import torch

    nx, ny = image.size[0], image.size[1]
    sx, sy = image.spacing[0], image.spacing[1]
    extent = geo.pixels * geo.pixel_mm
    if to_recon:  # sample the image at recon pixel centres
        c = (np.arange(geo.pixels) - (geo.pixels - 1) / 2.0) * geo.pixel_mm
        gx = c / (nx * sx / 2.0)
        gy = c / (ny * sy / 2.0)
    else:  # sample the recon grid at image pixel centres
        gx = (np.arange(nx) - (nx - 1) / 2.0) * sx / (extent / 2.0)
        gy = (np.arange(ny) - (ny - 1) / 2.0) * sy / (extent / 2.0)
    grid = np.stack(np.meshgrid(gx, gy), -1).astype(np.float32)  # (H, W, 2) with (x, y)
    return torch.from_numpy(grid)[None]


# -- the simulation ---------------------------------------------------------------------------------------
def hu_to_mu(hu: np.ndarray, mu_water: float = MU_WATER_PER_MM) -> np.ndarray:
    """Linear attenuation (1/mm) of HU values; air and below clip to 0."""
    return np.maximum(mu_water * (1.0 + np.asarray(hu, dtype=np.float32) / 1000.0), 0.0).astype(np.float32)


def _slice_thickness(image: Image) -> float:
    value = image.metadata.get("slice_thickness_mm") if image.metadata else None
    return float(value) if value else float(image.spacing[2])


def _line_integrals(mu_recon: np.ndarray, geo: _Geometry) -> np.ndarray:
    """Forward projections (B, V, D) in attenuation units of R x R slices of mu (1/mm)."""
    b = _backprojector(geo.pixels, geo.views, geo.bins)
    flat = mu_recon.reshape(mu_recon.shape[0], -1).T  # (R*R, B)
    # pixel-driven projector: each pixel spreads value * area over bins of width bin_mm
    p = (b.T @ flat) * (geo.pixel_mm ** 2 / geo.bin_mm)
    return np.ascontiguousarray(p.T.reshape(-1, geo.views, geo.bins), dtype=np.float32)


def _fbp(sinograms: np.ndarray, geo: _Geometry, kernel: str) -> np.ndarray:
    """Filtered back-projection of (B, V, D) sinograms to (B, R, R) images (1/mm)."""
    response, n_fft = _filter_response(geo.bins, kernel)
    spec = np.fft.rfft(sinograms, n=n_fft, axis=-1) * response
    q = np.fft.irfft(spec, n=n_fft, axis=-1)[..., : geo.bins].astype(np.float32) / geo.bin_mm
    b = _backprojector(geo.pixels, geo.views, geo.bins)
    img = b @ q.reshape(q.shape[0], -1).T  # (R*R, B)
    img *= np.pi / geo.views
    return np.ascontiguousarray(img.T.reshape(-1, geo.pixels, geo.pixels), dtype=np.float32)


def _counts_per_bin(scanner: ScannerModel, geo: _Geometry, thickness_mm: float) -> float:
    return scanner.incident_flux * geo.bin_mm * thickness_mm / scanner.views


def _noise_volume(image_hu: Image, scanner: ScannerModel, seed: int, progress: Optional[Progress],
                  sinogram_noise) -> np.ndarray:
    """Reconstructed HU noise for every slice; ``sinogram_noise(p, n0, rng)`` returns noise line integrals."""
    progress = ensure(progress)
    if image_hu.ndim != 3:
        raise ValueError("CT noise simulation needs a 3D image")
    geo = _geometry(image_hu, scanner)
    n0 = _counts_per_bin(scanner, geo, _slice_thickness(image_hu))
    rng = np.random.default_rng(seed)
    nz = image_hu.array.shape[0]
    out = np.empty(image_hu.array.shape, dtype=np.float32)
    # large batches: the sparse back-projector is streamed from memory once per batch
    batch = max(1, int(40_000_000 // (geo.pixels * geo.pixels)))
    # line integrals vary slowly along z: project the mean attenuation of groups of slices spanning ~5 mm
    group = max(1, int(round(5.0 / float(image_hu.spacing[2]))))
    for start in range(0, nz, batch):
        stop = min(nz, start + batch)
        mu = hu_to_mu(image_hu.array[start:stop], scanner.mu_water)
        n_groups = int(np.ceil((stop - start) / group))
        pad = n_groups * group - (stop - start)
        if pad:
            mu = np.concatenate([mu, np.repeat(mu[-1:], pad, axis=0)])
        mu_mean = mu.reshape(n_groups, group, *mu.shape[1:]).mean(axis=1)
        p = _line_integrals(_to_recon_grid(mu_mean, image_hu, geo), geo)
        p = np.repeat(p, group, axis=0)[: stop - start]
        noise_p = sinogram_noise(p, n0, rng)
        noise_mu = _fbp(noise_p, geo, scanner.kernel)
        out[start:stop] = _from_recon_grid(noise_mu, image_hu, geo) * (1000.0 / scanner.mu_water)
        progress.update(stop / nz, f"noise slices {stop}/{nz}")
    return out


def add_noise(clean_hu: Image, dose_fraction: float = 1.0, scanner: ScannerModel = ScannerModel(),
              seed: int = 0, progress: Optional[Progress] = None) -> Image:
    """The noise-free image ``clean_hu`` as scanned at ``dose_fraction`` of the scanner's full dose.

    Photon counts are Poisson at ``N0 * dose * exp(-p)`` (its normal limit above 50 photons) plus Gaussian
    electronic noise; counts below
    ``scanner.min_counts`` are clipped as a real scanner's log step does (photon starvation streaks).
    """
    if not 0 < dose_fraction <= 100:
        raise ValueError(f"dose_fraction must be in (0, 100], got {dose_fraction}")

    def poisson_noise(p: np.ndarray, n0: float, rng: np.random.Generator) -> np.ndarray:
        expected = np.exp(-p) * np.float32(n0 * dose_fraction)
        # Poisson draws where counts are low; above 50 photons its normal limit is exact to well under 1 %
        counts = rng.standard_normal(p.shape, dtype=np.float32)
        counts *= np.sqrt(expected + np.float32(scanner.electronic_noise ** 2))
        counts += expected
        low = expected < 50.0
        if low.any():
            counts[low] = rng.poisson(expected[low]) + rng.normal(0.0, scanner.electronic_noise, int(low.sum()))
        np.maximum(counts, np.float32(scanner.min_counts), out=counts)
        return np.log(expected / counts)

    noise = _noise_volume(clean_hu, scanner, seed, progress, poisson_noise)
    meta = dict(clean_hu.metadata)
    meta.update(dose_fraction=float(dose_fraction), noise_model="projection-poisson", scanner=scanner.to_dict())
    return clean_hu.like((clean_hu.array.astype(np.float32) + noise).astype(np.float32), **meta)


def simulate_dose(image_hu: Image, dose_fraction: float, scanner: ScannerModel = ScannerModel(), seed: int = 0,
                  progress: Optional[Progress] = None) -> Image:
    """A real full-dose scan as it would look at ``dose_fraction`` (0 < f <= 1) of its dose.

    Inserts sinogram noise with variance ``var(f) - var(1)`` where ``var(d) = 1/(N0 d e^-p)
    + sigma_e^2/(N0 d e^-p)^2``; ``dose_fraction == 1`` returns a copy.
    """
    if not 0 < dose_fraction <= 1:
        raise ValueError(f"dose_fraction must be in (0, 1] for a lower-dose simulation, got {dose_fraction}")
    meta = dict(image_hu.metadata)
    meta.update(dose_fraction=float(dose_fraction), noise_model="projection-insertion", scanner=scanner.to_dict())
    if dose_fraction == 1.0:
        return image_hu.like(image_hu.array.astype(np.float32).copy(), **meta)
    d = float(dose_fraction)
    sigma_e2 = scanner.electronic_noise ** 2

    def extra_noise(p: np.ndarray, n0: float, rng: np.random.Generator) -> np.ndarray:
        transmitted = n0 * np.exp(-p, dtype=np.float64)
        var = (1.0 / d - 1.0) / transmitted + sigma_e2 * (1.0 / d ** 2 - 1.0) / transmitted ** 2
        return (rng.standard_normal(p.shape) * np.sqrt(var)).astype(np.float32)

    noise = _noise_volume(image_hu, scanner, seed, progress, extra_noise)
    return image_hu.like((image_hu.array.astype(np.float32) + noise).astype(np.float32), **meta)


def reconstruct(sinograms: np.ndarray, pixels: int, pixel_mm: float, kernel: str = "standard") -> np.ndarray:
    """FBP of (B, V, D) parallel-beam sinograms (bin width = ``pixel_mm``) to (B, R, R) images (1/mm)."""
    b, v, d = sinograms.shape
    return _fbp(np.asarray(sinograms, dtype=np.float32), _Geometry(pixels, pixel_mm, v, d), kernel)


def project(slices_mu: np.ndarray, pixel_mm: float, views: int) -> np.ndarray:
    """Parallel-beam line integrals (B, V, D) of (B, R, R) attenuation slices (1/mm, square pixels)."""
    r = slices_mu.shape[-1]
    geo = _Geometry(r, pixel_mm, views, int(np.ceil(r * np.sqrt(2.0))) + 3)
    return _line_integrals(np.asarray(slices_mu, dtype=np.float32), geo)
