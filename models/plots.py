"""The model card's pictures, written as SVG by the training run (deterministic bytes: fixed
hash salt, no date): PR curves per day against the baselines, calibration, feature importance,
and PR-AUC by day."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve

plt.rcParams["svg.hashsalt"] = "spikewatch"
plt.rcParams["svg.fonttype"] = "none"
COLORS = {"gbdt": "#1f77b4", "persistence": "#7f7f7f", "har": "#ff7f0e", "zscore": "#2ca02c"}


def _save(fig, path: Path) -> None:
    fig.savefig(path, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    plt.close(fig)


def pr_curves(days: list[str], y: dict, scores: dict, path: Path) -> None:
    """One panel per day: precision–recall of each scorer against the day's top-decile label."""
    cols = 3
    rows = (len(days) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, day in zip(axes.flat, days, strict=False):
        for name, color in COLORS.items():
            if name not in scores[day]:
                continue
            precision, recall, _ = precision_recall_curve(y[day], scores[day][name])
            ax.plot(recall, precision, color=color, label=name, linewidth=1)
        ax.axhline(y[day].mean(), color="black", linestyle=":", linewidth=0.8, label="random")
        ax.set_title(day, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("recall", fontsize=8)
        ax.set_ylabel("precision", fontsize=8)
    for ax in list(axes.flat)[len(days) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Held-out days: the coming minute in the day's top 10 % of volatility")
    _save(fig, path)


def calibration(y: np.ndarray, p: np.ndarray, path: Path, bins: int = 10) -> None:
    """Reliability of the out-of-fold probabilities (equal-count bins)."""
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, bins)
    mean_p = [float(p[g].mean()) for g in groups if len(g)]
    rate = [float(y[g].mean()) for g in groups if len(g)]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="black", linestyle=":", linewidth=0.8, label="perfect")
    ax.plot(mean_p, rate, marker="o", color=COLORS["gbdt"], label="gbdt (out of fold)")
    ax.set_xlabel("predicted probability (bin mean)")
    ax.set_ylabel("observed rate of top-decile minutes")
    ax.set_xlim(0, max(0.5, max(mean_p) * 1.1))
    ax.set_ylim(0, max(0.5, max(rate) * 1.1))
    ax.legend(fontsize=8)
    _save(fig, path)


def feature_importance(names: list[str], gain: np.ndarray, path: Path) -> None:
    order = np.argsort(gain, kind="stable")
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(names) + 1))
    ax.barh([names[i] for i in order], gain[order] / max(gain.sum(), 1e-300), color=COLORS["gbdt"])
    ax.set_xlabel("share of total split gain (final model)")
    _save(fig, path)


def pr_auc_by_day(days: list[str], table: dict, path: Path) -> None:
    names = [n for n in ("gbdt", "har", "persistence") if all(table[d][n] is not None for d in days)]
    x = np.arange(len(days))
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(days) + 2, 4))
    for i, name in enumerate(names):
        ax.bar(x + i * width, [table[d][name] for d in days], width, label=name, color=COLORS[name])
    ax.axhline(0.1, color="black", linestyle=":", linewidth=0.8, label="random (0.10)")
    ax.set_xticks(x + width * (len(names) - 1) / 2)
    ax.set_xticklabels(days, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("PR-AUC (top-decile label)")
    ax.legend(fontsize=8)
    _save(fig, path)
