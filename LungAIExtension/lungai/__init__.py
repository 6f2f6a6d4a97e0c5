"""LungAI core: lung CT and chest X-ray AI, independent of 3D Slicer.

Coordinates and axis order (used everywhere in ``lungai``):

* Arrays are indexed ``[k, j, i]`` (slice, row, column), exactly as ``SimpleITK.GetArrayFromImage`` returns them
  and as Slicer's ``slicer.util.arrayFromVolume`` does.
* ``spacing``, ``origin`` and ``direction`` are in ITK order ``(i, j, k)`` = ``(x, y, z)`` and in the patient
  LPS frame (x towards the patient's Left, y towards Posterior, z towards Superior), as ITK and DICOM use.
* Slicer's world frame is RAS; a point maps as ``(R, A, S) = (-L, -P, S)``. ``Image.ijk_to_ras()`` gives the
  4x4 matrix Slicer's ``SetIJKToRASMatrix`` expects.
"""

__version__ = "0.1.0"

from lungai.errors import LungAIError, InputError, Cancelled  # noqa: E402
from lungai.image import Image  # noqa: E402

__all__ = ["__version__", "Image", "LungAIError", "InputError", "Cancelled"]
