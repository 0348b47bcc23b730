"""The training table, the label and the time splits (DESIGN.md, "Label").

The table comes from `spikewatch features` (the one feature implementation, in Rust); this
module never computes a feature. It only derives the label from `future_volatility_60s` and
cuts the labelled rows into train / validation / test by event time with an embargo.
"""

from __future__ import annotations

import dataclasses
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
]
TABLE_COLUMNS = (
    ["product_id", "event_time", "segment"]
    + FEATURE_NAMES
    + ["future_volatility_60s", "future_window_complete", "future_tick_count"]
)
HORIZON_S = 60.0
NS = 1_000_000_000


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
    missing = [c for c in TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (expected {TABLE_COLUMNS})")
    df = df[TABLE_COLUMNS].copy()
    df["event_time"] = df["event_time"].astype("int64")
    df["future_window_complete"] = df["future_window_complete"].astype(bool)
    return df.sort_values(["event_time", "product_id"], kind="stable").reset_index(drop=True)


def labelled_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Only rows whose future window (t, t+60 s] is complete can be labelled."""
    rows = df[df["future_window_complete"] & df["future_volatility_60s"].notna()]
    rows = rows[np.isfinite(rows[FEATURE_NAMES]).all(axis=1)]
    return rows.reset_index(drop=True)


@dataclasses.dataclass(frozen=True)
class Split:
    """Event-time bounds (ns, inclusive) of each part, and the embargo between them."""

    train: tuple[int, int]
    validation: tuple[int, int]
    test: tuple[int, int]
    embargo_s: float

    def assign(self, event_time: pd.Series) -> pd.Series:
        part = pd.Series("embargo", index=event_time.index, dtype=object)
        for name, (lo, hi) in (("train", self.train), ("validation", self.validation), ("test", self.test)):
            part[(event_time >= lo) & (event_time <= hi)] = name
        return part


def active_clock(event_time: pd.Series, segment_gap_s: float) -> np.ndarray:
    """Seconds of *recorded* time before each row: gaps between recording chunks count zero.

    The recordings are a few minutes of data spread over days; cutting by wall-clock fractions
    would put every split boundary inside a gap. Cutting by active time gives each split a
    share of the data that exists.
    """
    t = event_time.to_numpy(dtype=np.int64)
    dt = np.diff(t, prepend=t[0]) / NS
    dt[dt > segment_gap_s] = 0.0
    return np.cumsum(dt)


def time_split(
    rows: pd.DataFrame,
    fractions: tuple[float, float, float] = (0.5, 0.25, 0.25),
    embargo_s: float = HORIZON_S,
    segment_gap_s: float = 30.0,
) -> Split:
    """Train / validation / test by event time, separated by `embargo_s` of discarded rows.

    The embargo is at least the label horizon: the last training row's label window
    (t, t+60 s] ends before the first validation row, and likewise validation → test.
    """
    if embargo_s < HORIZON_S:
        raise ValueError(f"embargo {embargo_s}s is shorter than the {HORIZON_S}s horizon")
    if len(rows) < 3:
        raise ValueError(f"only {len(rows)} labelled rows: cannot split")
    t = rows["event_time"].reset_index(drop=True)
    clock = active_clock(t, segment_gap_s)
    total = clock[-1]
    usable = total - 2 * embargo_s
    if usable <= 0:
        raise ValueError(f"{total:.1f}s of labelled data is shorter than two embargoes of {embargo_s}s")
    f_train, f_val, _ = fractions
    cuts = [
        f_train * usable,
        f_train * usable + embargo_s,
        (f_train + f_val) * usable + embargo_s,
        (f_train + f_val) * usable + 2 * embargo_s,
    ]
    train = t[clock <= cuts[0]]
    val = t[(clock >= cuts[1]) & (clock <= cuts[2])]
    test = t[clock >= cuts[3]]
    # Active time never exceeds event time, so the real gaps are at least the embargo; check anyway.
    for before, after, name in ((train, val, "train→validation"), (val, test, "validation→test")):
        if before.empty or after.empty:
            raise ValueError(f"empty split around {name}")
        gap = (after.min() - before.max()) / NS
        if gap < embargo_s:
            raise AssertionError(f"{name} gap {gap:.3f}s < embargo {embargo_s}s")
    return Split(
        train=(int(train.min()), int(train.max())),
        validation=(int(val.min()), int(val.max())),
        test=(int(test.min()), int(test.max())),
        embargo_s=embargo_s,
    )


def spike_threshold(train_rows: pd.DataFrame, percentile: float = 90.0) -> float:
    """τ: a percentile of the future realized volatility over the TRAINING rows only."""
    return float(np.percentile(train_rows["future_volatility_60s"].to_numpy(dtype=np.float64), percentile))


def label(rows: pd.DataFrame, tau: float) -> np.ndarray:
    """y(t) = 1 iff the realized volatility over (t, t+60 s] is at or above τ."""
    return (rows["future_volatility_60s"].to_numpy(dtype=np.float64) >= tau).astype(np.int64)
