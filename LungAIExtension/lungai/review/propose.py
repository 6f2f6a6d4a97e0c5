"""AI proposals for review cases, with an uncertainty from test-time flips for "least certain first"."""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from lungai.errors import LungAIError
from lungai.image import Image
from lungai.progress import Progress, ensure
from lungai.review.selection import label_disagreement

Segmenter = Callable[[Image, Progress], Tuple[Image, dict]]


def flipped(image: Image, axes: Sequence[int]) -> Image:
    """The same physical image with its array flipped along array ``axes`` (k, j, i) and the geometry adjusted,
    so every voxel keeps its LPS position: an orientation-aware method must give the same answer."""
    array = np.flip(image.array, axis=tuple(axes))
    direction = image.direction.copy()
    origin = np.asarray(image.origin, dtype=float)
    for axis in axes:
        itk_axis = image.ndim - 1 - axis
        last = np.zeros(image.ndim)
        last[itk_axis] = image.shape[axis] - 1
        origin = image.index_to_lps(last)
        direction[:, itk_axis] *= -1
        image = Image(image.array, image.spacing, tuple(origin), direction)
    return Image(np.ascontiguousarray(array), image.spacing, tuple(origin), direction, dict(image.metadata))


def segmenter_for(task: str, method: str = "auto", model_name: Optional[str] = None,
                  device: str = "cpu") -> Segmenter:
    """The function that proposes labels for a store's task (lungs: :func:`lungai.lung.segment_lungs`)."""
    if task == "lungs":
        from lungai.lung import segment_lungs

        def lungs(image: Image, progress: Progress) -> Tuple[Image, dict]:
            result = segment_lungs(image, method=method, progress=progress, model_name=model_name, device=device)
            return result.labels, result.provenance.to_dict()
        return lungs
    if task == "lesions":
        from lungai.pneumonia import segment_lesions
        from lungai.pneumonia.analysis import lung_regions

        def lesions(image: Image, progress: Progress) -> Tuple[Image, dict]:
            regions, _ = lung_regions(image, progress=progress.span(0.0, 0.5))
            found = segment_lesions(image, regions, method="classic" if method == "auto" else method,
                                    device=device, progress=progress.span(0.5, 1.0))
            return image.like(found.labels.astype(np.uint8)), found.provenance.to_dict()
        return lesions
    raise LungAIError(f"no AI proposal is available for the task {task!r} (lungs, lesions)")


def propose(image: Image, segment: Segmenter, tta: Sequence[Sequence[int]] = ((2,),),
            progress: Optional[Progress] = None) -> Tuple[Image, dict, Optional[float]]:
    """Labels, provenance and uncertainty (1 - mean pairwise Dice over the flipped runs; None without ``tta``)."""
    progress = ensure(progress)
    runs = 1 + len(tta)
    labels, provenance = segment(image, progress.span(0.0, 1.0 / runs))
    if not tta:
        return labels, provenance, None
    predictions: List[np.ndarray] = [np.asarray(labels.array)]
    for n, axes in enumerate(tta, start=1):
        flipped_labels, _ = segment(flipped(image, axes), progress.span(n / runs, (n + 1) / runs))
        predictions.append(np.flip(np.asarray(flipped_labels.array), axis=tuple(axes)))
    return labels, provenance, label_disagreement(predictions)
