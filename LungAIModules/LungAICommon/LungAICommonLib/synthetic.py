"""Small synthetic images with known answers, shared by the modules' Slicer self-tests and the pytest suite
(pure numpy; arrays are ``[k, j, i]`` with the IJK-to-RAS matrix of an LPS-aligned axial scan)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import numpy as np


def _grid(shape: Tuple[int, int, int]):
    return np.mgrid[:shape[0], :shape[1], :shape[2]].astype(np.float32)


def thorax() -> Dict[str, object]:
    """2 mm CT: air, a soft-tissue body, two lungs (-850 HU) and a trachea; lung volumes in ml.

    Image column i grows towards the patient's left, so the ellipsoid at i = 38 is the right lung."""
    shape = (60, 96, 128)
    k, j, i = _grid(shape)
    ct = np.full(shape, -1000.0, np.float32)
    ct[((i - 64) / 58) ** 2 + ((j - 48) / 40) ** 2 <= 1] = 40.0
    right = ((i - 38) / 18) ** 2 + ((j - 46) / 26) ** 2 + ((k - 32) / 24) ** 2 <= 1
    left = ((i - 90) / 18) ** 2 + ((j - 46) / 26) ** 2 + ((k - 32) / 24) ** 2 <= 1
    ct[right | left] = -850.0
    ct[(((i - 64) / 5) ** 2 + ((j - 40) / 5) ** 2 <= 1) & (k >= 40)] = -1000.0
    ct += np.random.default_rng(0).normal(0, 15, shape).astype(np.float32)
    return {"ct": ct.astype(np.int16), "ijk_to_ras": np.diag([-2.0, -2.0, 2.0, 1.0]),
            "right_ml": float(right.sum() * 0.008), "left_ml": float(left.sum() * 0.008)}


def pneumonia_chest() -> Dict[str, object]:
    """2 mm CT with two lungs, a ground-glass ball (-550 HU) in the right lung and a consolidation (+20 HU) in
    the left; lesion volumes in ml."""
    shape = (60, 96, 128)
    k, j, i = _grid(shape)
    ct = np.full(shape, -1000.0, np.float32)
    ct[((i - 64) / 58) ** 2 + ((j - 48) / 40) ** 2 <= 1] = 40.0
    for centre in (38, 90):
        ct[((i - centre) / 18) ** 2 + ((j - 46) / 26) ** 2 + ((k - 32) / 24) ** 2 <= 1] = -860.0
    ground_glass = ((i - 36) ** 2 + (j - 50) ** 2 + (k - 30) ** 2) <= 6 ** 2
    consolidation = ((i - 92) ** 2 + (j - 56) ** 2 + (k - 28) ** 2) <= 5 ** 2
    ct[ground_glass] = -550.0
    ct[consolidation] = 20.0
    ct += np.random.default_rng(1).normal(0, 12, shape).astype(np.float32)
    return {"ct": ct.astype(np.int16), "ijk_to_ras": np.diag([-2.0, -2.0, 2.0, 1.0]),
            "ground_glass_ml": float(ground_glass.sum() * 0.008),
            "consolidation_ml": float(consolidation.sum() * 0.008)}


def noisy_phantom(noise_hu: float = 60.0) -> Dict[str, object]:
    """0.8 mm body with large flat soft-tissue areas (where the CLI measures noise) and two lungs, plus
    Gaussian noise; ``tissue`` marks the soft tissue where the noise is measured."""
    shape = (8, 128, 128)
    k, j, i = _grid(shape)
    clean = np.full(shape, -1000.0, np.float32)
    clean[((i - 64) / 60) ** 2 + ((j - 64) / 52) ** 2 <= 1] = 40.0
    clean[((i - 36) / 14) ** 2 + ((j - 70) / 24) ** 2 <= 1] = -850.0
    clean[((i - 92) / 14) ** 2 + ((j - 70) / 24) ** 2 <= 1] = -850.0
    noisy = clean + np.random.default_rng(2).normal(0, noise_hu, shape).astype(np.float32)
    return {"ct": noisy.astype(np.int16), "tissue": clean == 40.0, "ijk_to_ras": np.diag([-0.8, -0.8, 2.0, 1.0])}


def tissue_noise(array: np.ndarray, tissue: np.ndarray) -> float:
    return float(np.std(np.asarray(array)[tissue].astype(np.float64)))


def ctpa() -> Dict[str, object]:
    """CT pulmonary angiogram: contrast-filled (350 HU) trunk and two pulmonary arteries, one filling defect
    (40 HU) of radius 2.5 voxels in the right artery at ``defect_ijk``."""
    shape = (48, 96, 96)
    k, j, i = _grid(shape)
    ct = np.full(shape, -1000.0, np.float32)
    ct[((i - 48) / 44) ** 2 + ((j - 48) / 38) ** 2 <= 1] = 40.0
    ct[((i - 28) / 14) ** 2 + ((j - 50) / 24) ** 2 <= 1] = -850.0
    ct[((i - 68) / 14) ** 2 + ((j - 50) / 24) ** 2 <= 1] = -850.0
    trunk = ((i - 48) / 4) ** 2 + ((j - 40) / 4) ** 2 <= 1
    arteries = (((j - 40) / 3) ** 2 + ((k - 24) / 3) ** 2 <= 1) & (i >= 20) & (i <= 76)
    ct[trunk | arteries] = 350.0
    ct[((i - 30) ** 2 + (j - 40) ** 2 + (k - 24) ** 2) <= 2.5 ** 2] = 40.0
    ct += np.random.default_rng(4).normal(0, 10, shape).astype(np.float32)
    return {"ct": ct.astype(np.int16), "ijk_to_ras": np.diag([-0.8, -0.8, 1.0, 1.0]),
            "defect_ijk": (30.0, 40.0, 24.0)}


def radiograph_png(folder: Path) -> Path:
    """A 256x256 8-bit frontal 'radiograph': bright chest, dark lungs, an opacity in the lower left lung field."""
    from PIL import Image as PILImage

    rows, columns = np.mgrid[:256, :256].astype(np.float32)
    image = np.full((256, 256), 0.8, np.float32)
    for centre in (80, 176):
        image[((columns - centre) / 48) ** 2 + ((rows - 130) / 90) ** 2 <= 1] = 0.2
    image[((columns - 176) / 30) ** 2 + ((rows - 170) / 30) ** 2 <= 1] = 0.6
    path = Path(folder) / "synthetic_cxr.png"
    PILImage.fromarray(np.round(image * 255).astype(np.uint8)).save(path)
    return path
