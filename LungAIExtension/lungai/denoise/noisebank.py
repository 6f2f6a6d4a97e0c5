"""Noise-bank training of the CNN denoiser: fresh low-dose inputs at every step, on CPU or GPU.

A *bundle* holds normal-dose axial slices (the targets, int16 HU) and, per slice, one or more realizations of
the extra noise a quarter dose adds (int8 with a per-slice step in HU), simulated once with the calibrated
projection-domain model of :mod:`lungai.denoise.dose`. A phantom bundle may instead hold the noise-free phantom
as target and the whole quarter-dose noise (``clean_target``): the same expected target, less noisy a signal. Training then draws, at every step, a patch, one noise
realization, a dose (the noise of dose ``d`` is the quarter-dose noise times ``sqrt((1/d - 1) / 3)``), a random
sign of the noise and a random rotation/flip, so a few hundred simulated slices give millions of distinct pairs
without re-running the slow simulation.

For a network with the noise-level input (:mod:`lungai.denoise.network`) each bundle also has a table of the noise
std that :func:`lungai.denoise.noise_level.slice_noise_std` measures on the low-dose input, per realization and
slice at a grid of doses (``levels/<bundle>.npz``, made by :func:`lungai.denoise.noise_level.bundle_noise_levels`):
training reads the level the inference would measure on that very input (interpolated in log dose), never the
dose it was drawn at.

This module needs only numpy and torch (no SimpleITK), so training runs on a bare GPU machine:
``Testing/benchmarks/train_denoise_bank.py``.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from lungai.denoise.network import NOISE_LEVEL_SCALE
from lungai.denoise.objective import HU_SCALE, LUNG_WINDOW, weighted_mse, window_psnr

BUNDLE_DOSE = 0.25  # the dose whose extra noise a bundle stores
#: int8 codes in steps of std/NOISE_STEPS_PER_SIGMA: the rounding adds white noise of std/(8 sqrt 12), 0.1 % of the
#: noise power, codes reach 16 std (never clipped in practice), and the codes compress to about 5 bits
NOISE_STEPS_PER_SIGMA = 8.0
LUNG_HU = (-950.0, -400.0)  # target HU counted as lung parenchyma by the optional lung loss weight
LEVELS_FOLDER = "levels"  # beside the bundles: the measured noise-level table of each bundle


def quantize_noise(noise: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Noise slices [n, j, i] (HU) -> int8 codes and the HU step of each slice."""
    noise = np.asarray(noise, np.float32)
    std = noise.reshape(len(noise), -1).std(axis=1)
    step = np.maximum(std / NOISE_STEPS_PER_SIGMA, 1e-3).astype(np.float32)
    codes = np.clip(np.rint(noise / step[:, None, None]), -127, 127).astype(np.int8)
    return codes, step


def noise_scale(dose: float, clean_target: bool = False) -> float:
    """Factor turning the stored quarter-dose noise into that of ``dose``.

    Stored extra noise (over the normal-dose target) has variance ``1/d - 1``; with ``clean_target`` the stored
    noise is the whole noise of the quarter dose, variance ``1/d``.
    """
    if clean_target:
        return math.sqrt(BUNDLE_DOSE / dose)
    return math.sqrt((1.0 / dose - 1.0) / (1.0 / BUNDLE_DOSE - 1.0))


def save_bundle(path: Path, images: np.ndarray, noise: Sequence[np.ndarray], pixel_mm: float, source: str,
                kernels: Sequence[str], lesions: Optional[np.ndarray] = None, clean_target: bool = False) -> None:
    """Write a bundle: ``images`` [n, j, i] normal dose (HU), ``noise`` realizations each [n, j, i] (HU).

    ``clean_target``: ``images`` are noise-free and ``noise`` is the whole quarter-dose noise.
    """
    quantized = [quantize_noise(n) for n in noise]
    arrays = {"images": np.clip(np.rint(images), -32768, 32767).astype(np.int16),
              "noise": np.stack([q[0] for q in quantized]), "noise_step": np.stack([q[1] for q in quantized]),
              "pixel_mm": np.float32(pixel_mm), "source": np.array(source), "kernels": np.array(list(kernels)),
              "clean_target": np.bool_(clean_target)}
    if lesions is not None:
        arrays["lesions"] = np.asarray(lesions, bool)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


@dataclass
class Bundle:
    """One bundle on a torch device: int16 targets, int8 noise codes [r, n, j, i], steps [r, n]."""

    name: str
    images: torch.Tensor
    noise: torch.Tensor
    noise_step: torch.Tensor
    lesions: Optional[torch.Tensor]
    body: List[torch.Tensor]  # per slice: flat indices of body pixels (patch centres)
    weight: float = 1.0
    clean_target: bool = False
    level_doses: Optional[np.ndarray] = None  # [g] doses of the noise-level table, ascending
    levels: Optional[np.ndarray] = None  # [r, n, g] noise std (HU) measured on the input at those doses

    @classmethod
    def load(cls, path: Path, device: torch.device, weight: float = 1.0) -> "Bundle":
        """Read a bundle and, when ``levels/<name>.npz`` exists beside it, its noise-level table."""
        path = Path(path)
        z = np.load(path)
        images = torch.from_numpy(z["images"]).to(device)
        body = [torch.nonzero(sl.flatten() > -700).flatten() for sl in images]
        lesions = torch.from_numpy(z["lesions"]).to(device) if "lesions" in z.files else None
        clean = bool(z["clean_target"]) if "clean_target" in z.files else False
        bundle = cls(path.stem, images, torch.from_numpy(z["noise"]).to(device),
                     torch.from_numpy(z["noise_step"]).to(device), lesions, body, weight, clean)
        table = levels_path(path)
        if table.is_file():
            t = np.load(table)
            bundle.level_doses, bundle.levels = t["doses"].astype(float), t["levels"].astype(float)
            if bundle.levels.shape[:2] != tuple(bundle.noise.shape[:2]):
                raise ValueError(f"{table} does not fit bundle {path}")
        return bundle

    def noise_level(self, k: int, r: int, dose: float) -> float:
        """Noise std (HU) measured on the input of slice ``k``, realization ``r`` at ``dose`` (log-dose interpolation)."""
        if self.levels is None:
            raise ValueError(f"bundle {self.name} has no noise-level table (make it with bundle_noise_levels)")
        return float(np.exp(np.interp(math.log(dose), np.log(self.level_doses), np.log(self.levels[r, k]))))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def pair(self, k: int, r: int, dose: float, sign: float) -> Tuple[torch.Tensor, torch.Tensor]:
        """Low-dose input and target (normal dose or noise-free) of slice ``k``, realization ``r`` (HU, float32)."""
        target = self.images[k].float()
        extra = self.noise[r, k].float() * (self.noise_step[r, k] * sign * noise_scale(dose, self.clean_target))
        return target + extra, target


def levels_path(bundle_path: Path) -> Path:
    """Where the noise-level table of a bundle lives: ``levels/<bundle name>.npz`` beside it."""
    return Path(bundle_path).parent / LEVELS_FOLDER / Path(bundle_path).name


def level_channel(level_hu: float, shape: Tuple[int, ...]) -> torch.Tensor:
    """The network's noise-level input: the noise std times ``NOISE_LEVEL_SCALE``, constant over ``shape``."""
    return torch.full(shape, level_hu * NOISE_LEVEL_SCALE, dtype=torch.float32)


class NoiseBank:
    """Draws training batches from bundles: patch, realization, dose, noise sign, rotation and flip.

    With ``noise_level_input`` every input gets a second channel, the noise level measured on that input slice.
    """

    def __init__(self, bundles: Sequence[Bundle], patch: int = 128, doses: Tuple[float, float] = (0.1, 0.5),
                 quarter_share: float = 0.5, lesion_weight: float = 3.0, lung_weight: float = 0.0, seed: int = 0,
                 noise_level_input: bool = False):
        self.bundles = [b for b in bundles if len(b)]
        if not self.bundles:
            raise ValueError("no training slices")
        self.noise_level_input = noise_level_input
        self.patch, self.doses, self.quarter_share, self.lesion_weight = patch, doses, quarter_share, lesion_weight
        self.lung_weight = lung_weight
        w = np.array([b.weight for b in self.bundles], float)
        self.bundle_p = w / w.sum()
        self.rng = np.random.default_rng(seed)

    def _dose(self) -> float:
        if self.rng.uniform() < self.quarter_share:
            return float(self.rng.uniform(0.22, 0.28))
        lo, hi = self.doses
        return float(math.exp(self.rng.uniform(math.log(lo), math.log(hi))))

    def sample(self, batch: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """``inputs`` [b, 1, p, p] and ``targets`` [b, 2, p, p] (target, loss weight) in network units."""
        xs, ys = [], []
        p = self.patch
        for _ in range(batch):
            b = self.bundles[self.rng.choice(len(self.bundles), p=self.bundle_p)]
            k = int(self.rng.integers(len(b)))
            r = int(self.rng.integers(b.noise.shape[0]))
            dose = self._dose()
            x, y = b.pair(k, r, dose, float(self.rng.choice((-1.0, 1.0))))
            w = (1.0 + self.lesion_weight * b.lesions[k].float()) if b.lesions is not None else torch.ones_like(y)
            if self.lung_weight:  # lung parenchyma (-950..-400 HU in the target), where lesions are read
                w = w + self.lung_weight * ((y > LUNG_HU[0]) & (y < LUNG_HU[1])).float()
            h, wd = y.shape
            ph, pw = min(p, h - h % 4), min(p, wd - wd % 4)
            body = b.body[k]
            centre = int(body[int(self.rng.integers(len(body)))]) if len(body) else int(self.rng.integers(h * wd))
            j = int(np.clip(centre // wd - ph // 2, 0, h - ph))
            i = int(np.clip(centre % wd - pw // 2, 0, wd - pw))
            stack = torch.stack([x, y, w])[:, j:j + ph, i:i + pw]
            if (ph, pw) != (p, p):  # a small image: pad to the patch (zero loss weight outside)
                stack = torch.nn.functional.pad(stack, (0, p - pw, 0, p - ph))
            stack = torch.rot90(stack, int(self.rng.integers(4)), dims=(1, 2))
            if self.rng.uniform() < 0.5:
                stack = torch.flip(stack, dims=(2,))
            x = stack[0:1] * HU_SCALE
            if self.noise_level_input:
                x = torch.cat([x, level_channel(b.noise_level(k, r, dose), x.shape).to(x.device)])
            xs.append(x)
            ys.append(torch.stack([stack[1] * HU_SCALE, stack[2]]))
        return torch.stack(xs), torch.stack(ys)


def validation_pairs(bundles: Sequence[Bundle], dose: float = BUNDLE_DOSE,
                     noise_level_input: bool = False) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """Whole slices (cropped to multiples of 4) with their first noise realization at ``dose``."""
    pairs = []
    for b in bundles:
        for k in range(len(b)):
            x, y = b.pair(k, 0, dose, 1.0)
            h, w = (s - s % 4 for s in y.shape)
            x = x[None, None, :h, :w] * HU_SCALE
            if noise_level_input:
                x = torch.cat([x, level_channel(b.noise_level(k, 0, dose), x.shape).to(x.device)], dim=1)
            pairs.append((x, y[None, None, :h, :w] * HU_SCALE))
    return pairs


def evaluate(net: torch.nn.Module, pairs: Sequence[Tuple[torch.Tensor, torch.Tensor]]) -> Dict[str, float]:
    """Mean PSNR (dB) of the network on validation slices in the [-160, 240] HU window (``soft``) and the lung
    window (``lung``, centre -600, width 1500 HU, where lung noise counts)."""
    net.eval()
    soft, lung = [], []
    with torch.inference_mode():
        for x, y in pairs:
            out = net(x)
            soft.append(float(window_psnr(out, y)[0]))
            lung.append(float(window_psnr(out, y, LUNG_WINDOW)[0]))
    net.train()
    return {"soft": float(np.mean(soft)), "lung": float(np.mean(lung))}


def selection_metric(psnr: Dict[str, float], select: str) -> float:
    """The validation number the best weights are kept by: ``soft``, or ``soft+lung`` (mean of both windows)."""
    if select == "soft":
        return psnr["soft"]
    if select == "soft+lung":
        return 0.5 * (psnr["soft"] + psnr["lung"])
    raise ValueError(f"unknown selection {select!r}")


def _learning_rate(progress: float, lr: float, warmup: float = 0.03, floor: float = 0.01) -> float:
    """Linear warm-up, then a cosine decay to ``floor * lr`` at ``progress`` 1."""
    if progress < warmup:
        return lr * (0.1 + 0.9 * progress / warmup)
    t = min(1.0, (progress - warmup) / (1.0 - warmup))
    return lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t)))


def train_bank(net: torch.nn.Module, bank: NoiseBank, val: Sequence[Tuple[torch.Tensor, torch.Tensor]], *,
               steps: int = 20000, batch: int = 32, lr: float = 1e-3, eval_every: int = 500,
               time_limit_s: Optional[float] = None, select: str = "soft",
               log: Callable[[str], None] = print) -> Dict:
    """Adam, warm-up and cosine learning-rate decay, gradient clipping; keeps the weights best on ``val``
    (by :func:`selection_metric` ``select``).

    The schedule runs over ``steps`` or, when ``time_limit_s`` is given and comes first, over that time (the
    rate decays with whichever is further along), so a time-boxed run still ends at a low rate.
    Returns ``{"state": best state dict (CPU), "best_metric", "best_step", "history", "seconds", "steps"}``.
    """
    device = next(net.parameters()).device
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    best, best_step, best_state, history = -math.inf, 0, None, []
    t0, losses = time.time(), []
    net.train()
    step, progress = 0, 0.0
    while progress < 1.0:
        step += 1
        elapsed = time.time() - t0
        progress = max(step / steps, elapsed / time_limit_s if time_limit_s else 0.0)
        rate = _learning_rate(progress, lr)
        for group in opt.param_groups:
            group["lr"] = rate
        x, y = bank.sample(batch)
        loss = weighted_mse(net(x.to(device)), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if step % 25 == 0:
            losses.append(float(loss.detach()))
        if step % eval_every == 0 or progress >= 1.0:
            psnr = evaluate(net, val)
            metric = selection_metric(psnr, select)
            history.append({"step": step, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                            "val_psnr_soft_tissue_db": psnr["soft"], "val_psnr_lung_db": psnr["lung"],
                            "val_metric": metric, "lr": rate, "seconds": round(time.time() - t0, 1)})
            losses = []
            if metric > best:
                best, best_step = metric, step
                best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            log(f"step {step}: loss {history[-1]['train_loss']:.3e}, val PSNR {psnr['soft']:.3f} dB soft, "
                f"{psnr['lung']:.3f} dB lung ({select} {metric:.3f}, best {best:.3f} at {best_step}), "
                f"lr {rate:.2e}, {time.time() - t0:.0f} s")
    return {"state": best_state if best_state is not None else copy.deepcopy(net.state_dict()),
            "best_metric": best, "best_step": best_step, "history": history, "seconds": time.time() - t0,
            "steps": step}
