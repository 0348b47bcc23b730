"""Metrics for one scorer on one split, with honest nulls when a metric is undefined."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_curve,
    roc_auc_score,
)


def _round(x: float) -> float:
    # Metrics are written rounded so that metrics.json is stable across platforms' last bits.
    return float(round(float(x), 6))


def choose_threshold(y: np.ndarray, score: np.ndarray) -> tuple[float | None, str]:
    """The score threshold with the best F1 on validation; None when validation has one class."""
    if len(np.unique(y)) < 2:
        return None, f"validation has a single class (all {int(y[0]) if len(y) else '?'}): F1 is undefined"
    precision, recall, thresholds = precision_recall_curve(y, score)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0.0)
    best = int(np.argmax(f1[:-1]))  # the last point (recall 0) has no threshold
    return float(thresholds[best]), f"max F1 on validation ({f1[best]:.4f})"


def evaluate(y: np.ndarray, score: np.ndarray, threshold: float, probability: bool) -> dict:
    """PR-AUC, ROC-AUC, Brier, precision/recall at `threshold`, positive rates."""
    n = int(len(y))
    out: dict = {"rows": n, "positives": int(y.sum()), "positive_rate": _round(y.mean()) if n else None}
    single = len(np.unique(y)) < 2
    why_single = f"only one class in this split ({'all positive' if n and y.all() else 'no positives'})"
    out["pr_auc"] = None if single else _round(average_precision_score(y, score))
    out["roc_auc"] = None if single else _round(roc_auc_score(y, score))
    if probability:
        out["brier"] = _round(brier_score_loss(y, score, pos_label=1)) if n else None
    else:
        out["brier"] = None
    decision = (score >= threshold).astype(np.int64)
    tp = int(((decision == 1) & (y == 1)).sum())
    fp = int(((decision == 1) & (y == 0)).sum())
    fn = int(((decision == 0) & (y == 1)).sum())
    out["predicted_positive_rate"] = _round(decision.mean()) if n else None
    out["precision"] = _round(tp / (tp + fp)) if tp + fp else None
    out["recall"] = _round(tp / (tp + fn)) if tp + fn else None
    notes = []
    if single:
        notes.append(f"pr_auc/roc_auc null: {why_single}")
    if not probability:
        notes.append("brier null: the score is not a probability")
    if tp + fp == 0:
        notes.append("precision null: nothing was predicted positive")
    if tp + fn == 0:
        notes.append("recall null: no positives in this split")
    if notes:
        out["notes"] = notes
    return out


def logistic(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


def is_finite_number(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
