"""Phantom CTPA cohorts for training and evaluating the embolus detector, cached as compact ``.npz`` files.

Each case holds the noisy CT (HU), the truth artery and emboli label maps, the geometry and the phantom's
embolus records (level, side, occlusive). Positive cases use preset ``pe``, negatives ``healthy``; both are
CT pulmonary angiograms. Cases are split by seed, so training and test never share a patient.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from lungai.image import Image
from lungai.progress import Progress, ensure

PathLike = Union[str, Path]
COHORT_SIZE = (200, 200, 140)
COHORT_SPACING = (1.6, 1.6, 2.0)


@dataclass
class CohortCase:
    """One cached phantom case."""

    name: str
    ct: Image
    arteries: np.ndarray
    emboli: np.ndarray
    records: List[Dict]

    @property
    def positive(self) -> bool:
        return bool(self.records)


def case_seeds(split: str, n_positive: int, n_negative: int, first: int = 0) -> List[Tuple[str, int]]:
    """(preset, seed) pairs of a split, from the ``first`` case of each kind on; train and test seeds never
    overlap (for ``first`` below 500)."""
    base = {"train": 1000, "val": 5000, "test": 9000}[split] + first
    return [("pe", base + i) for i in range(n_positive)] + [("healthy", base + 500 + i) for i in range(n_negative)]


def _make(preset: str, seed: int, size: Sequence[int], spacing: Sequence[float]) -> Dict[str, np.ndarray]:
    from lungai.phantom import PhantomConfig, make_phantom

    case = make_phantom(PhantomConfig(seed=seed, size=tuple(size), spacing=tuple(spacing), preset=preset,
                                      contrast="ctpa"))
    ct = case.ct
    return {"ct": ct.array.astype(np.int16), "arteries": case.truth["arteries"].array.astype(np.uint8),
            "emboli": case.truth["emboli"].array.astype(np.uint8), "spacing": np.asarray(ct.spacing),
            "origin": np.asarray(ct.origin), "direction": np.asarray(ct.direction),
            "records": np.asarray(json.dumps(case.info["emboli"]))}


def load_case(path: PathLike) -> CohortCase:
    with np.load(path) as z:
        ct = Image(z["ct"].astype(np.float32), tuple(z["spacing"]), tuple(z["origin"]), z["direction"],
                   {"source": str(path)})
        return CohortCase(Path(path).stem, ct, z["arteries"], z["emboli"], json.loads(str(z["records"])))


def cohort(folder: PathLike, split: str, n_positive: int, n_negative: int, size: Sequence[int] = COHORT_SIZE,
           spacing: Sequence[float] = COHORT_SPACING, progress: Optional[Progress] = None,
           first: int = 0) -> Iterator[CohortCase]:
    """Yield the cases of a split (seeds from ``first`` on, see ``case_seeds``), making (and caching under
    ``folder``) those not made yet."""
    progress = ensure(progress)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    seeds = case_seeds(split, n_positive, n_negative, first)
    for n, (preset, seed) in enumerate(seeds):
        tag = f"{preset}_{seed}_{'x'.join(map(str, size))}_{'x'.join(f'{s:g}' for s in spacing)}"
        path = folder / f"{tag}.npz"
        if not path.is_file():
            progress.update(n / len(seeds), f"phantom {n + 1}/{len(seeds)} ({preset}, seed {seed})")
            tmp = path.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, **_make(preset, seed, size, spacing))
            tmp.replace(path)
        yield load_case(path)
    progress.update(1.0, "cohort ready")
