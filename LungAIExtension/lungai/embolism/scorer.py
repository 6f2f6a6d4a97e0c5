"""The learned candidate scorer, with Platt calibration and the spatial level prior in its weights.

``EmbolusPatchNet`` (current): a small 3D CNN (MONAI convolution blocks) looks at a patch around each candidate
(CT relative to the scan's own trunk density, artery tree, candidate mask) and its embedding joins the
candidate's hand-made features in a small MLP head. ``EmbolusMLP`` (up to 1.1): the features alone. Both carry
their feature normalisation, the calibration (``a * logit + b``) fitted on validation cases and the level prior
estimated on the training cohort, so one weights file holds the whole model (model name ``embolism-candidates``,
trained on the 1.6 x 1.6 x 2.0 mm working grid; ``embolism-candidates-fine``, trained on the 1.0 x 1.0 x 1.25 mm
grid of thin-slice CTPA, scores scans that fine; the registry ``spacing`` of a scorer is its working grid).
Both are registry architecture ``EmbolusMLP``; a ``width`` parameter (CNN channels) selects the patch network,
and a ``members`` parameter an ``EmbolusEnsemble`` of that many patch networks (one weights file holds them all).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from lungai.embolism.arteries import LEVELS
from lungai.embolism.candidates import CANDIDATE_RULES, DEFAULT_LEVEL_PRIOR, FEATURES, PATCH_CHANNELS
from lungai.embolism.volume import COARSE_GRID, FINE_GRID, fits_grid
from lungai.image import Image
from lungai.models import architectures

MODEL_NAME = "embolism-candidates"             # scorer of the coarse working grid
FINE_MODEL_NAME = "embolism-candidates-fine"   # scorer of the fine (thin-slice CTPA) working grid


class EmbolusMLP(nn.Module):
    """features (N, F) -> logit (N,); ``probability`` applies the calibration."""

    uses_patches = False

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

    def probability(self, inputs) -> torch.Tensor:
        a, b = self.calibration
        return torch.sigmoid(a * self.forward(inputs) + b)

    def prior(self) -> Dict[str, float]:
        return {name: float(v) for name, v in zip(LEVELS, self.level_prior)}


class EmbolusPatchNet(EmbolusMLP):
    """(features (N, F), patches (N, C, *patch_shape)) -> logit (N,): CNN patch embedding + features -> MLP."""

    uses_patches = True

    def __init__(self, in_channels: int = len(FEATURES), hidden: int = 16, width: int = 8,
                 patch_channels: int = len(PATCH_CHANNELS)):
        super().__init__(in_channels, hidden)
        from monai.networks.blocks import Convolution

        def block(c_in: int, c_out: int) -> nn.Module:
            return Convolution(3, c_in, c_out, kernel_size=3, act="RELU", norm=None)

        self.cnn = nn.Sequential(block(patch_channels, width), nn.MaxPool3d(2), block(width, 2 * width),
                                 nn.MaxPool3d(2), block(2 * width, 4 * width), nn.AdaptiveMaxPool3d(1),
                                 nn.Flatten())
        self.net = nn.Sequential(nn.Linear(in_channels + 4 * width, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, inputs: Tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        x, patches = inputs
        x = torch.maximum(torch.minimum(x, self.high), self.low)
        return self.net(torch.cat([(x - self.mean) / self.std, self.cnn(patches)], dim=1)).squeeze(-1)


class EmbolusEnsemble(nn.Module):
    """Patch scorers trained with different seeds; the probability is the mean of their calibrated probabilities.

    The members share the training cohort, hence the level prior (kept once, in ``level_prior``); averaging
    removes most of the run-to-run spread of a single network's ranking.
    """

    uses_patches = True

    def __init__(self, members: Sequence[EmbolusPatchNet]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.register_buffer("level_prior", members[0].level_prior.detach().clone())

    def probability(self, inputs: Tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return torch.stack([m.probability(inputs) for m in self.members]).mean(0)

    def prior(self) -> Dict[str, float]:
        return {name: float(v) for name, v in zip(LEVELS, self.level_prior)}


def _build(spatial_dims: int, in_channels: int, out_channels: int, width: int = 0, members: int = 0,
           **params) -> nn.Module:
    """Registry architecture ``EmbolusMLP``: the patch network when ``width`` (CNN channels) is given, an
    ensemble of ``members`` patch networks when that is given too."""
    if width and members:
        return EmbolusEnsemble([EmbolusPatchNet(in_channels=in_channels, width=width, **params)
                                for _ in range(members)])
    if width:
        return EmbolusPatchNet(in_channels=in_channels, width=width, **params)
    return EmbolusMLP(in_channels=in_channels, **params)


# one registry name for the scorer family, so that the models package finds it (architectures.PROVIDERS)
architectures.register("EmbolusMLP", _build, replace=True)


Scorer = Union[EmbolusMLP, EmbolusEnsemble]


def scorer_grid(entry) -> Tuple[float, float]:
    """The working grid (in-plane mm, slice mm) of a registry scorer: its ``spacing``, else the coarse grid."""
    if entry is None or entry.spacing is None:
        return COARSE_GRID
    return (float(entry.spacing[0]), float(entry.spacing[2]))


def scorer_rules(entry) -> int:
    """The candidate rules a registry scorer was trained on (``inference.candidate_rules``; 1 before they were
    versioned); the newest rules without an entry."""
    if entry is None:
        return CANDIDATE_RULES
    return int(entry.inference.get("candidate_rules", 1))


def scorer_merge_mm(entry) -> float:
    """How close (mm) candidates of a registry scorer must lie to be merged into one mark (``inference.merge_mm``;
    0, no merging, before merged marks were introduced)."""
    if entry is None:
        return 0.0
    return float(entry.inference.get("merge_mm", 0.0))


def model_for(image: Image) -> str:
    """The scorer for ``image``: the fine-grid one for a thin-slice scan (at most ``GRID_TOLERANCE`` times coarser
    than 1.0 x 1.0 x 1.25 mm) when the registry lists it, else the coarse-grid one."""
    from lungai.models import UnknownModel, get_model

    if fits_grid(image, FINE_GRID):
        try:
            get_model(FINE_MODEL_NAME)
            return FINE_MODEL_NAME
        except UnknownModel:
            pass
    return MODEL_NAME


def load_scorer(model: Optional[str] = None, device: str = "cpu") -> Tuple[Scorer, object]:
    """The registry's scorer (``name[@version]``, newest by default) and its registry entry."""
    from lungai.models import get_model, load_network

    name, _, version = (model or MODEL_NAME).partition("@")
    entry = get_model(name, version or None)
    return load_network(entry, device), entry


def score(network: Scorer, features: np.ndarray, patches: Optional[np.ndarray] = None,
          batch: int = 256) -> np.ndarray:
    """Calibrated embolus probability per candidate (``patches`` needed by a patch network)."""
    if len(features) == 0:
        return np.zeros(0)
    device = network.level_prior.device
    out = []
    with torch.no_grad():
        for start in range(0, len(features), batch):
            x = torch.as_tensor(features[start:start + batch], dtype=torch.float32, device=device)
            if network.uses_patches:
                p = torch.as_tensor(np.asarray(patches[start:start + batch], dtype=np.float32), device=device)
                out.append(network.probability((x, p)))
            else:
                out.append(network.probability(x))
    return torch.cat(out).cpu().numpy().astype(float)
