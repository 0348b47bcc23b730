"""A synthetic feature table with the column contract of `spikewatch features`.

The numbers are random (a seeded random walk with volatility regimes), not market features: the
tests check the pipeline's rules (days, labels, folds, determinism), not what the model learns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.dataset import FEATURE_NAMES, NS


def synthetic_table(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    start = 1_763_000_000 * NS
    # Three BTC-USD days and one ETH-USD day, hours apart, like the real recordings.
    days = [("BTC-USD", 0, 420), ("BTC-USD", 6 * 3600, 300), ("BTC-USD", 30 * 3600, 360), ("ETH-USD", 3600, 300)]
    for segment, (product, offset_s, seconds) in enumerate(days):
        n = seconds * 5
        t = start + offset_s * NS + np.sort(rng.integers(0, seconds * NS, n))
        regime = np.sin(np.linspace(0, 6, n)) ** 2
        vol = np.abs(rng.normal(1e-4, 5e-5, n)) * (1 + 3 * regime) * (1 + segment)
        mid = 100_000 * np.exp(np.cumsum(rng.normal(0, 1e-5, n)))
        data = {name: rng.normal(0, 1, n) for name in FEATURE_NAMES}
        data.update(price=mid, midprice=mid, volatility=vol, tick_count=rng.integers(1, 600, n).astype(float))
        for name in ("volatility_10s", "volatility_300s", "volatility_1800s"):
            data[name] = np.abs(vol * (1 + rng.normal(0, 0.2, n)))
        future = vol * (1 + rng.normal(0, 0.3, n)) + 2e-4 * np.roll(regime, -50)
        complete = t + 60 * NS < t[-1]
        frames.append(
            pd.DataFrame(
                {
                    "product_id": product,
                    "event_time": t.astype(np.int64),
                    "segment": np.int64(segment),
                    **data,
                    "future_volatility_60s": np.where(complete, np.abs(future), np.nan),
                    "future_window_complete": complete,
                    "future_tick_count": np.where(complete, 300, 0).astype(np.int64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def table_path(tmp_path):
    path = tmp_path / "features.parquet"
    synthetic_table().to_parquet(path, index=False)
    return path
