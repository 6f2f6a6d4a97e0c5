"""RED-CNN-style residual encoder-decoder that runs on a laptop CPU: it works on a pixel-unshuffled image.

Like RED-CNN (Chen et al., IEEE TMI 2017) it has a stack of encoder convolutions, a mirrored decoder, shortcuts
that add encoder features to the decoder, and a global residual, so it learns the noise to subtract. Unlike it,
the image is first folded losslessly into ``shuffle**2`` channels at 1/``shuffle`` resolution (pixel unshuffle)
and unfolded at the end, and padded 3x3 convolutions keep the size. With ``shuffle=4``, 32 features and 7+7
layers this needs about 8k multiply-adds per pixel, some 60x fewer than the published 96-feature, 5x5
full-resolution RED-CNN, for a wider receptive field (about 116 pixels).

With ``noise_level_input`` the network also takes the measured noise level of the slice (FFDNet style, Zhang et
al., IEEE TIP 2018): a second input channel holding the noise std of the slice (HU) times
:data:`NOISE_LEVEL_SCALE`, constant over the slice, enters the first convolution beside the folded image. It
tells the network how much of a texture-like pattern is noise. :func:`add_noise_level_input` turns the weights of a
network without it into one that gives exactly the same output (the new input weights are zero).
"""

from __future__ import annotations

from typing import Any, Dict

import torch
from torch import nn

from lungai.models import architectures

ARCHITECTURE = "REDCNNShuffle"
#: noise std (HU) -> value of the noise-level channel: 50 HU (a quarter-dose chest CT) reads as 1
NOISE_LEVEL_SCALE = 1.0 / 50.0


class RedCnnShuffle(nn.Module):
    """Residual encoder-decoder CNN on a pixel-unshuffled 2D image; input and output are the same size.

    The input height and width must be multiples of ``shuffle`` (see :func:`lungai.denoise.cnn` for padding).
    With ``noise_level_input`` the input has one more channel than ``in_channels``: the noise-level map (last).
    """

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1, features: int = 32,
                 depth: int = 7, shuffle: int = 4, kernel_size: int = 3, noise_level_input: bool = False):
        super().__init__()
        if spatial_dims != 2:
            raise ValueError("RedCnnShuffle is a 2D (slice-wise) network")
        if in_channels != out_channels:
            raise ValueError("RedCnnShuffle maps an image to an image of the same channels")
        folded = in_channels * shuffle * shuffle
        pad = kernel_size // 2
        self.shuffle, self.noise_level_input, self.image_channels = shuffle, bool(noise_level_input), in_channels
        self.fold, self.unfold = nn.PixelUnshuffle(shuffle), nn.PixelShuffle(shuffle)
        first = folded + int(self.noise_level_input)  # the noise level enters once, at the folded resolution
        self.encoder = nn.ModuleList(
            [nn.Conv2d(first if i == 0 else features, features, kernel_size, padding=pad) for i in range(depth)])
        self.decoder = nn.ModuleList(
            [nn.Conv2d(features, folded if i == depth - 1 else features, kernel_size, padding=pad)
             for i in range(depth)])
        self.act = nn.ReLU(inplace=True)
        # start as the identity map: the last layer's output (the noise estimate) is zero
        nn.init.zeros_(self.decoder[-1].weight)
        nn.init.zeros_(self.decoder[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        folded = self.fold(x[:, :self.image_channels])
        out = folded
        if self.noise_level_input:
            level = nn.functional.avg_pool2d(x[:, self.image_channels:self.image_channels + 1], self.shuffle)
            out = torch.cat([folded, level], dim=1)
        shortcuts = []
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


def add_noise_level_input(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Weights of a network without the noise-level input -> the same network with it, giving the same output.

    The first convolution gets one more input channel whose weights are zero, so training starts from the old
    network's behaviour and learns how to use the noise level.
    """
    key = "encoder.0.weight"
    weight = state[key]
    extra = torch.zeros(weight.shape[0], 1, *weight.shape[2:], dtype=weight.dtype, device=weight.device)
    return {**state, key: torch.cat([weight, extra], dim=1)}


def _build(spatial_dims: int, in_channels: int, out_channels: int, **params: Any) -> nn.Module:
    return RedCnnShuffle(spatial_dims, in_channels, out_channels, **params)


architectures.register(ARCHITECTURE, _build, replace=True)
