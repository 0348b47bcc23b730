"""Metrics for one scorer on one split, with honest nulls when a metric is undefined."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def _round(x: float) -> float:
    # Metrics are written rounded so that metrics.json is stable across platforms' last bits.
    return float(round(float(x), 6))


def evaluate(y: np.ndarray, score: np.ndarray, threshold: float, probability: bool) -> dict:
    """PR-AUC, ROC-AUC, Brier, precision/recall at `threshold`, positive rates."""
    n = len(y)
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


SCORERS = ("gbdt", "har", "zscore", "persistence")
# The goal the ranking is held to (mean per-day PR-AUC on held-out days).
GOAL_RATIO_OVER_PERSISTENCE = 2.5


def summarize(per_day: dict, days: list[str]) -> dict:
    """Mean per-day PR-AUC of each scorer, and the goal: ≥ 2.5× persistence, ahead of HAR, ahead
    of persistence on every day and on every ETH-USD day."""

    def mean(name: str):
        values = [per_day[d][name]["pr_auc"] for d in days if per_day[d][name]["pr_auc"] is not None]
        return _round(float(np.mean(values))) if values else None

    means = {name: mean(name) for name in SCORERS}
    ratio = _round(means["gbdt"] / means["persistence"]) if means["gbdt"] and means["persistence"] else None
    behind = [
        d
        for d in days
        if per_day[d]["gbdt"]["pr_auc"] is not None
        and per_day[d]["persistence"]["pr_auc"] is not None
        and per_day[d]["gbdt"]["pr_auc"] <= per_day[d]["persistence"]["pr_auc"]
    ]
    eth = [d for d in days if d.startswith("ETH-USD")]
    goal = {
        "ratio_over_persistence_at_least": GOAL_RATIO_OVER_PERSISTENCE,
        "ratio_met": ratio is not None and ratio >= GOAL_RATIO_OVER_PERSISTENCE,
        "ahead_of_har": bool(means["gbdt"] is not None and means["har"] is not None and means["gbdt"] > means["har"]),
        "days_not_ahead_of_persistence": behind,
        "ahead_on_eth_usd": bool(eth) and not any(d in behind for d in eth),
    }
    goal["met"] = bool(goal["ratio_met"] and goal["ahead_of_har"] and not behind and goal["ahead_on_eth_usd"])
    return {"mean_pr_auc": means, "gbdt_over_persistence": ratio, "random_pr_auc": 0.1, "goal": goal}
