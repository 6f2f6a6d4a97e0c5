"""The radiograph classifier network: a narrow MONAI 2D ResNet that trains from scratch on a few hundred images
on a CPU, and the name under which Grad-CAM finds its last convolutional stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Sequence, Tuple

import torch
from monai.networks.nets import ResNet

from lungai.xray.classes import CLASS_NAMES

ARCHITECTURE = "xray-resnet"
CAM_LAYER = "layer4"


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of the network; stored in every checkpoint so that weights always load into the right layout."""

    input_size: int = 128
    widths: Tuple[int, ...] = (16, 32, 64, 128)
    blocks: Tuple[int, ...] = (1, 1, 1, 1)
    dropout: float = 0.2

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "NetworkConfig":
        return cls(input_size=int(data["input_size"]), widths=tuple(int(w) for w in data["widths"]),
                   blocks=tuple(int(b) for b in data["blocks"]), dropout=float(data.get("dropout", 0.0)))


class XrayNet(torch.nn.Module):
    """1-channel radiograph -> logits of :data:`CLASS_NAMES`; ``features`` gives the pooled embedding."""

    def __init__(self, config: NetworkConfig = NetworkConfig(), n_classes: int = len(CLASS_NAMES)):
        super().__init__()
        self.config = config
        self.backbone = ResNet(block="basic", layers=list(config.blocks), block_inplanes=list(config.widths),
                               spatial_dims=2, n_input_channels=1, conv1_t_size=7, conv1_t_stride=2,
                               num_classes=n_classes, feed_forward=False)
        self.dropout = torch.nn.Dropout(config.dropout)
        self.head = torch.nn.Linear(config.widths[-1], n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))

    @property
    def cam_layer(self) -> str:
        """Dotted module name of the last convolutional stage (Grad-CAM target)."""
        return f"backbone.{CAM_LAYER}"


def build_network(config: Dict[str, Any] | NetworkConfig | None = None, **_: Sequence) -> XrayNet:
    """The classifier network from a :class:`NetworkConfig` or its dict form (defaults when None)."""
    if config is None:
        config = NetworkConfig()
    elif isinstance(config, dict):
        config = NetworkConfig.from_dict(config)
    return XrayNet(config)
