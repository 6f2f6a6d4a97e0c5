"""Figures of merit for the radiograph classifier: accuracy, per-class sensitivity, AUC, calibration error."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch
from monai.metrics import compute_roc_auc

from lungai.xray.classes import CLASS_NAMES


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the binary truth ``positive`` (NaN if one class is absent)."""
    positive = np.asarray(positive).astype(int)
    if positive.min() == positive.max():
        return float("nan")
    return float(compute_roc_auc(torch.as_tensor(np.asarray(scores, dtype=np.float64)), torch.as_tensor(positive)))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE: the confidence-vs-accuracy gap of the top class, averaged over equal-width confidence bins."""
    probabilities = np.asarray(probabilities)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def classification_report(probabilities: np.ndarray, labels: np.ndarray) -> Dict[str, Any]:
    """Three-class and pneumonia-vs-normal figures from class probabilities ``(N, 3)`` and true labels ``(N,)``."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    predicted = probabilities.argmax(axis=1)
    n_classes = len(CLASS_NAMES)
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    sensitivity = {name: (float(confusion[c, c] / confusion[c].sum()) if confusion[c].sum() else float("nan"))
                   for c, name in enumerate(CLASS_NAMES)}
    auc = {name: roc_auc(probabilities[:, c], labels == c) for c, name in enumerate(CLASS_NAMES)}

    pneumonia_true = labels != 0
    pneumonia_score = 1.0 - probabilities[:, 0]
    pneumonia_pred = predicted != 0
    binary = {
        "accuracy": float(np.mean(pneumonia_pred == pneumonia_true)),
        "sensitivity": float(np.mean(pneumonia_pred[pneumonia_true])) if pneumonia_true.any() else float("nan"),
        "specificity": float(np.mean(~pneumonia_pred[~pneumonia_true])) if (~pneumonia_true).any() else float("nan"),
        "auc": roc_auc(pneumonia_score, pneumonia_true),
    }
    # bacterial vs viral among true pneumonias, deciding between the two pneumonia classes only
    among = pneumonia_true
    subtype = {"accuracy": float("nan"), "auc": float("nan")}
    if among.any():
        viral_score = probabilities[among, 2] / np.maximum(probabilities[among, 1] + probabilities[among, 2], 1e-12)
        subtype = {"accuracy": float(np.mean((viral_score >= 0.5) == (labels[among] == 2))),
                   "auc": roc_auc(viral_score, labels[among] == 2)}
    return {
        "n": int(len(labels)),
        "accuracy": float(np.mean(predicted == labels)),
        "balanced_accuracy": float(np.nanmean(list(sensitivity.values()))),
        "sensitivity": sensitivity,
        "auc_one_vs_rest": auc,
        "macro_auc": float(np.nanmean(list(auc.values()))),
        "normal_vs_pneumonia": binary,
        "bacterial_vs_viral": subtype,
        "ece": expected_calibration_error(probabilities, labels),
        "confusion": {"rows_true_columns_predicted": list(CLASS_NAMES), "counts": confusion.tolist()},
    }
