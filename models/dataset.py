"""The training table, the days, the labels (docs/architecture.md would say "Label").

The table comes from `spikewatch features` (the one feature implementation, in Rust); this
module never computes a feature. It only groups the labelled rows into recording days and
derives the labels from `future_volatility_60s`:

- **ranking label** (what is served, and what every model is judged on): y = 1 iff the
  coming minute's realized volatility is in the top 10 % of that day's, for that product;
- **absolute label** (the seed's, selectable): y = 1 iff it is at or above τ, a percentile of
  the training rows' future volatility.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

FEATURE_NAMES = [
    "price",
    "midprice",
    "return_1s",
    "return_5s",
    "return_30s",
    "return_60s",
    "volatility",
    "volatility_10s",
    "trade_intensity",
    "spread_abs",
    "spread_rel",
    "order_book_imbalance",
    "tick_count",
    "time_since_prev_tick",
    "volatility_300s",
    "volatility_1800s",
    "volatility_ratio_60s_300s",
    "volatility_ratio_300s_1800s",
    "tick_rate_ratio_10s_300s",
    "spread_rel_ratio_300s",
    "time_of_day_sin",
    "time_of_day_cos",
]
FEATURE_SET = "v2"
TABLE_COLUMNS = [
    "product_id",
    "event_time",
    "segment",
    *FEATURE_NAMES,
    "future_volatility_60s",
    "future_window_complete",
    "future_tick_count",
]
HORIZON_S = 60.0
NS = 1_000_000_000
# A silence longer than this between two rows of a product starts a new recording day.
DAY_GAP_S = 3600.0
# The ranking label: the top (1 - RANK_QUANTILE) of each day's future volatility.
RANK_QUANTILE = 0.9


def build_table(recordings: list[Path], output: Path, spikewatch: list[str]) -> Path:
    """Runs `spikewatch features` over the recordings into `output` (Parquet)."""
    cmd = [*spikewatch, "features"]
    for path in recordings:
        cmd += ["--input", str(path)]
    cmd += ["--output", str(output)]
    subprocess.run(cmd, check=True)
    return output


def load_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        df = pd.read_csv(path)
    else:
        df = pd.read_parquet(path)
    try:
        return load_table_frame(df)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def load_table_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The table's columns, typed and sorted by product and time."""
    missing = [c for c in TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"missing columns {missing} (expected {TABLE_COLUMNS})")
    df = df[TABLE_COLUMNS].copy()
    df["event_time"] = df["event_time"].astype("int64")
    df["future_window_complete"] = df["future_window_complete"].astype(bool)
    return df.sort_values(["product_id", "event_time"], kind="stable").reset_index(drop=True)


def labelled_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Only rows whose future window (t, t+60 s] is complete can be labelled."""
    rows = df[df["future_window_complete"] & df["future_volatility_60s"].notna()]
    rows = rows[np.isfinite(rows[FEATURE_NAMES]).all(axis=1)]
    return rows.reset_index(drop=True)


def assign_days(rows: pd.DataFrame, gap_s: float = DAY_GAP_S) -> pd.Series:
    """A day name per row: `<product> <UTC start of the day's recording, minute precision>`.

    A recording day is a product's run of rows without a silence longer than `gap_s`; rows must
    be sorted by product and time (as `load_table` returns them). Days of one product are hours
    apart, so no label window (60 s) of one day reaches into another: the embargo between a
    held-out day and the training days is at least `gap_s`.
    """
    t = rows["event_time"].to_numpy(dtype=np.int64)
    product = rows["product_id"].to_numpy()
    new_day = np.ones(len(rows), dtype=bool)
    if len(rows) > 1:
        new_day[1:] = (product[1:] != product[:-1]) | (np.diff(t) > gap_s * NS)
    day_index = np.cumsum(new_day) - 1
    starts = t[new_day]
    names = [
        f"{p} {pd.Timestamp(s, unit='ns', tz='UTC').strftime('%Y-%m-%d %H:%M')}"
        for p, s in zip(product[new_day], starts, strict=True)
    ]
    return pd.Series(np.array(names, dtype=object)[day_index], index=rows.index, name="day")


def rank_label(rows: pd.DataFrame, days: pd.Series, quantile: float = RANK_QUANTILE) -> np.ndarray:
    """y = 1 iff the row's future volatility is at or above its day's `quantile`."""
    future = rows["future_volatility_60s"].astype(np.float64)
    cut = future.groupby(days).transform(lambda s: s.quantile(quantile))
    return (future >= cut).to_numpy().astype(np.int64)


def absolute_label(rows: pd.DataFrame, tau: float) -> np.ndarray:
    """y(t) = 1 iff the realized volatility over (t, t+60 s] is at or above τ."""
    return (rows["future_volatility_60s"].to_numpy(dtype=np.float64) >= tau).astype(np.int64)


def spike_threshold(train_rows: pd.DataFrame, percentile: float = 90.0) -> float:
    """τ: a percentile of the future realized volatility over the TRAINING rows only."""
    return float(np.percentile(train_rows["future_volatility_60s"].to_numpy(dtype=np.float64), percentile))


def check_embargo(train_rows: pd.DataFrame, test_rows: pd.DataFrame, embargo_s: float = HORIZON_S) -> float:
    """Smallest distance (s) between a training row and a test row of the same product.

    Raises when it is below `embargo_s`: a training label window (t, t + 60 s] would then see
    the test rows' prices.
    """
    smallest = np.inf
    for product, test in test_rows.groupby("product_id"):
        train_t = np.sort(train_rows.loc[train_rows["product_id"] == product, "event_time"].to_numpy(dtype=np.int64))
        if len(train_t) == 0:
            continue
        test_t = test["event_time"].to_numpy(dtype=np.int64)
        pos = np.searchsorted(train_t, test_t)
        before = np.where(pos > 0, test_t - train_t[np.clip(pos - 1, 0, None)], np.iinfo(np.int64).max)
        after = np.where(
            pos < len(train_t), train_t[np.clip(pos, None, len(train_t) - 1)] - test_t, np.iinfo(np.int64).max
        )
        smallest = min(smallest, float(min(before.min(), after.min())) / NS)
    if smallest < embargo_s:
        raise AssertionError(f"a training row is {smallest:.3f} s from a test row: less than the {embargo_s} s embargo")
    return smallest
