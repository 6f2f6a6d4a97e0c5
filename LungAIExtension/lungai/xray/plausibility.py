"""Is this a frontal chest radiograph? Checks that stop a CT slice, a photograph, a blank or inverted picture from
being classified, each failing with an :class:`InputError` that says what the image looks like instead.

The decisive check compares the image's coarse grey-level layout (16 x 16 block means, standardised) with the
mean layout of the training radiographs, which the classifier carries: bright mediastinum and spine in the
middle, darker lung fields either side, bright shoulders and abdomen. Held-out Kermany radiographs correlate
0.28..0.96 with it (median 0.89); real axial CT slices -0.55..0.15; an inverted radiograph is strongly negative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np

from lungai.errors import InputError
from lungai.image import Image
from lungai.xray.network import LAYOUT_SIZE
from lungai.xray.preprocess import to_square, window_to_unit

MIN_ASPECT = 0.5  # columns / rows; chest radiographs are about 0.8..1.3
MAX_ASPECT = 2.0
MIN_CONTRAST = 0.04  # 0.5th..99.5th percentile spread on the 0..1 scale
MAX_EXTREME_FRACTION = 0.9  # share of pixels at the two extreme grey levels (masks, line drawings)
MAX_COLOURFULNESS = 0.03  # mean per-pixel standard deviation across R, G, B on the 0..1 scale
MIN_LAYOUT_CORRELATION = 0.2
INVERTED_CORRELATION = -0.65  # negated radiographs: median -0.89, 95 % below -0.65; CT slices above -0.55


@dataclass
class PlausibilityReport:
    """Figures behind the verdict, written into result.json so a reader can judge borderline cases."""

    layout_correlation: Optional[float] = None
    feature_distance: Optional[float] = None
    feature_limit: Optional[float] = None
    warnings: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"layout_correlation": self.layout_correlation, "feature_distance": self.feature_distance,
                "feature_limit": self.feature_limit, "warnings": list(self.warnings)}


def coarse_layout(unit: np.ndarray) -> np.ndarray:
    """``(16, 16)`` standardised block means of an image in 0..1 resampled to a square."""
    size = LAYOUT_SIZE * 8
    square = to_square(unit, size)
    blocks = square.reshape(LAYOUT_SIZE, 8, LAYOUT_SIZE, 8).mean(axis=(1, 3))
    return ((blocks - blocks.mean()) / (blocks.std() + 1e-6)).astype(np.float32)


def layout_correlation(unit: np.ndarray, reference: np.ndarray) -> float:
    """Pearson correlation between the coarse layouts of an image and of the training radiographs."""
    ref = np.asarray(reference, dtype=np.float64)
    ref = (ref - ref.mean()) / (ref.std() + 1e-12)
    return float(np.mean(coarse_layout(unit) * ref))


def check_colour(path: Path) -> None:
    """Refuse a colour picture (photograph, screenshot, coloured diagram); grey RGB files pass."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(path) as pic:
            if pic.mode not in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV"):
                return
            pic.thumbnail((256, 256))
            rgb = np.asarray(pic.convert("RGB"), dtype=np.float32) / 255.0
    except OSError:
        return  # unreadable pictures are reported by the reader
    colourfulness = float(rgb.std(axis=2).mean())
    if colourfulness > MAX_COLOURFULNESS:
        raise InputError(path, f"is a colour picture (colourfulness {colourfulness:.3f}, a radiograph is grey): "
                               "a photograph or screenshot, not a chest radiograph")


def check_pixels(image: Image, path: Optional[str]) -> None:
    """Shape, contrast and grey-level checks that need no model."""
    if image.ndim != 2:
        raise InputError(path, f"is a {image.ndim}D image of size {image.size}; a single 2D chest radiograph "
                               "is needed (for a CT, use the CT commands)")
    rows, columns = image.shape
    aspect = columns / rows
    if not MIN_ASPECT <= aspect <= MAX_ASPECT:
        raise InputError(path, f"is {columns}x{rows} pixels (width/height {aspect:.2f}); a frontal chest "
                               f"radiograph is roughly square (accepted {MIN_ASPECT}..{MAX_ASPECT})")
    a = np.asarray(image.array, dtype=np.float32)
    if not np.all(np.isfinite(a)):
        raise InputError(path, "contains non-finite pixel values (NaN or infinity)")
    lo, hi = np.percentile(a, [0.5, 99.5])
    full = float(a.max() - a.min())
    if full <= 0 or (hi - lo) / full < MIN_CONTRAST:
        raise InputError(path, "is blank or almost uniform (no grey-level contrast): not a radiograph")
    extremes = float(np.mean((a <= a.min() + 0.02 * full) | (a >= a.max() - 0.02 * full)))
    if extremes > MAX_EXTREME_FRACTION:
        raise InputError(path, f"{extremes:.0%} of its pixels are pure black or white: a mask, a drawing or a "
                               "thresholded picture, not a radiograph")


def check_layout(image: Image, reference: np.ndarray, path: Optional[str]) -> float:
    """Correlation with the training layout; refuses images that are not laid out like a frontal chest film."""
    score = layout_correlation(window_to_unit(image.array), reference)
    if score <= INVERTED_CORRELATION:
        raise InputError(path, f"its grey levels look inverted (bones dark, lungs bright; layout correlation "
                               f"{score:.2f}): a MONOCHROME1 DICOM without its photometric tag, or a negative. "
                               "Export the radiograph with bone shown bright")
    if score < MIN_LAYOUT_CORRELATION:
        raise InputError(path, f"does not look like a frontal chest radiograph (layout correlation {score:.2f}, "
                               f"radiographs score above {MIN_LAYOUT_CORRELATION}): a CT slice, a lateral view, "
                               "another body part or a non-medical picture?")
    return score
