"""Temperature scaling (Guo et al. 2017): one scalar that divides the logits so that predicted probabilities
match observed frequencies on held-out data, without changing which class is predicted."""

from __future__ import annotations

import numpy as np
import torch


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray, lower: float = 0.05, upper: float = 20.0) -> float:
    """The temperature minimising the negative log-likelihood of ``labels`` (searched on a log scale)."""
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    grid = np.exp(np.linspace(np.log(lower), np.log(upper), 400))
    losses = [float(torch.nn.functional.cross_entropy(z / t, y)) for t in grid]
    best = int(np.argmin(losses))
    # refine between the neighbouring grid points with a golden-section search
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if float(torch.nn.functional.cross_entropy(z / c, y)) < float(torch.nn.functional.cross_entropy(z / d, y)):
            b = d
        else:
            a = c
    return float((a + b) / 2)
