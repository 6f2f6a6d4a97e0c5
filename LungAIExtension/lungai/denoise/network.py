"""RED-CNN-style residual encoder-decoder that runs on a laptop CPU: it works on a pixel-unshuffled image.

Like RED-CNN (Chen et al., IEEE TMI 2017) it has a stack of encoder convolutions, a mirrored decoder, shortcuts
that add encoder features to the decoder, and a global residual, so it learns the noise to subtract. Unlike it,
the image is first folded losslessly into ``shuffle**2`` channels at 1/``shuffle`` resolution (pixel unshuffle)
and unfolded at the end, and padded 3x3 convolutions keep the size. With ``shuffle=4``, 32 features and 7+7
layers this needs about 8k multiply-adds per pixel, some 60x fewer than the published 96-feature, 5x5
full-resolution RED-CNN, for a wider receptive field (about 116 pixels).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lungai.models import architectures

ARCHITECTURE = "REDCNNShuffle"


class RedCnnShuffle(nn.Module):
    """Residual encoder-decoder CNN on a pixel-unshuffled 2D image; input and output are the same size.

    The input height and width must be multiples of ``shuffle`` (see :func:`lungai.denoise.cnn` for padding).
    """

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1, features: int = 32,
                 depth: int = 7, shuffle: int = 4, kernel_size: int = 3):
        super().__init__()
        if spatial_dims != 2:
            raise ValueError("RedCnnShuffle is a 2D (slice-wise) network")
        if in_channels != out_channels:
            raise ValueError("RedCnnShuffle maps an image to an image of the same channels")
        folded = in_channels * shuffle * shuffle
        pad = kernel_size // 2
        self.shuffle = shuffle
        self.fold, self.unfold = nn.PixelUnshuffle(shuffle), nn.PixelShuffle(shuffle)
        self.encoder = nn.ModuleList(
            [nn.Conv2d(folded if i == 0 else features, features, kernel_size, padding=pad) for i in range(depth)])
        self.decoder = nn.ModuleList(
            [nn.Conv2d(features, folded if i == depth - 1 else features, kernel_size, padding=pad)
             for i in range(depth)])
        self.act = nn.ReLU(inplace=True)
        # start as the identity map: the last layer's output (the noise estimate) is zero
        nn.init.zeros_(self.decoder[-1].weight)
        nn.init.zeros_(self.decoder[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        folded = self.fold(x)
        shortcuts = []
        out = folded
        for i, layer in enumerate(self.encoder):
            out = self.act(layer(out))
            if i % 2 == 1:
                shortcuts.append(out)
        last = len(self.decoder) - 1
        for i, layer in enumerate(self.decoder):
            out = layer(out)
            if i % 2 == 1 and shortcuts:
                out = out + shortcuts.pop()
            if i < last:
                out = self.act(out)
        return self.unfold(folded + out)


def _build(spatial_dims: int, in_channels: int, out_channels: int, **params: Any) -> nn.Module:
    return RedCnnShuffle(spatial_dims, in_channels, out_channels, **params)


architectures.register(ARCHITECTURE, _build, replace=True)
