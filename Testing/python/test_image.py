"""The Image type: construction, ITK round trip, index/LPS/RAS mappings against hand-computed points."""

from __future__ import annotations

import numpy as np
import pytest

from io_testdata import oblique_flipped_direction
from lungai.image import Image


def test_known_voxel_maps_to_hand_computed_ras_point():
    image = Image(np.zeros((5, 6, 7), np.int16), (0.5, 0.8, 2.0), (10.0, 20.0, -30.0), np.eye(3))
    # LPS = origin + spacing * index = (10 + 1.0, 20 + 2.4, -30 + 8.0); RAS negates L and P
    assert np.allclose(image.index_to_lps((2, 3, 4)), (11.0, 22.4, -22.0))
    assert np.allclose(image.index_to_ras((2, 3, 4)), (-11.0, -22.4, -22.0))
    assert np.allclose(image.ijk_to_ras() @ [2, 3, 4, 1], (-11.0, -22.4, -22.0, 1.0))


def test_rotated_direction_maps_to_hand_computed_ras_point():
    # i runs towards Posterior, j towards Right (-L), k towards Superior
    direction = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    image = Image(np.zeros((4, 4, 4)), (1.0, 2.0, 3.0), (0.0, 0.0, 0.0), direction)
    # LPS = 1*1*(0,1,0) + 2*2*(-1,0,0) + 3*3*(0,0,1) = (-4, 1, 9) -> RAS (4, -1, 9)
    assert np.allclose(image.index_to_ras((1, 2, 3)), (4.0, -1.0, 9.0))
    assert np.allclose(image.ras_to_index((4.0, -1.0, 9.0)), (1, 2, 3))
    assert image.array_axis_of(0) == 1 and image.array_axis_sign(0) == -1  # L runs along j, backwards
    assert image.array_axis_of(1) == 2 and image.array_axis_sign(1) == 1
    assert image.array_axis_of(2) == 0 and image.array_axis_sign(2) == 1


def test_ijk_to_ras_and_from_ijk_to_ras_are_inverses():
    rng = np.random.default_rng(3)
    array = rng.integers(-1000, 1000, (4, 5, 6)).astype(np.int16)
    image = Image(array, (0.7, 0.9, 2.5), (-120.5, 33.25, 410.0), oblique_flipped_direction())
    matrix = image.ijk_to_ras()
    back = Image.from_ijk_to_ras(array, matrix)
    assert back.same_grid(image, tol=1e-12)
    assert np.allclose(back.ijk_to_ras(), matrix, atol=1e-12)
    # and the other way round, starting from a Slicer-style matrix
    assert np.allclose(Image.from_ijk_to_ras(array, matrix).ijk_to_ras(), matrix)
    with pytest.raises(ValueError, match="4x4"):
        Image.from_ijk_to_ras(array, np.eye(3))


def test_lps_and_index_mappings_agree_with_simpleitk():
    image = Image(np.zeros((3, 4, 5), np.float32), (0.6, 0.7, 1.9), (5.0, -7.0, 11.0), oblique_flipped_direction())
    itk = image.to_sitk()
    for index in [(0, 0, 0), (1.5, 2.0, 0.25), (4, 3, 2)]:
        assert np.allclose(image.index_to_lps(index), itk.TransformContinuousIndexToPhysicalPoint(index))
        assert np.allclose(image.lps_to_index(image.index_to_lps(index)), index)
    again = Image.from_sitk(itk)
    assert again.same_grid(image, tol=1e-12)


def test_construction_rules():
    with pytest.raises(ValueError, match="2D or 3D"):
        Image.from_array(np.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError, match="must have 3 values"):
        Image(np.zeros((2, 2, 2)), (1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    flat = Image.from_array(np.zeros((8, 9)), spacing=(0.5, 0.25))
    assert flat.size == (9, 8) and flat.voxel_volume_ml == pytest.approx(0.125 / 1000)
    with pytest.raises(ValueError, match="3D"):
        flat.ijk_to_ras()
    image = Image.from_array(np.zeros((2, 3, 4)), spacing=(1.0, 2.0, 3.0))
    assert image.voxel_volume_ml == pytest.approx(0.006)
    assert image.like(np.ones((2, 3, 4))).same_grid(image)
    with pytest.raises(ValueError, match="differs"):
        image.like(np.ones((3, 3, 4)))
