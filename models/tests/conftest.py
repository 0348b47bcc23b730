"""A synthetic training table with the column contract of `spikewatch features`.

The numbers are random (seeded volatility regimes), not market features: the tests check the
pipeline's rules (product-days, labels, date folds, nesting, determinism), not what the model
learns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.dataset import FEATURE_NAMES, MAY_BE_MISSING, NS

# Three development dates and one final-test date; two products recorded at the same hours, and
# a recording without trades (its trade features missing).
DAYS = [
    ("BTC-USD", "2025-11-24", 0),
    ("ETH-USD", "2025-11-24", 0),
    ("BTC-USD", "2025-11-25", 1),
    ("ETH-USD", "2025-11-25", 1),
    ("BTC-USD", "2025-11-26", 2),
    ("SOL-USD", "2025-11-26", 2),
    ("BTC-USD", "2025-11-29", 5),
    ("ETH-USD", "2025-11-29", 5),
]
SECONDS = 1500
START = 1_763_942_400  # 2025-11-24 00:00 UTC


def synthetic_table(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for k, (product, date, offset_days) in enumerate(DAYS):
        second = START + offset_days * 86_400 + 3600 + np.arange(SECONDS)
        regime = np.sin(np.linspace(0, 9, SECONDS) + k) ** 2
        level = 1e-9 * (1 + 4 * regime) * (1 + k % 3)
        data = {name: rng.normal(0, 1, SECONDS) for name in FEATURE_NAMES}
        data.update(price=60_000.0 + k, midprice=60_000.0 + k, spread_abs=0.01)
        for name in ("rv_10s", "rv_30s", "rv_60s", "rv_300s", "rv_900s", "bv_60s", "rv_level_3600s"):
            data[name] = level * np.exp(rng.normal(0, 0.5, SECONDS))
        data["rv_60s"][rng.random(SECONDS) < 0.01] = 0.0  # a flat minute now and then
        if product == "SOL-USD":
            for name in MAY_BE_MISSING:
                data[name] = np.full(SECONDS, np.nan)
        future = 60 * level * np.exp(rng.normal(0, 0.7, SECONDS)) * (1 + np.roll(regime, -30))
        frames.append(
            pd.DataFrame(
                {
                    "product_id": product,
                    "second": second.astype(np.int64),
                    "event_time": (second * NS - 1000).astype(np.int64),
                    "segment": np.int64(0),
                    **data,
                    "rv_future_60s": future,
                    "rv_past_60s": data["rv_60s"],
                    "rv_past_300s": data["rv_300s"],
                    "rv_past_900s": data["rv_900s"],
                    "day": f"{product} {date}",
                    "date": date,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def table_path(tmp_path):
    path = tmp_path / "table.parquet"
    synthetic_table().to_parquet(path, index=False)
    return path
