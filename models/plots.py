"""The model card's pictures, written as SVG by the training run (deterministic bytes: fixed
hash salt, no date): PR-AUC by day against the baselines (development and final test), PR curves
of the final-test days, calibration of the out-of-fold probabilities, feature importance."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve

plt.rcParams["svg.hashsalt"] = "spikewatch"
plt.rcParams["svg.fonttype"] = "none"
COLORS = {"ml": "#1f77b4", "baseline": "#2ca02c", "har": "#ff7f0e", "persistence": "#7f7f7f"}

FIGURES = {
    "pr_auc_development": "pr_auc_development.svg",
    "pr_auc_final_test": "pr_auc_final_test.svg",
    "pr_curves_final_test": "pr_curves_final_test.svg",
    "calibration": "calibration.svg",
    "feature_importance": "feature_importance.svg",
}


def _save(fig, path: Path) -> None:
    fig.savefig(path, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    plt.close(fig)


def write_all(out_dir, dev, y_dev, developed, final, y_final, final_report, model, ml_cal) -> dict:
    scores = developed["scores"]
    pr_auc_by_day(
        {day: {n: m[n]["pr_auc"] for n in ("ml", "har", "persistence")} for day, m in _days(dev, y_dev, scores)},
        "Development dates, each scored by models fitted on the other dates",
        out_dir / FIGURES["pr_auc_development"],
    )
    written = {k: v for k, v in FIGURES.items() if k in ("pr_auc_development", "calibration", "feature_importance")}
    if final_report:
        pr_auc_by_day(
            {
                d: {n: m[n]["pr_auc"] for n in ("ml", "baseline", "har", "persistence")}
                for d, m in final_report["per_day"].items()
            },
            "Final-test dates (used once)",
            out_dir / FIGURES["pr_auc_final_test"],
        )
        finals = {
            day: {
                "y": y_final[idx],
                "ml": model.score(final.iloc[idx]),
                "persistence": final["rv_past_60s"].to_numpy()[idx],
            }
            for day, idx in sorted(final.groupby("day").indices.items())
        }
        pr_curves(finals, out_dir / FIGURES["pr_curves_final_test"])
        written.update({k: FIGURES[k] for k in ("pr_auc_final_test", "pr_curves_final_test")})
    calibration(y_dev, developed["probabilities"]["ml"], out_dir / FIGURES["calibration"])
    from .forecaster import TREE_FEATURES

    gain = np.asarray(model.booster.feature_importance(importance_type="gain"), dtype=np.float64)
    feature_importance(TREE_FEATURES, gain, out_dir / FIGURES["feature_importance"])
    return dict(sorted(written.items()))


def _days(rows, y, scores):
    from .evaluate import per_group

    return per_group(rows, y, scores).items()


def pr_auc_by_day(table: dict, title: str, path: Path) -> None:
    days = list(table)
    names = [n for n in COLORS if all(n in table[d] for d in days)]
    x = np.arange(len(days))
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(0.9 * len(days) + 2, 4))
    for i, name in enumerate(names):
        ax.bar(x + i * width, [table[d][name] or 0.0 for d in days], width, label=name, color=COLORS[name])
    ax.axhline(0.1, color="black", linestyle=":", linewidth=0.8, label="random (0.10)")
    ax.set_xticks(x + width * (len(names) - 1) / 2)
    ax.set_xticklabels(days, rotation=40, ha="right", fontsize=7)
    ax.set_ylabel("PR-AUC (top-decile label)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    _save(fig, path)


def pr_curves(days: dict, path: Path) -> None:
    """One panel per day: precision–recall of the model and persistence."""
    cols = 3
    rows = (len(days) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, (day, d) in zip(axes.flat, days.items(), strict=False):
        for name in ("ml", "persistence"):
            if len(np.unique(d["y"])) < 2:
                continue
            precision, recall, _ = precision_recall_curve(d["y"], d[name])
            ax.plot(recall, precision, color=COLORS[name], label=name, linewidth=1)
        ax.axhline(d["y"].mean() if len(d["y"]) else 0.1, color="black", linestyle=":", linewidth=0.8)
        ax.set_title(day, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("recall", fontsize=8)
        ax.set_ylabel("precision", fontsize=8)
    for ax in list(axes.flat)[len(days) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Final-test days: the coming minute in the product-day's top 10 %")
    _save(fig, path)


def calibration(y: np.ndarray, p: np.ndarray, path: Path, bins: int = 10) -> None:
    """Reliability of the out-of-fold probabilities (equal-count bins)."""
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, bins)
    mean_p = [float(p[g].mean()) for g in groups if len(g)]
    rate = [float(y[g].mean()) for g in groups if len(g)]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="black", linestyle=":", linewidth=0.8, label="perfect")
    ax.plot(mean_p, rate, marker="o", color=COLORS["ml"], label="ml (out of fold, nested)")
    ax.set_xlabel("predicted probability (bin mean)")
    ax.set_ylabel("observed rate of top-decile minutes")
    ax.set_xlim(0, max(0.5, max(mean_p) * 1.1))
    ax.set_ylim(0, max(0.5, max(rate) * 1.1))
    ax.legend(fontsize=8)
    _save(fig, path)


def feature_importance(names: list[str], gain: np.ndarray, path: Path) -> None:
    order = np.argsort(gain, kind="stable")
    fig, ax = plt.subplots(figsize=(6, 0.24 * len(names) + 1))
    ax.barh([names[i] for i in order], gain[order] / max(gain.sum(), 1e-300), color=COLORS["ml"])
    ax.set_xlabel("share of the trees' split gain (final model; HAR-RV carries the rest)")
    _save(fig, path)
