"""Image quality measures for low-dose CT and denoising, all in Hounsfield units with the window stated.

* Fidelity to a reference: :func:`rmse`, :func:`psnr`, :func:`ssim` and :func:`compare` (both windows below).
  PSNR and SSIM clip test and reference to the window and use the window width as the data range; SSIM is the
  2D Gaussian-weighted SSIM (sigma 1.5 px) of Wang et al., averaged over axial slices.
* Noise: :func:`uniform_rois` finds flat soft-tissue squares, :func:`noise_std` measures the noise standard
  deviation in them (plane-detrended, median over squares), :func:`noise_power_spectrum` gives the radially
  averaged NPS in HU^2 mm^2 and :func:`nps_shape` its mean and peak frequency.
* Sharpness: :func:`edge_sharpness` (gradient at the reference's strong edges, test over reference).
* Task: :func:`dice` and :func:`lesion_detection` (per-lesion hits and false positives by connected components).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cc3d
import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity

Window = Tuple[float, float]  # (low, high) HU

#: Lung window (centre -600 HU, width 1500 HU).
CHEST_WINDOW: Window = (-1350.0, 150.0)
#: Soft-tissue window used by the low-dose CT challenge literature ([-160, 240] HU).
SOFT_TISSUE_WINDOW: Window = (-160.0, 240.0)
WINDOWS: Dict[str, Window] = {"chest": CHEST_WINDOW, "soft_tissue": SOFT_TISSUE_WINDOW}


def window_from_centre(centre: float, width: float) -> Window:
    return (centre - width / 2.0, centre + width / 2.0)


def _pair(test: np.ndarray, reference: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(test, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"test {a.shape} and reference {b.shape} differ in shape")
    return a, b


def _clip(a: np.ndarray, window: Optional[Window]) -> np.ndarray:
    return a if window is None else np.clip(a, window[0], window[1])


def rmse(test: np.ndarray, reference: np.ndarray, window: Optional[Window] = None,
         mask: Optional[np.ndarray] = None) -> float:
    """Root mean square error in HU, after clipping both to ``window`` when given, over ``mask`` if given."""
    a, b = _pair(test, reference)
    d = _clip(a, window) - _clip(b, window)
    if mask is not None:
        d = d[np.asarray(mask, bool)]
    return float(np.sqrt(np.mean(d * d)))


def psnr(test: np.ndarray, reference: np.ndarray, window: Window = SOFT_TISSUE_WINDOW,
         mask: Optional[np.ndarray] = None) -> float:
    """Peak signal-to-noise ratio in dB with the window width as the peak (both images clipped to it)."""
    e = rmse(test, reference, window, mask)
    width = window[1] - window[0]
    return float("inf") if e == 0 else float(20.0 * np.log10(width / e))


def ssim(test: np.ndarray, reference: np.ndarray, window: Window = SOFT_TISSUE_WINDOW) -> float:
    """Mean structural similarity of the windowed images (2D per axial slice, Gaussian sigma 1.5 px)."""
    a, b = _pair(test, reference)
    a, b = _clip(a, window), _clip(b, window)
    width = window[1] - window[0]
    slices = [(a, b)] if a.ndim == 2 else list(zip(a, b))
    values = [structural_similarity(x, y, data_range=width, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False) for x, y in slices]
    return float(np.mean(values))


def compare(test: np.ndarray, reference: np.ndarray,
            windows: Optional[Dict[str, Window]] = None) -> Dict[str, Dict[str, float]]:
    """PSNR (dB), SSIM and RMSE (HU) of ``test`` against ``reference`` for each named window, plus raw RMSE."""
    out: Dict[str, Dict[str, float]] = {}
    for name, window in (windows or WINDOWS).items():
        out[name] = {"window_hu": [float(window[0]), float(window[1])],
                     "psnr_db": psnr(test, reference, window), "ssim": ssim(test, reference, window),
                     "rmse_hu": rmse(test, reference, window)}
    out["unwindowed"] = {"rmse_hu": rmse(test, reference)}
    return out


# -- noise -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Roi:
    """A square region of one axial slice: ``image[k, j0:j0+n, i0:i0+n]``."""

    k: int
    j0: int
    i0: int
    n: int

    def take(self, volume: np.ndarray) -> np.ndarray:
        return volume[self.k, self.j0:self.j0 + self.n, self.i0:self.i0 + self.n]


def _as3d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a[None] if a.ndim == 2 else a


def uniform_rois(image: np.ndarray, spacing_mm: float = 0.7, size_mm: float = 12.0,
                 hu_range: Tuple[float, float] = (-150.0, 150.0), keep_fraction: float = 0.25,
                 max_rois: int = 64) -> List[Roi]:
    """Flat soft-tissue squares of about ``size_mm`` in the (preferably low-noise) ``image``.

    Candidates lie on a half-overlapping grid, wholly inside tissue whose smoothed value is within ``hu_range``;
    they are ranked by the spread of a smoothed copy (structure) and the flattest ``keep_fraction`` are kept.
    """
    vol = _as3d(image).astype(np.float32)
    n = max(8, int(round(size_mm / spacing_mm)))
    step = max(1, n // 2)
    scored: List[Tuple[float, Roi]] = []
    for k, sl in enumerate(vol):
        smooth = ndimage.gaussian_filter(sl, 2.0)
        tissue = (smooth > hu_range[0]) & (smooth < hu_range[1])
        inside = ndimage.binary_erosion(tissue, iterations=2)
        table = np.pad(inside.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        j0s = np.arange(0, sl.shape[0] - n + 1, step)
        i0s = np.arange(0, sl.shape[1] - n + 1, step)
        jj, ii = np.meshgrid(j0s, i0s, indexing="ij")
        count = table[jj + n, ii + n] - table[jj, ii + n] - table[jj + n, ii] + table[jj, ii]
        for j0, i0 in zip(jj[count == n * n], ii[count == n * n]):
            patch = smooth[j0:j0 + n, i0:i0 + n]
            scored.append((float(patch.std()), Roi(k, int(j0), int(i0), n)))
    if not scored:
        return []
    scored.sort(key=lambda t: t[0])
    keep = max(1, int(round(len(scored) * keep_fraction)))
    return [roi for _, roi in scored[:min(keep, max_rois)]]


def _detrend(patch: np.ndarray) -> np.ndarray:
    """Remove the least-squares plane from a square patch."""
    n0, n1 = patch.shape
    jj, ii = np.mgrid[0:n0, 0:n1]
    design = np.stack([np.ones(patch.size), jj.ravel(), ii.ravel()], axis=1)
    coef, *_ = np.linalg.lstsq(design, patch.ravel().astype(np.float64), rcond=None)
    return patch - (design @ coef).reshape(patch.shape)


def noise_std(image: np.ndarray, rois: Sequence[Roi]) -> float:
    """Noise standard deviation (HU): median over ``rois`` of the std of the plane-detrended patch."""
    if not rois:
        raise ValueError("no uniform regions to measure noise in")
    vol = _as3d(image)
    return float(np.median([_detrend(r.take(vol)).std() for r in rois]))


def mean_hu(image: np.ndarray, rois: Sequence[Roi]) -> float:
    """Mean HU over all ``rois`` (for checking that a filter keeps CT numbers calibrated)."""
    vol = _as3d(image)
    return float(np.mean([r.take(vol).mean() for r in rois]))


def noise_power_spectrum(image: np.ndarray, rois: Sequence[Roi], pixel_mm: float,
                         n_bins: int = 24) -> Tuple[np.ndarray, np.ndarray]:
    """Radially averaged 2D noise power spectrum (HU^2 mm^2) over ``rois``; returns (cycles/mm, NPS).

    Best measured on a noise-only image (e.g. low dose minus full dose); each patch is plane-detrended.
    """
    if not rois:
        raise ValueError("no regions to measure the noise power spectrum in")
    vol = _as3d(image)
    n = rois[0].n
    power = np.zeros((n, n))
    for r in rois:
        power += np.abs(np.fft.fft2(_detrend(r.take(vol)))) ** 2
    power *= pixel_mm * pixel_mm / (n * n * len(rois))
    f = np.fft.fftfreq(n, d=pixel_mm)
    radius = np.hypot(*np.meshgrid(f, f, indexing="ij"))
    f_max = 0.5 / pixel_mm
    edges = np.linspace(0.0, f_max, n_bins + 1)
    idx = np.digitize(radius.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < n_bins)
    sums = np.bincount(idx[ok], weights=power.ravel()[ok], minlength=n_bins)
    counts = np.bincount(idx[ok], minlength=n_bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    valid = counts > 0
    return centres[valid], sums[valid] / counts[valid]


def nps_shape(freq: np.ndarray, nps: np.ndarray) -> Dict[str, float]:
    """Mean frequency (NPS-weighted) and peak frequency of a radial NPS, in cycles/mm."""
    weights = nps * freq  # radial average -> area element 2*pi*f
    return {"mean_frequency": float(np.sum(freq * weights) / np.sum(weights)),
            "peak_frequency": float(freq[int(np.argmax(nps))])}


def nps_shape_difference(freq: np.ndarray, nps_a: np.ndarray, nps_b: np.ndarray) -> float:
    """Relative L1 difference of two area-normalised radial NPS curves (0 = same shape)."""
    area = freq / freq.sum()
    a = nps_a / np.sum(nps_a * area)
    b = nps_b / np.sum(nps_b * area)
    return float(np.sum(np.abs(a - b) * area) / np.sum(b * area))


# -- sharpness -------------------------------------------------------------------------------------------------

def strong_edges(reference: np.ndarray, min_step_hu: float = 300.0, sigma_px: float = 1.0) -> np.ndarray:
    """Mask of pixels on strong edges of ``reference`` (gradient over ``min_step_hu`` per ~2 px, thinned)."""
    vol = _as3d(reference).astype(np.float32)
    out = np.zeros(vol.shape, bool)
    for k, sl in enumerate(vol):
        g = ndimage.gaussian_gradient_magnitude(sl, sigma_px)
        thresh = min_step_hu / (2.0 * np.sqrt(2 * np.pi) * sigma_px)
        local_max = g == ndimage.maximum_filter(g, size=3)
        out[k] = (g > thresh) & local_max
    return out.reshape(np.shape(reference))


def edge_sharpness(test: np.ndarray, reference: np.ndarray, edges: Optional[np.ndarray] = None,
                   sigma_px: float = 1.0) -> float:
    """Mean gradient magnitude of ``test`` over that of ``reference`` on the reference's strong edges.

    1.0 means edges as steep as in the reference; a denoiser that blurs gives clearly less than 1.
    """
    a, b = _pair(test, reference)
    mask = strong_edges(b, sigma_px=sigma_px) if edges is None else np.asarray(edges, bool)
    if not mask.any():
        raise ValueError("the reference has no strong edges to measure sharpness on")
    a3, b3, m3 = _as3d(a), _as3d(b), _as3d(mask)
    ga = np.concatenate([ndimage.gaussian_gradient_magnitude(s, sigma_px)[m] for s, m in zip(a3, m3)])
    gb = np.concatenate([ndimage.gaussian_gradient_magnitude(s, sigma_px)[m] for s, m in zip(b3, m3)])
    return float(ga.mean() / gb.mean())


# -- task measures ---------------------------------------------------------------------------------------------

def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else float(2.0 * np.logical_and(a, b).sum() / total)


def lesion_detection(predicted: np.ndarray, truth: np.ndarray, min_overlap: float = 0.1,
                     min_voxels: int = 1) -> Dict[str, float]:
    """Per-lesion detection: a true lesion (26-connected component) is found when at least ``min_overlap``
    of it is predicted; a predicted component touching no true lesion is a false positive.
    """
    p, t = np.asarray(predicted, bool), np.asarray(truth, bool)
    connectivity = 26 if p.ndim == 3 else 8
    t_lab, n_true = cc3d.connected_components(t, connectivity=connectivity, return_N=True)
    p_lab, n_pred = cc3d.connected_components(p, connectivity=connectivity, return_N=True)
    t_sizes = np.bincount(t_lab.ravel(), minlength=n_true + 1)
    hits = np.bincount(t_lab[p].ravel(), minlength=n_true + 1)
    real = [i for i in range(1, n_true + 1) if t_sizes[i] >= min_voxels]
    found = sum(1 for i in real if hits[i] >= min_overlap * t_sizes[i])
    p_sizes = np.bincount(p_lab.ravel(), minlength=n_pred + 1)
    touching = np.bincount(p_lab[t].ravel(), minlength=n_pred + 1)
    false_pos = sum(1 for i in range(1, n_pred + 1) if touching[i] == 0 and p_sizes[i] >= min_voxels)
    return {"lesions": len(real), "detected": found,
            "sensitivity": float(found / len(real)) if real else 1.0, "false_positives": int(false_pos)}
