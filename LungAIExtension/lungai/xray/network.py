"""The radiograph classifier network: a narrow MONAI 2D ResNet that trains from scratch on a few hundred images
on a CPU, registered in :mod:`lungai.models.architectures` as ``xray-resnet``.

Besides the learned layers, the network carries (as buffers, so they travel in the SHA256-checked weights file):

- ``temperature``: the calibration temperature fitted on validation data; ``forward`` returns calibrated logits;
- ``layout``: the mean coarse grey-level layout of the training radiographs (see :mod:`lungai.xray.plausibility`);
- ``feature_mean`` / ``feature_precision`` / ``feature_limit``: the training images' embedding distribution, so an
  image far outside it is flagged as unlike anything the model was trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Tuple

import torch
from monai.networks.nets import ResNet

from lungai.models import architectures
from lungai.xray.classes import CLASS_NAMES

ARCHITECTURE = "xray-resnet"
LAYOUT_SIZE = 16


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of the network; it is the registry entry's ``architecture.params``."""

    input_size: int = 128
    widths: Tuple[int, ...] = (16, 32, 64, 128)
    blocks: Tuple[int, ...] = (1, 1, 1, 1)
    dropout: float = 0.2

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out.update(widths=list(self.widths), blocks=list(self.blocks))
        return out

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "NetworkConfig":
        return cls(input_size=int(data.get("input_size", 128)),
                   widths=tuple(int(w) for w in data.get("widths", (16, 32, 64, 128))),
                   blocks=tuple(int(b) for b in data.get("blocks", (1, 1, 1, 1))),
                   dropout=float(data.get("dropout", 0.0)))


class XrayNet(torch.nn.Module):
    """1-channel standardised radiograph ``(B, 1, S, S)`` -> calibrated logits of :data:`CLASS_NAMES`."""

    cam_layer = "backbone.layer4"
    """Dotted module name of the last convolutional stage (the Grad-CAM target)."""

    def __init__(self, config: NetworkConfig = NetworkConfig(), n_classes: int = len(CLASS_NAMES)):
        super().__init__()
        self.config = config
        self.backbone = ResNet(block="basic", layers=list(config.blocks), block_inplanes=list(config.widths),
                               spatial_dims=2, n_input_channels=1, conv1_t_size=7, conv1_t_stride=2,
                               num_classes=n_classes, feed_forward=False)
        self.dropout = torch.nn.Dropout(config.dropout)
        self.head = torch.nn.Linear(config.widths[-1], n_classes)
        width = config.widths[-1]
        self.register_buffer("temperature", torch.ones(()))
        self.register_buffer("layout", torch.zeros(LAYOUT_SIZE, LAYOUT_SIZE))
        self.register_buffer("feature_mean", torch.zeros(width))
        self.register_buffer("feature_precision", torch.eye(width))
        self.register_buffer("feature_limit", torch.full((), float("inf")))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding ``(B, widths[-1])`` of the last stage."""
        return self.backbone(x)

    def raw_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits before temperature scaling (what training optimises)."""
        return self.head(self.dropout(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.raw_logits(x) / self.temperature

    def feature_distance(self, features: torch.Tensor) -> torch.Tensor:
        """Mahalanobis distance of embeddings to the training distribution."""
        d = features - self.feature_mean
        return torch.sqrt(torch.clamp(torch.einsum("bi,ij,bj->b", d, self.feature_precision, d), min=0.0))


def build_network(config: "Dict[str, Any] | NetworkConfig | None" = None) -> XrayNet:
    """The classifier network from a :class:`NetworkConfig` or its dict form (defaults when None)."""
    if config is None:
        config = NetworkConfig()
    elif isinstance(config, dict):
        config = NetworkConfig.from_dict(config)
    return XrayNet(config)


def _builder(spatial_dims: int, in_channels: int, out_channels: int, **params: Any) -> XrayNet:
    if spatial_dims != 2 or in_channels != 1:
        raise ValueError("xray-resnet takes 2D single-channel radiographs")
    return XrayNet(NetworkConfig.from_dict(params), n_classes=out_channels)


architectures.register(ARCHITECTURE, _builder)
