"""Metrics per product-day and per date, their means, and a block bootstrap of the paired
difference between two scorers. Nulls, with a reason, where a metric is undefined."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

# Seconds per bootstrap block: neighbouring seconds share most of their label window.
BLOCK_S = 300
BOOTSTRAP_SAMPLES = 1000
SEED = 42


def _round(x) -> float | None:
    # Metrics are written rounded so that metrics.json is stable across platforms' last bits.
    return None if x is None else float(round(float(x), 6))


def pr_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    return None if len(np.unique(y)) < 2 else float(average_precision_score(y, score))


def metrics(y: np.ndarray, score: np.ndarray, probability: np.ndarray | None, threshold: float | None) -> dict:
    """PR-AUC, ROC-AUC; for a calibrated scorer also Brier and precision/recall at its threshold."""
    n = len(y)
    single = len(np.unique(y)) < 2
    out: dict = {"seconds": n, "positives": int(y.sum())}
    out["pr_auc"] = _round(pr_auc(y, score))
    out["roc_auc"] = None if single else _round(roc_auc_score(y, score))
    if probability is not None and threshold is not None:
        out["brier"] = _round(brier_score_loss(y, probability, pos_label=1)) if n else None
        alert = probability >= threshold
        tp, fp = int((alert & (y == 1)).sum()), int((alert & (y == 0)).sum())
        fn = int((~alert & (y == 1)).sum())
        out["alert_rate"] = _round(alert.mean()) if n else None
        out["precision"] = _round(tp / (tp + fp)) if tp + fp else None
        out["recall"] = _round(tp / (tp + fn)) if tp + fn else None
    if single:
        out["note"] = "pr_auc/roc_auc null: one class only in this split"
    return out


def per_group(
    rows: pd.DataFrame, y: np.ndarray, scores: dict, by: str = "day", probabilities=None, thresholds=None
) -> dict:
    """`{group: {scorer: metrics}}` for each value of `rows[by]`."""
    probabilities = probabilities or {}
    thresholds = thresholds or {}
    out = {}
    for group, idx in sorted(rows.groupby(by).indices.items()):
        out[group] = {
            name: metrics(
                y[idx],
                s[idx],
                probabilities[name][idx] if name in probabilities else None,
                thresholds.get(name),
            )
            for name, s in scores.items()
        }
    return out


def means(per_day: dict, names: list[str]) -> dict:
    """Mean PR-AUC per scorer over the days where it is defined: plain, and weighted by the
    evaluated minutes of each day."""
    out = {}
    for name in names:
        values = [(m[name]["pr_auc"], m[name]["seconds"]) for m in per_day.values() if m[name]["pr_auc"] is not None]
        if not values:
            out[name] = {"mean": None, "weighted_mean": None}
            continue
        ap = np.array([v for v, _ in values])
        w = np.array([s for _, s in values], dtype=np.float64)
        out[name] = {"mean": _round(ap.mean()), "weighted_mean": _round((ap * w).sum() / w.sum())}
    return out


def wins(per_day: dict, name: str, others: list[str]) -> int:
    """Days on which `name` has a higher PR-AUC than every one of `others`."""
    return sum(
        1
        for m in per_day.values()
        if m[name]["pr_auc"] is not None and all(m[name]["pr_auc"] > (m[o]["pr_auc"] or 0.0) for o in others)
    )


def block_bootstrap(rows: pd.DataFrame, y: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict:
    """Mean over days of PR-AUC(a) − PR-AUC(b), and its 95 % interval: each day's 5-minute
    blocks are drawn with replacement, the same draw for both scorers (paired)."""
    rng = np.random.default_rng(SEED)
    days = []
    for _, idx in sorted(rows.groupby("day").indices.items()):
        if len(np.unique(y[idx])) < 2:
            continue
        blocks = rows["second"].to_numpy()[idx] // BLOCK_S
        members = [idx[blocks == k] for k in np.unique(blocks)]
        days.append(members)
    if not days:
        return {"mean_difference": None, "interval_95": None, "samples": 0}

    def difference(day_members) -> float | None:
        diffs = []
        for members in day_members:
            idx = np.concatenate(members)
            pa, pb = pr_auc(y[idx], a[idx]), pr_auc(y[idx], b[idx])
            if pa is not None and pb is not None:
                diffs.append(pa - pb)
        return float(np.mean(diffs)) if diffs else None

    observed = difference(days)
    samples = []
    for _ in range(BOOTSTRAP_SAMPLES):
        drawn = [[members[k] for k in rng.integers(0, len(members), len(members))] for members in days]
        d = difference(drawn)
        if d is not None:
            samples.append(d)
    lo, hi = np.quantile(samples, [0.025, 0.975])
    return {
        "mean_difference": _round(observed),
        "interval_95": [_round(lo), _round(hi)],
        "samples": len(samples),
        "block_seconds": BLOCK_S,
    }
