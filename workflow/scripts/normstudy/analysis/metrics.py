"""Test-set metrics from labels and predictions: accuracy, per-class accuracy, confusion matrix."""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def per_class_accuracy(matrix: np.ndarray) -> list[float]:
    """Accuracy in percent for each true class (NaN for a class with no test images)."""
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return [float(v) for v in 100.0 * np.diag(matrix) / totals]
