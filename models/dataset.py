"""The training table, the product-days, the label (docs/features.md, "Label").

The table comes from `spikewatch features` (the one feature implementation, in Rust): one row per
evaluated second of each recording, the last feature vector at or before that second, with the
label's realized variance of the coming minute (`rv_future_60s`) and the baselines' past windows
(`rv_past_*`) computed on the one-second grid. This module computes no feature and no label
quantity; it only names the product-days and marks each one's top decile:

    y(s) = 1 iff rv_future_60s(s) is in the top 10 % of its product-day's evaluated seconds.

The feature set (names, which may be missing) is read from `models/feature_set.json`, which
`spikewatch features --describe json` writes and a Rust test checks.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FEATURE_SET_FILE = ROOT / "models" / "feature_set.json"
_FEATURE_SET = json.loads(FEATURE_SET_FILE.read_text())
FEATURE_SET: str = _FEATURE_SET["feature_set"]
FEATURES: list[dict] = _FEATURE_SET["features"]
FEATURE_NAMES: list[str] = [f["name"] for f in FEATURES]
# Features a source may not have (trades, book sizes): missing (NaN), never imputed.
MAY_BE_MISSING: list[str] = [f["name"] for f in FEATURES if f["impute"] == "missing"]

LABEL_COLUMNS = ["rv_future_60s", "rv_past_60s", "rv_past_300s", "rv_past_900s"]
TABLE_COLUMNS = ["product_id", "second", "event_time", "segment", *FEATURE_NAMES, *LABEL_COLUMNS]
HORIZON_S = 60
NS = 1_000_000_000
# The label: the top (1 - SPIKE_QUANTILE) of each product-day's coming-minute realized variance.
SPIKE_QUANTILE = 0.9

# `btc-usd-2025-11-30b.csv.gz` → ("BTC-USD", "2025-11-30", "b")
_NAME = re.compile(r"^(?P<product>[a-z0-9]+-[a-z0-9]+)-(?P<date>\d{4}-\d{2}-\d{2})(?P<part>[a-z]?)\.")


def recording_day(path: Path) -> tuple[str, str]:
    """(product-day name, date) of a recording file named `<product>-<yyyy-mm-dd>[x].csv[.gz]`."""
    m = _NAME.match(path.name)
    if not m:
        raise ValueError(f"{path.name}: expected <product>-<yyyy-mm-dd>[letter].csv[.gz]")
    product = m["product"].upper()
    return f"{product} {m['date']}{m['part']}", m["date"]


def build_tables(recordings: list[Path], out_dir: Path, spikewatch: list[str]) -> list[Path]:
    """Runs `spikewatch features` over each recording on its own (a product-day's windows start
    with its recording, as they would for a recording the model has never seen)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = []
    for path in recordings:
        output = out_dir / (path.name.split(".")[0] + ".parquet")
        subprocess.run([*spikewatch, "features", "--input", str(path), "--output", str(output)], check=True)
        tables.append(output)
    return tables


def load_tables(tables: list[Path], recordings: list[Path]) -> pd.DataFrame:
    """The per-recording tables, each tagged with its product-day and date."""
    frames = []
    for table, recording in zip(tables, recordings, strict=True):
        df = load_table_frame(pd.read_parquet(table) if table.suffix == ".parquet" else pd.read_csv(table))
        day, date = recording_day(recording)
        frames.append(df.assign(day=day, date=date))
    return pd.concat(frames, ignore_index=True)


def load_combined(path: Path) -> pd.DataFrame:
    """A table of several recordings saved with its `day` and `date` columns."""
    df = pd.read_parquet(path)
    if "day" not in df.columns or "date" not in df.columns:
        raise ValueError(f"{path}: a combined table needs `day` and `date` columns")
    return load_table_frame(df)


def load_table_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The table's columns, typed; refuses a table of another feature set."""
    missing = [c for c in TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"missing columns {missing}: not a training table of feature set {FEATURE_SET}")
    df = df[TABLE_COLUMNS + [c for c in ("day", "date") if c in df.columns]].copy()
    for column in ("second", "event_time", "segment"):
        df[column] = df[column].astype("int64")
    for column in FEATURE_NAMES + LABEL_COLUMNS:
        df[column] = df[column].astype("float64")
    unexpected = [c for c in FEATURE_NAMES if c not in MAY_BE_MISSING and df[c].isna().any()]
    if unexpected:
        raise ValueError(f"features that cannot be missing are missing: {unexpected}")
    order = ["day", "second"] if "day" in df.columns else ["product_id", "second"]
    return df.sort_values(order, kind="stable").reset_index(drop=True)


def spike_label(rows: pd.DataFrame, quantile: float = SPIKE_QUANTILE) -> np.ndarray:
    """y = 1 iff the coming minute's realized variance is at or above its product-day's
    `quantile` (so about a tenth of each product-day's seconds are positive)."""
    future = rows["rv_future_60s"].astype(np.float64)
    cut = future.groupby(rows["day"]).transform(lambda s: s.quantile(quantile))
    return (future >= cut).to_numpy().astype(np.int64)


def nearest_seconds_apart(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """Smallest distance (s) between a training second and a test second, over every product
    (products recorded at the same time share their spikes, so the embargo is across products)."""
    a = np.sort(train["second"].to_numpy(dtype=np.int64))
    b = test["second"].to_numpy(dtype=np.int64)
    if len(a) == 0 or len(b) == 0:
        return float("inf")
    pos = np.searchsorted(a, b)
    before = np.where(pos > 0, b - a[np.clip(pos - 1, 0, None)], np.iinfo(np.int64).max)
    after = np.where(pos < len(a), a[np.clip(pos, None, len(a) - 1)] - b, np.iinfo(np.int64).max)
    return float(min(before.min(), after.min()))


def check_embargo(train: pd.DataFrame, test: pd.DataFrame, embargo_s: int = HORIZON_S) -> float:
    """Raises when a training second is closer than the label's horizon to a test second: its
    label window would overlap the test's."""
    gap = nearest_seconds_apart(train, test)
    if gap < embargo_s:
        raise AssertionError(f"a training second is {gap:.0f} s from a test second: within the {embargo_s} s embargo")
    return gap
