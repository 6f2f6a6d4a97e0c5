"""Which case to annotate next: random, where the current model is least certain, or the least reviewed."""

from __future__ import annotations

import itertools
import random
from typing import List, Optional, Sequence

import numpy as np

from lungai.review.agreement import dice
from lungai.review.store import CaseRecord

STRATEGIES = ("random", "uncertain", "least_reviewed")


def label_disagreement(label_maps: Sequence[np.ndarray]) -> float:
    """Uncertainty from several predictions of one case (test-time flips or MC dropout): 1 - mean pairwise Dice
    of their foregrounds per label, averaged over labels. 0 = all passes agree."""
    if len(label_maps) < 2:
        raise ValueError("need at least two predictions to measure disagreement")
    values = sorted(set(np.unique(np.stack(label_maps)).tolist()) - {0})
    if not values:
        return 0.0
    scores = [dice(a == v, b == v) for v in values for a, b in itertools.combinations(label_maps, 2)]
    return float(1.0 - np.mean(scores))


def _open_for(record: CaseRecord, annotator: Optional[str]) -> bool:
    if record.status == "todo":
        return True
    return record.status == "in_progress" and (annotator is None or record.assigned_to in (None, annotator))


def next_case(store, strategy: str = "least_reviewed", annotator: Optional[str] = None,
              seed: Optional[int] = None) -> Optional[CaseRecord]:
    """The next case for ``annotator`` (todo, or in progress and theirs); None when nothing is left.

    ``uncertain`` ranks by the stored uncertainty of each case's latest proposal (cases without one come last);
    ``least_reviewed`` takes the case with the fewest saved versions, oldest first.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    candidates: List[CaseRecord] = [r for r in store.cases() if _open_for(r, annotator)]
    if not candidates:
        return None
    if strategy == "random":
        return random.Random(seed).choice(candidates)
    if strategy == "uncertain":
        def certainty(record: CaseRecord) -> tuple:
            p = record.latest_proposal
            u = p.uncertainty if p is not None and p.uncertainty is not None else None
            return (u is None, -(u or 0.0), record.created)
        return min(candidates, key=certainty)
    return min(candidates, key=lambda r: (len(r.versions), r.created))
