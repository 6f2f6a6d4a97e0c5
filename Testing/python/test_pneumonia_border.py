"""The border that the thin-structure opening shaves off a lesion is given back (lungai.pneumonia.segmentation,
``restore_shaved_border``): noise makes a faint lesion's outline ragged, and the opening that removes thin
structures cut it back; thin structures away from a lesion stay removed."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from lungai.image import Image
from lungai.pneumonia import regions_from_labels
from lungai.pneumonia.segmentation import ClassicParams, segment_lesions_classic

SPACING = (1.5, 1.5, 3.0)  # i, j, k mm: thick slices as on the phantom cohort
SHAPE = (24, 80, 80)  # k, j, i


def _noisy_lesion_ct(seed: int = 4):
    """Lung (-860 HU) holding a textured ground-glass ball (-640 HU, 10 mm radius, texture of 100 HU standard
    deviation over about 2 mm: patches near the threshold ragged its outline) and, 40 mm from it, a thin oblique
    line (a 1.5 mm-wide ground-glass vessel in partial volume, -600 HU); blur and noise of a thick-slice scan."""
    rng = np.random.default_rng(seed)
    k, j, i = np.mgrid[:SHAPE[0], :SHAPE[1], :SHAPE[2]].astype(float)
    z, y, x = k * SPACING[2], j * SPACING[1], i * SPACING[0]
    lesion = ((z - 36) ** 2 + (y - 45) ** 2 + (x - 45) ** 2) <= 10.0 ** 2
    line = (np.hypot(y - 95.0, x - (20.0 + 0.5 * z)) <= 0.75) & (z > 9) & (z < 60)
    texture = ndi.gaussian_filter(rng.normal(0.0, 1.0, SHAPE), (0.7, 1.4, 1.4))
    ct = np.full(SHAPE, -860.0)
    ct[lesion] = -640.0 + 100.0 * (texture / texture.std())[lesion]
    ct[line] = -600.0
    ct = ndi.gaussian_filter(ct, (0.5, 0.6, 0.6)) + rng.normal(0.0, 30.0, SHAPE)
    lung = np.zeros(SHAPE, dtype=np.uint8)
    lung[:, 3:-3, 3:-3] = 1
    image = Image.from_array(np.where(lung > 0, ct, 40.0).astype(np.float32), spacing=SPACING)
    return image, lung, lesion, line


def _segment(restore: bool):
    image, lung, lesion, line = _noisy_lesion_ct()
    regions = regions_from_labels(image, lung, zones=lung.copy(), fill=False)
    seg = segment_lesions_classic(image, regions, ClassicParams(restore_shaved_border=restore))
    return seg.labels > 0, lesion, line


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (a.sum() + b.sum())


def test_shaved_border_of_a_noisy_lesion_comes_back():
    shaved, lesion, _ = _segment(restore=False)
    restored, _, _ = _segment(restore=True)
    assert restored[shaved].all()  # it only adds
    added = restored & ~shaved
    assert added.any()
    # the voxels added lie on the lesion's border: within one opening disc (2 mm in-plane) of the shaved mask
    disc = np.zeros((1, 3, 3), dtype=bool)
    disc[0] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert not (added & ~ndi.binary_dilation(shaved, disc)).any()
    assert np.count_nonzero(added & lesion) > 0.8 * np.count_nonzero(added)
    assert _dice(restored, lesion) > _dice(shaved, lesion) + 0.01  # 0.865 -> 0.882


def test_thin_line_away_from_a_lesion_stays_removed():
    restored, _, line = _segment(restore=True)
    near_line = ndi.binary_dilation(line, iterations=2)
    assert not (restored & near_line).any()
