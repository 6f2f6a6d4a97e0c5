"""The one in-memory image type of lungai.

``Image.array`` is indexed ``[k, j, i]`` (3D) or ``[j, i]`` (2D). ``spacing``, ``origin`` and ``direction`` are in
ITK order ``(i, j, k)`` and in LPS patient coordinates; ``direction`` is a ``(d, d)`` matrix whose column ``n``
is the LPS unit vector of array index axis ``n`` in ITK order (i, j, k).

Slicer's world frame is RAS: ``ijk_to_ras() = diag(-1, -1, 1, 1) @ index_to_lps_matrix()``, the matrix Slicer's
``vtkMRMLScalarVolumeNode.SetIJKToRASMatrix`` takes (Slicer's IJK is ITK's (i, j, k)); ``from_ijk_to_ras`` is
its inverse. See ``LungAIExtension/docs/io.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass
class Image:
    """A scalar image with its geometry (see module docstring for the conventions)."""

    array: np.ndarray
    spacing: Tuple[float, ...]
    origin: Tuple[float, ...]
    direction: np.ndarray
    metadata: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        d = self.array.ndim
        if d not in (2, 3):
            raise ValueError(f"Image needs a 2D or 3D array, got {d}D with shape {self.array.shape}")
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = np.asarray(self.direction, dtype=float).reshape(d, d)
        if len(self.spacing) != d or len(self.origin) != d:
            raise ValueError(f"spacing {self.spacing} and origin {self.origin} must have {d} values")

    # -- construction ---------------------------------------------------------------------------------------
    @classmethod
    def from_array(cls, array: np.ndarray, spacing: Optional[Sequence[float]] = None,
                   origin: Optional[Sequence[float]] = None, direction: Optional[np.ndarray] = None,
                   metadata: Optional[Dict[str, Any]] = None) -> "Image":
        """An image with identity direction, unit spacing and zero origin unless given."""
        d = np.ndim(array)
        return cls(np.asarray(array), tuple(spacing) if spacing is not None else (1.0,) * d,
                   tuple(origin) if origin is not None else (0.0,) * d,
                   np.eye(d) if direction is None else np.asarray(direction), dict(metadata or {}))

    @classmethod
    def from_sitk(cls, image: sitk.Image, metadata: Optional[Dict[str, Any]] = None) -> "Image":
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise ValueError("only scalar images are supported (got a multi-component image)")
        d = image.GetDimension()
        return cls(sitk.GetArrayFromImage(image), image.GetSpacing(), image.GetOrigin(),
                   np.asarray(image.GetDirection()).reshape(d, d), dict(metadata or {}))

    def to_sitk(self) -> sitk.Image:
        image = sitk.GetImageFromArray(np.ascontiguousarray(self.array))
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(tuple(self.direction.ravel()))
        return image

    def like(self, array: np.ndarray, **metadata: Any) -> "Image":
        """A new image on the same grid (same shape, spacing, origin, direction) holding ``array``."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} differs from the image grid {self.array.shape}")
        return Image(array, self.spacing, self.origin, self.direction.copy(), dict(metadata))

    # -- geometry -------------------------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.array.shape

    @property
    def size(self) -> Tuple[int, ...]:
        """Size in ITK order (i, j, k)."""
        return tuple(reversed(self.array.shape))

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres (mm^3 / 1000); area in mm^2 / 1000 for 2D."""
        return float(np.prod(self.spacing)) / 1000.0

    def index_to_lps_matrix(self) -> np.ndarray:
        """Homogeneous matrix mapping ITK index (i, j, k, 1) to LPS (x, y, z, 1)."""
        d = self.ndim
        m = np.eye(d + 1)
        m[:d, :d] = self.direction @ np.diag(self.spacing)
        m[:d, d] = self.origin
        return m

    def ijk_to_ras(self) -> np.ndarray:
        """4x4 IJK-to-RAS matrix as Slicer's volume nodes use (3D only)."""
        if self.ndim != 3:
            raise ValueError("ijk_to_ras needs a 3D image")
        m = self.index_to_lps_matrix()
        flip = np.eye(4)
        flip[:3, :3] = LPS_TO_RAS
        return flip @ m

    @classmethod
    def from_ijk_to_ras(cls, array: np.ndarray, ijk_to_ras: np.ndarray,
                        metadata: Optional[Dict[str, Any]] = None) -> "Image":
        """Inverse of :meth:`ijk_to_ras`: build an image from a Slicer-style array and IJK-to-RAS matrix."""
        m = np.asarray(ijk_to_ras, dtype=float)
        if m.shape != (4, 4):
            raise ValueError(f"an IJK-to-RAS matrix is 4x4, got {m.shape}")
        lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ m
        spacing = np.linalg.norm(lps[:3, :3], axis=0)
        direction = lps[:3, :3] / spacing
        return cls(np.asarray(array), tuple(spacing), tuple(lps[:3, 3]), direction, dict(metadata or {}))

    def index_to_lps(self, index_ijk: Sequence[float]) -> np.ndarray:
        """LPS point (mm) of a continuous ITK index (i, j, k)."""
        p = np.append(np.asarray(index_ijk, dtype=float), 1.0)
        return (self.index_to_lps_matrix() @ p)[: self.ndim]

    def lps_to_index(self, point: Sequence[float]) -> np.ndarray:
        """Continuous ITK index (i, j, k) of an LPS point (mm)."""
        p = np.append(np.asarray(point, dtype=float), 1.0)
        return (np.linalg.inv(self.index_to_lps_matrix()) @ p)[: self.ndim]

    def index_to_ras(self, index_ijk: Sequence[float]) -> np.ndarray:
        """RAS point (mm, Slicer's world frame) of a continuous ITK index (i, j, k) of a 3D image."""
        return (self.ijk_to_ras() @ np.append(np.asarray(index_ijk, dtype=float), 1.0))[:3]

    def ras_to_index(self, point_ras: Sequence[float]) -> np.ndarray:
        """Continuous ITK index (i, j, k) of a RAS point (mm) for a 3D image."""
        return (np.linalg.inv(self.ijk_to_ras()) @ np.append(np.asarray(point_ras, dtype=float), 1.0))[:3]

    def array_axis_of(self, lps_axis: int) -> int:
        """Which array axis (k, j, i order) runs most nearly along LPS axis ``lps_axis`` (0=L, 1=P, 2=S)."""
        itk_axis = int(np.argmax(np.abs(self.direction[lps_axis, :])))
        return self.ndim - 1 - itk_axis

    def array_axis_sign(self, lps_axis: int) -> int:
        """+1 if increasing the array index along :meth:`array_axis_of` moves towards +LPS axis, else -1."""
        itk_axis = self.ndim - 1 - self.array_axis_of(lps_axis)
        return 1 if self.direction[lps_axis, itk_axis] > 0 else -1

    def same_grid(self, other: "Image", tol: float = 1e-4) -> bool:
        return (self.shape == other.shape and np.allclose(self.spacing, other.spacing, atol=tol)
                and np.allclose(self.origin, other.origin, atol=tol)
                and np.allclose(self.direction, other.direction, atol=tol))
