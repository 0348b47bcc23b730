"""The baselines every model is reported next to, on the same seconds (docs/features.md, "Label"):

- **persistence**: the past minute's realized variance, `RV(s − 60, s]` (the next minute is like
  the last);
- **HAR-RV** (Corsi 2009): a linear regression of the coming minute's log realized variance on
  the logs of the past 60, 300 and 900 s mean squared one-second returns, fitted on the training
  days.

Both are log-linear forecasts of one form, `intercept + Σ coefficient × ln(max(x, FLOOR))`, which
is also the form of the served `baseline` variant (`baseline.json`, computed in Rust from the
features `rv_60s`, `rv_300s`, `rv_900s`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Variance per second below which a window counts as flat (one tick of BTC-USD moves the mid by
# ~5e-8, i.e. 3e-15 squared: quieter than any minute of the recordings but a dead one).
FLOOR = 1e-12
HORIZON_S = 60
# The baselines as the evaluation computes them: on the grid at the second itself.
PAST_COLUMNS = ["rv_past_60s", "rv_past_300s", "rv_past_900s"]
# The same windows as features (what the served baseline sees: the last vector at or before).
FEATURE_COLUMNS = ["rv_60s", "rv_300s", "rv_900s"]


def log_floor(x) -> np.ndarray:
    return np.log(np.maximum(np.asarray(x, dtype=np.float64), FLOOR))


def target(rows: pd.DataFrame) -> np.ndarray:
    """The coming minute's log realized variance per second."""
    return log_floor(rows["rv_future_60s"].to_numpy(dtype=np.float64) / HORIZON_S)


@dataclass
class LogLinear:
    """`intercept + Σ coefficient × ln(max(column, FLOOR))`."""

    kind: str
    columns: list[str]
    intercept: float
    coefficients: list[float]

    def score(self, rows: pd.DataFrame) -> np.ndarray:
        x = np.column_stack([log_floor(rows[c]) for c in self.columns])
        return self.intercept + x @ np.asarray(self.coefficients)

    def on(self, columns: list[str]) -> LogLinear:
        """The same coefficients on other columns (the grid's past windows ↔ the features)."""
        return LogLinear(self.kind, list(columns), self.intercept, list(self.coefficients))


def persistence(columns: list[str] = PAST_COLUMNS) -> LogLinear:
    return LogLinear("persistence", [columns[0]], 0.0, [1.0])


def fit_har(rows: pd.DataFrame, columns: list[str] = PAST_COLUMNS) -> LogLinear:
    """Ordinary least squares of the log target on the log windows."""
    x = np.column_stack([np.ones(len(rows))] + [log_floor(rows[c]) for c in columns])
    beta, *_ = np.linalg.lstsq(x, target(rows), rcond=None)
    return LogLinear("har_rv", list(columns), float(beta[0]), [float(b) for b in beta[1:]])
