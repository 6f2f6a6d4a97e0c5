"""The learned candidate scorer: a small MLP over candidate features with Platt calibration and level prior.

The network carries its own feature normalisation, the calibration (``a * logit + b``) fitted on validation
cases and the spatial level prior estimated on its training cohort, so one weights file holds the whole model.
It is registered as architecture ``EmbolusMLP`` for the model registry (model name ``embolism-candidates``).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn

from lungai.embolism.arteries import LEVELS
from lungai.embolism.candidates import DEFAULT_LEVEL_PRIOR, FEATURES
from lungai.models import architectures

MODEL_NAME = "embolism-candidates"


class EmbolusMLP(nn.Module):
    """features (N, F) -> logit (N,); ``probability`` applies the calibration."""

    def __init__(self, in_channels: int = len(FEATURES), hidden: int = 16):
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_channels))
        self.register_buffer("std", torch.ones(in_channels))
        self.register_buffer("low", torch.full((in_channels,), -1e6))   # training range: features beyond it
        self.register_buffer("high", torch.full((in_channels,), 1e6))   # count as the most extreme value seen
        self.register_buffer("calibration", torch.tensor([1.0, 0.0]))
        self.register_buffer("level_prior", torch.tensor([DEFAULT_LEVEL_PRIOR[name] for name in LEVELS]))
        self.net = (nn.Sequential(nn.Linear(in_channels, hidden), nn.Tanh(), nn.Linear(hidden, 1)) if hidden
                    else nn.Sequential(nn.Linear(in_channels, 1)))  # hidden=0: logistic regression

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.maximum(torch.minimum(x, self.high), self.low)
        return self.net((x - self.mean) / self.std).squeeze(-1)

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.calibration
        return torch.sigmoid(a * self.forward(x) + b)

    def prior(self) -> Dict[str, float]:
        return {name: float(v) for name, v in zip(LEVELS, self.level_prior)}


def _build(spatial_dims: int, in_channels: int, out_channels: int, **params) -> nn.Module:
    return EmbolusMLP(in_channels=in_channels, **params)


architectures.register("EmbolusMLP", _build, replace=True)


def load_scorer(model: Optional[str] = None, device: str = "cpu") -> Tuple[EmbolusMLP, object]:
    """The registry's scorer (``name[@version]``, newest by default) and its registry entry."""
    from lungai.models import get_model, load_network

    name, _, version = (model or MODEL_NAME).partition("@")
    entry = get_model(name, version or None)
    return load_network(entry, device), entry


def score(network: EmbolusMLP, features: np.ndarray) -> np.ndarray:
    """Calibrated embolus probability per candidate."""
    if len(features) == 0:
        return np.zeros(0)
    with torch.no_grad():
        x = torch.as_tensor(features, dtype=torch.float32, device=network.mean.device)
        return network.probability(x).cpu().numpy().astype(float)
