"""The baselines every model is reported next to, on the same rows:

- **persistence**: the current 60 s volatility as the score (the next minute is like the last);
- **z-score**: the seed's rule, `z = (volatility − μ) / σ` with μ, σ of the training rows,
  `p = logistic(z − k)`; within a day it ranks exactly like persistence;
- **HAR**: a logistic regression on the logarithms of the realized volatility at 10 s, 1 min,
  5 min and 30 min (the heterogeneous autoregressive model of realized volatility, Corsi 2009,
  as a classifier).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from .evaluate import logistic

HAR_FEATURES = ["volatility_10s", "volatility", "volatility_300s", "volatility_1800s"]


def persistence(rows: pd.DataFrame) -> np.ndarray:
    return rows["volatility"].to_numpy(dtype=np.float64)


class ZScore:
    def __init__(self, train_rows: pd.DataFrame):
        vol = persistence(train_rows)
        self.mean, self.std = float(vol.mean()), float(vol.std())
        if not self.std > 0:
            raise ValueError("volatility is constant over the training rows: the z-score rule is undefined")

    def z(self, rows: pd.DataFrame) -> np.ndarray:
        return (persistence(rows) - self.mean) / self.std

    def probability(self, rows: pd.DataFrame, k: float) -> np.ndarray:
        return logistic(self.z(rows) - k)


class Har:
    def __init__(self, train_rows: pd.DataFrame, y: np.ndarray):
        # Volatility is exactly 0 in a flat window. Its logarithm is floored at each feature's
        # smallest positive training value: far below, a handful of flat windows would pull the
        # whole regression.
        x = train_rows[HAR_FEATURES].to_numpy(dtype=np.float64)
        self.floor = np.array([x[:, j][x[:, j] > 0].min() if (x[:, j] > 0).any() else 1e-12 for j in range(x.shape[1])])
        self.model = LogisticRegression(max_iter=1000).fit(self.matrix(train_rows), y)

    def matrix(self, rows: pd.DataFrame) -> np.ndarray:
        return np.log(np.maximum(rows[HAR_FEATURES].to_numpy(dtype=np.float64), self.floor))

    def probability(self, rows: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(self.matrix(rows))[:, 1]

    def coefficients(self) -> dict:
        return {
            "intercept": float(self.model.intercept_[0]),
            **{f"log_{n}": float(c) for n, c in zip(HAR_FEATURES, self.model.coef_[0], strict=True)},
        }
