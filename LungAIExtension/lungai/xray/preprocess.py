"""Turning a radiograph of any size and grey-level range into the classifier's fixed-size input."""

from __future__ import annotations

import numpy as np
from skimage.transform import resize

from lungai.image import Image

LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5


def window_to_unit(array: np.ndarray) -> np.ndarray:
    """Map the 0.5th..99.5th percentile of ``array`` onto 0..1 (clipped), so exposure and bit depth do not matter."""
    a = np.asarray(array, dtype=np.float32)
    lo, hi = np.percentile(a, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if hi <= lo:
        return np.zeros_like(a)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def to_square(array: np.ndarray, size: int) -> np.ndarray:
    """Resample the whole image to ``size`` x ``size`` with anti-aliasing.

    The aspect ratio is not kept: the training radiographs were squashed to a square the same way, so a
    radiograph of any shape reaches the network with the same anatomy-to-frame layout.
    """
    return resize(np.asarray(array, dtype=np.float32), (size, size), order=1, anti_aliasing=True,
                  preserve_range=True).astype(np.float32)


def model_input(image: Image, size: int) -> np.ndarray:
    """``(size, size)`` float32 array in 0..1 from a 2D radiograph (display convention: bone bright)."""
    if image.ndim != 2:
        raise ValueError(f"a 2D radiograph is needed, got a {image.ndim}D image")
    return to_square(window_to_unit(image.array), size)


def standardize(batch: "np.ndarray | object") -> "np.ndarray | object":
    """Zero mean, unit standard deviation per image over the last two axes (numpy array or torch tensor)."""
    mean = batch.mean(axis=(-2, -1), keepdims=True) if isinstance(batch, np.ndarray) else \
        batch.mean(dim=(-2, -1), keepdim=True)
    std = batch.std(axis=(-2, -1), keepdims=True) if isinstance(batch, np.ndarray) else \
        batch.std(dim=(-2, -1), keepdim=True)
    return (batch - mean) / (std + 1e-6)
