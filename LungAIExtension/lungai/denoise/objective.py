"""What the CNN denoiser is trained for: HU scaling, the weighted loss and the windowed PSNR it is judged by.

Shared by both training recipes (:mod:`lungai.denoise.training`, :mod:`lungai.denoise.noisebank`). Needs only
torch, so noise-bank training runs on a bare GPU machine. The windows equal those of :mod:`lungai.quality`.
"""

from __future__ import annotations

from typing import Tuple

import torch

HU_SCALE = 0.001  # HU -> network units: water 0, air -1
SOFT_TISSUE_WINDOW = (-160.0, 240.0)  # the LDCT challenge's PSNR window (lungai.quality.SOFT_TISSUE_WINDOW)
LUNG_WINDOW = (-1350.0, 150.0)  # centre -600, width 1500 HU (lungai.quality.CHEST_WINDOW)


def weighted_mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Squared error weighted by the second target channel (1 + extra weight in lesions/lung, 0 in padding)."""
    target, weight = targets[:, 0:1], targets[:, 1:2]
    return torch.sum(weight * (outputs - target) ** 2) / torch.sum(weight)


def window_psnr(outputs: torch.Tensor, targets: torch.Tensor,
                window: Tuple[float, float] = SOFT_TISSUE_WINDOW) -> torch.Tensor:
    """PSNR (dB) of network-unit images [b, 1, h, w] after clipping both to ``window`` (HU), one per slice."""
    lo, hi = window
    a = torch.clamp(outputs / HU_SCALE, lo, hi)
    b = torch.clamp(targets / HU_SCALE, lo, hi)
    mse = torch.mean((a - b) ** 2, dim=(1, 2, 3))
    return 20.0 * torch.log10((hi - lo) / torch.sqrt(mse))
