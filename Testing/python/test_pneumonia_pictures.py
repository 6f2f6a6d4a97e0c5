"""Windowed 8-bit CT pictures mapped back to HU (lungai.pneumonia.pictures): hand-computed calibration points,
the lung mask of a drawn chest; and one real COVID picture when the shared data is there."""

from __future__ import annotations

import numpy as np
import pytest

from lungai.pneumonia.pictures import DARK_LUNG_HU, SOFT_TISSUE_HU, picture_lungs, picture_to_hu


def _drawn_chest(lung_grey: int = 30, tissue_grey: int = 190, lesion_grey: int = None):
    """A 200 x 260 picture: body of soft tissue, two elliptic lungs of 0..59 grey values (lung_grey + 0..29 in
    a ramp, so the 2nd percentile is known), air outside the body (grey 0 is not used: pictures are cropped)."""
    j, i = np.mgrid[:200, :260]
    picture = np.full((200, 260), tissue_grey, dtype=np.uint8)
    right = ((j - 100) / 70.0) ** 2 + ((i - 65) / 45.0) ** 2 <= 1.0
    left = ((j - 100) / 70.0) ** 2 + ((i - 195) / 45.0) ** 2 <= 1.0
    ramp = (lung_grey + (i % 30)).astype(np.uint8)
    picture[right | left] = ramp[right | left]
    if lesion_grey is not None:
        lesion = ((j - 100) ** 2 + (i - 65) ** 2) <= 15 ** 2
        picture[lesion] = lesion_grey
    return picture, right | left


def test_two_point_calibration():
    picture, lungs = _drawn_chest()
    hu = picture_to_hu(picture)
    # the soft-tissue peak (grey 190) is 40 HU
    assert hu[0, 120] == pytest.approx(SOFT_TISSUE_HU, abs=1e-3)
    # the darkest lung: the 2nd percentile of the lung grey values (30 + 0..29, uniform) is -950 HU
    low = np.percentile(picture[lungs], 2)
    slope = (SOFT_TISSUE_HU - DARK_LUNG_HU) / (190.0 - low)
    assert hu[lungs].min() == pytest.approx(DARK_LUNG_HU + (30.0 - low) * slope, abs=1e-2)
    # linear in between: grey 110 is (110 - low) steps of the slope above -950 HU
    picture[5, 5] = 110
    assert picture_to_hu(picture)[5, 5] == pytest.approx(DARK_LUNG_HU + (110.0 - low) * slope, abs=1e-2)


def test_lung_mask_of_a_drawn_chest_takes_in_lesions():
    picture, lungs = _drawn_chest(lesion_grey=120)  # a ground-glass patch inside the right lung
    mask = picture_lungs(picture_to_hu(picture))
    assert np.count_nonzero(mask & lungs) / np.count_nonzero(lungs) > 0.98
    assert np.count_nonzero(mask & ~lungs) / np.count_nonzero(lungs) < 0.01  # lungs 40 px apart stay apart
    assert mask[100, 65]  # the patch is filled in


def test_real_covid_picture(shared_data):
    from PIL import Image as PILImage

    path = shared_data / "covid2d" / "train" / "MultiClassInfection-Train" / "Imgs" / "10.jpg"
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    hu = picture_to_hu(np.asarray(PILImage.open(path).convert("L")))
    lungs = picture_lungs(hu)
    # aerated lung of a lung-windowed chest CT: median about -850 HU; the lungs fill a quarter to two thirds
    assert -900.0 < np.median(hu[lungs]) < -700.0
    assert 0.25 < lungs.mean() < 0.67
