"""Training-time augmentation of radiographs (MONAI array transforms on one ``(1, H, W)`` image in 0..1).

Radiographs vary in patient position, magnification, exposure, detector noise and sharpness; these transforms
imitate that spread so a network trained on a few hundred images does not memorise them. No left-right flip:
the heart side is anatomy, not noise.
"""

from __future__ import annotations

import math

from monai.transforms import (Compose, RandAdjustContrast, RandAffine, RandGaussianNoise, RandGaussianSharpen,
                              RandGaussianSmooth, RandGridDistortion, RandScaleIntensity, RandShiftIntensity)


def training_augmentation(size: int, seed: int = 0) -> Compose:
    """Random geometric and intensity changes for a ``(1, size, size)`` radiograph in 0..1."""
    shift = 0.08 * size
    augment = Compose([
        RandAffine(prob=0.9, rotate_range=math.radians(10), scale_range=(0.15, 0.15), shear_range=(0.05, 0.05),
                   translate_range=(shift, shift), padding_mode="border", mode="bilinear"),
        RandGridDistortion(num_cells=4, prob=0.3, distort_limit=(-0.08, 0.08), padding_mode="border"),
        RandAdjustContrast(prob=0.6, gamma=(0.6, 1.6)),
        RandScaleIntensity(factors=0.15, prob=0.4),
        RandShiftIntensity(offsets=0.08, prob=0.4),
        RandGaussianSmooth(sigma_x=(0.3, 1.0), sigma_y=(0.3, 1.0), prob=0.2),
        RandGaussianSharpen(prob=0.15),
        RandGaussianNoise(prob=0.3, std=0.03),
    ])
    augment.set_random_state(seed=seed)
    return augment
