"""Scores → probabilities and the alert threshold, both chosen on out-of-fold scores of the
training dates only (never on the dates they are evaluated on).

The map is isotonic (scikit-learn's, piecewise linear between its knots), with 1 % of a logistic
fit of the same scores blended in: an isotonic map has plateaus, and a plateau would give equal
probabilities to seconds the score tells apart, losing ranking (the evaluation ranks by the
served probability) and tying a trailing quantile threshold. The blend is strictly increasing, so
the probability ranks exactly like the score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

# An alert as frequent as the seconds it is meant to flag.
ALERT_RATE = 0.10
# Share of the logistic map in the probability.
LOGISTIC_WEIGHT = 0.01


@dataclass
class Calibration:
    """`(1 − w) × isotonic(score) + w × σ(slope × score + intercept)`; the isotonic part is
    piecewise linear with `x` strictly increasing and constant beyond the ends (what the Rust
    baseline and the ONNX graph compute)."""

    x: list[float]
    y: list[float]
    slope: float
    intercept: float
    logistic_weight: float = LOGISTIC_WEIGHT

    def probability(self, score: np.ndarray) -> np.ndarray:
        s = np.asarray(score, dtype=np.float64)
        iso = np.interp(s, self.x, self.y)
        z = self.slope * s + self.intercept
        logistic = np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))
        return (1.0 - self.logistic_weight) * iso + self.logistic_weight * logistic

    def to_json(self) -> dict:
        return {
            "x": self.x,
            "y": self.y,
            "slope": self.slope,
            "intercept": self.intercept,
            "logistic_weight": self.logistic_weight,
        }


def fit(score: np.ndarray, y: np.ndarray) -> Calibration:
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(score, y)
    x = np.asarray(iso.X_thresholds_, dtype=np.float64)
    p = np.asarray(iso.y_thresholds_, dtype=np.float64)
    # Strictly increasing knots (a repeated x keeps its last value), rounded to float32 so that
    # the ONNX graph (float32) holds the same numbers.
    x32 = x.astype(np.float32).astype(np.float64)
    keep = np.append(x32[1:] > x32[:-1], True)
    logistic = LogisticRegression(C=1e6, max_iter=1000).fit(np.asarray(score).reshape(-1, 1), y)
    slope = float(np.float32(max(logistic.coef_[0][0], 1e-6)))
    intercept = float(np.float32(logistic.intercept_[0]))
    return Calibration([float(v) for v in x32[keep]], [float(v) for v in p[keep]], slope, intercept)


def alert_threshold(probability: np.ndarray, rate: float = ALERT_RATE) -> float:
    """The probability at or above which `rate` of the out-of-fold seconds alert."""
    return float(np.quantile(probability, 1.0 - rate, method="higher"))
