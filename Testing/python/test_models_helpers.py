"""Builders for the model tests: toy chests with exact lung labels, cohorts, and a tiny registry template.

The toy chest is a soft-tissue body holding two lung ellipsoids (right lung label 1 on the patient's right,
i.e. low i in LPS; left lung label 2) with noise, in HU, so that a tiny network learns it in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Tuple

import numpy as np

from lungai.image import Image
from lungai.io import write_image

TOY_TEMPLATE = {
    "name": "toy-lungs", "task": "lungs", "description": "tiny test model",
    "architecture": {"name": "UNet", "params": {"channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 0}},
    "spatial_dims": 3, "spacing": [4.0, 4.0, 4.0], "patch_size": [28, 24, 20],
    "normalization": {"type": "ct_window", "window": [-1000, 400]}, "output": "softmax",
    "labels": {"0": "background", "1": "right_lung", "2": "left_lung"}, "license": "Apache-2.0",
    "inference": {"overlap": 0.25, "sw_batch_size": 4, "tta_axes": [1]},
}


def toy_chest(seed: int = 0, shape: Tuple[int, int, int] = (20, 24, 28),
              spacing=(4.0, 4.0, 4.0)) -> Tuple[Image, Image]:
    """CT (HU, float32) and lungs label map on the same grid; geometry in LPS with identity direction."""
    rng = np.random.default_rng(seed)
    nk, nj, ni = shape
    k, j, i = np.mgrid[:nk, :nj, :ni].astype(float)
    ct = np.full(shape, -1000.0)
    body = ((j - nj / 2) / (nj * 0.46)) ** 2 + ((i - ni / 2) / (ni * 0.47)) ** 2 < 1
    ct[body] = 40.0
    labels = np.zeros(shape, np.uint8)
    jitter = rng.uniform(-1.0, 1.0, 4)
    for value, ci in ((1, ni * 0.3 + jitter[0]), (2, ni * 0.7 + jitter[1])):
        lung = (((i - ci) / (ni * 0.15)) ** 2 + ((j - nj / 2 - jitter[2]) / (nj * 0.3)) ** 2
                + ((k - nk / 2 - jitter[3]) / (nk * 0.4)) ** 2) < 1
        ct[lung] = -850.0
        labels[lung] = value
    ct += rng.normal(0, 25, shape)
    origin = (-ni * spacing[0] / 2, -nj * spacing[1] / 2, -nk * spacing[2] / 2)
    image = Image.from_array(ct.astype(np.float32), spacing=spacing, origin=origin)
    return image, image.like(labels)


def write_toy_cohort(folder: Path, n: int = 4, seed: int = 0) -> Path:
    """A phantom-cohort-shaped folder: ``<case>/ct.nii.gz``, ``<case>/truth/lungs.nii.gz``, ``cohort.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(n):
        ct, lab = toy_chest(seed + index)
        case = folder / f"case{index:03d}"
        write_image(ct, case / "ct.nii.gz")
        write_image(lab, case / "truth" / "lungs.nii.gz")
    (folder / "cohort.json").write_text(json.dumps({"n": n, "seed": seed, "generator": "toy_chest"}))
    return folder


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(np.logical_and(a, b).sum()) / max(int(a.sum() + b.sum()), 1)
