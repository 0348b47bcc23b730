"""Train the spike classifier and write `models/artifacts/spikewatch-gbdt/`.

    .venv/bin/python -m models.train                      # features via `cargo run --release`
    .venv/bin/python -m models.train --spikewatch target/debug/spikewatch
    .venv/bin/python -m models.train --table features.parquet --output-dir /tmp/m
    .venv/bin/python -m models.train --label absolute     # the seed's label (τ from training)
    .venv/bin/python -m models.train --register --tracking-uri http://127.0.0.1:5000

Evaluation is by recording day, leave one day out: each day is scored by models trained on the
other days only (days are hours apart, far more than the 60 s label horizon; checked). The
final model is then trained on every day. Deterministic: same table + same code →
byte-identical artifact files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pandas as pd

from . import baselines, card, dataset, evaluate, export, plots
from .dataset import FEATURE_NAMES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "models" / "artifacts" / "spikewatch-gbdt"
DEFAULT_RECORDINGS = sorted((ROOT / "data" / "coinbase" / "ticks").glob("*.csv.gz"))
MODEL_NAME = "spikewatch-gbdt"
BASELINE_NAME = "spikewatch-zscore"
SEED = 42
TAU_PERCENTILE = 90.0
N_FIXTURES = 36
# Quantile bins of each feature over the training rows, stored for drift measurement.
REFERENCE_BINS = 10

# Fixed before looking at any held-out day; never tuned on them.
LGB_PARAMS = dict(
    objective="binary",
    n_estimators=300,
    learning_rate=0.05,
    num_leaves=15,
    min_child_samples=200,
    subsample=0.8,
    subsample_freq=1,
    colsample_bytree=0.8,
    reg_lambda=1.0,
    random_state=SEED,
    deterministic=True,
    force_row_wise=True,
    num_threads=1,
    verbose=-1,
)


# Features in the product's currency: they tell the product and the recording day apart, not the
# state of the market, and an unseen day's prices lie outside every training range. The model
# sees them as constants (never split on); its input keeps every column of the feature set.
LEVEL_FEATURES = ("price", "midprice", "spread_abs")


def features_matrix(rows: pd.DataFrame) -> np.ndarray:
    # ONNX TreeEnsemble evaluates float32: train on the same values so thresholds agree.
    matrix = rows[FEATURE_NAMES].to_numpy(dtype=np.float64).astype(np.float32)
    matrix[:, [FEATURE_NAMES.index(name) for name in LEVEL_FEATURES]] = 0.0
    return matrix


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def table_digest(df: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()).hexdigest()


def iso(ns: int) -> str:
    return pd.Timestamp(ns, unit="ns", tz="UTC").isoformat()


def fit_gbdt(rows: pd.DataFrame, y: np.ndarray):
    if len(np.unique(y)) < 2:
        raise ValueError("the training rows have a single class: cannot train a classifier")
    clf = lgb.LGBMClassifier(**LGB_PARAMS)
    clf.fit(features_matrix(rows), y)
    # Identical predictions on float32 inputs, and an ONNX export that agrees with them.
    return export.float32_thresholds(clf.booster_)


def training_label(train_rows: pd.DataFrame, y_rank: np.ndarray, mode: str) -> tuple[np.ndarray, float | None]:
    if mode == "ranking":
        return y_rank, None
    tau = dataset.spike_threshold(train_rows, TAU_PERCENTILE)
    return dataset.absolute_label(train_rows, tau), tau


def leave_one_day_out(rows: pd.DataFrame, days: pd.Series, y_rank: np.ndarray, mode: str) -> tuple[dict, dict]:
    """Out-of-fold scores of every scorer, and what each fold saw."""
    oof = {name: np.full(len(rows), np.nan) for name in ("gbdt", "har", "zscore_z", "persistence")}
    folds = {}
    for day in sorted(days.unique()):
        test = (days == day).to_numpy()
        train_rows, test_rows = rows[~test], rows[test]
        if train_rows.empty:
            raise ValueError("one recording day only: leave-one-day-out needs at least two")
        gap = dataset.check_embargo(train_rows, test_rows, dataset.HORIZON_S)
        y_train, tau = training_label(train_rows, y_rank[~test], mode)
        booster = fit_gbdt(train_rows, y_train)
        oof["gbdt"][test] = booster.predict(features_matrix(test_rows))
        oof["har"][test] = baselines.Har(train_rows, y_train).probability(test_rows)
        oof["zscore_z"][test] = baselines.ZScore(train_rows).z(test_rows)
        oof["persistence"][test] = baselines.persistence(test_rows)
        others_tau = dataset.spike_threshold(train_rows, TAU_PERCENTILE)
        folds[day] = {
            "train_rows": len(train_rows),
            "test_rows": len(test_rows),
            "nearest_training_row_seconds": None if not np.isfinite(gap) else round(gap, 1),
            "tau_of_other_days": others_tau,
            "absolute_label_positive_rate": round(float(dataset.absolute_label(test_rows, others_tau).mean()), 6),
            **({"tau": tau} if tau is not None else {}),
        }
    return oof, folds


# The alert fires on the minutes the scorer ranks in its own top decile, as often as the label.
ALERT_QUANTILE = dataset.RANK_QUANTILE


def choose(score: np.ndarray) -> dict:
    """The threshold above which a scorer's out-of-fold scores fall 10 % of the time: an alert
    as frequent as the minutes it is meant to flag. (Maximizing F1 instead picks a threshold
    that alerts on nearly every row when the ranking is weak: useless as an alert.)"""
    value = float(np.quantile(score, ALERT_QUANTILE))
    return {
        "value": value,
        "chosen_by": f"the {ALERT_QUANTILE:g} quantile of the out-of-fold scores of every held-out day pooled",
    }


def train(df: pd.DataFrame, out_dir: Path, recordings: list[Path] | None = None, mode: str = "ranking") -> dict:
    """Evaluates by day, trains the final model and writes every artifact into `out_dir`."""
    if mode not in ("ranking", "absolute"):
        raise ValueError(f"unknown label mode {mode!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = dataset.labelled_rows(df)
    days = dataset.assign_days(rows)
    day_names = sorted(days.unique())
    y_rank = dataset.rank_label(rows, days)
    oof, folds = leave_one_day_out(rows, days, y_rank, mode)

    # The label the model is judged on is the ranking label, whatever it was trained on.
    thresholds = {
        name: choose(oof[key])
        for name, key in (("gbdt", "gbdt"), ("har", "har"), ("persistence", "persistence"), ("zscore_k", "zscore_z"))
    }
    k = thresholds["zscore_k"]["value"]
    scored = {
        "gbdt": (oof["gbdt"], thresholds["gbdt"]["value"], True),
        "har": (oof["har"], thresholds["har"]["value"], True),
        "zscore": (evaluate.logistic(oof["zscore_z"] - k), 0.5, True),
        "persistence": (oof["persistence"], thresholds["persistence"]["value"], False),
    }
    per_day = {}
    y_by_day, scores_by_day = {}, {}
    for day in day_names:
        m = (days == day).to_numpy()
        y_by_day[day] = y_rank[m]
        scores_by_day[day] = {name: s[m] for name, (s, _, _) in scored.items()}
        per_day[day] = {
            name: evaluate.evaluate(y_rank[m], s[m], t, probability=p) for name, (s, t, p) in scored.items()
        }
        per_day[day]["fold"] = folds[day]
    pooled = {name: evaluate.evaluate(y_rank, s, t, probability=p) for name, (s, t, p) in scored.items()}
    summary = evaluate.summarize(per_day, day_names)

    # The final model: every day.
    y_final, tau_final = training_label(rows, y_rank, mode)
    booster = fit_gbdt(rows, y_final)
    zscore = baselines.ZScore(rows)
    har = baselines.Har(rows, y_final)

    digest = table_digest(df)
    params_text = json.dumps({**LGB_PARAMS, "ignored_features": LEVEL_FEATURES}, sort_keys=True)
    version = "2." + hashlib.sha256((digest + params_text + mode).encode()).hexdigest()[:12]
    gbdt_threshold = thresholds["gbdt"]["value"]
    label_text = (
        "the coming 60 s are in the top 10 % of the day's realized volatility for the product"
        if mode == "ranking"
        else f"future_volatility_60s >= {tau_final!r} (p{TAU_PERCENTILE:g} of the training rows)"
    )
    onnx_model = export.to_onnx(
        booster,
        {
            "model_name": MODEL_NAME,
            "model_version": version,
            "threshold": repr(gbdt_threshold),
            "feature_set": dataset.FEATURE_SET,
            "label": label_text,
        },
    )
    onnx_bytes = onnx_model.SerializeToString()
    (out_dir / "model.onnx").write_bytes(onnx_bytes)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    # The served model gets the real levels: it must ignore them.
    raw = rows[FEATURE_NAMES].to_numpy(dtype=np.float64).astype(np.float32)
    onnx_all = session.run(["probabilities"], {export.INPUT_NAME: raw})[0][:, 1]
    parity = float(np.max(np.abs(onnx_all.astype(np.float64) - booster.predict(features_matrix(rows)))))
    if parity > 1e-5:
        raise AssertionError(f"ONNX export disagrees with LightGBM by {parity}")

    baseline = {
        "name": BASELINE_NAME,
        "version": version,
        "feature": "volatility",
        "mean": zscore.mean,
        "std": zscore.std,
        "k": k,
        "score": "p = 1 / (1 + exp(-(z - k))), z = (volatility - mean) / std; alert when z >= k (p >= 0.5)",
    }
    write_json(out_dir / "baseline.json", baseline)
    write_json(out_dir / "reference.json", reference(rows, version, days))

    # Fixtures: rows spread over the whole table (labelled or not), scored by the final model.
    finite = df[np.isfinite(df[FEATURE_NAMES]).all(axis=1)].reset_index(drop=True)
    idx = np.unique(np.linspace(0, len(finite) - 1, N_FIXTURES).round().astype(int))
    fx = finite.iloc[idx]
    fx_p = booster.predict(features_matrix(fx)).astype(np.float64)
    fx_zp = zscore.probability(fx, k)
    fixtures = {
        "feature_names": FEATURE_NAMES,
        "model_version": version,
        "threshold": gbdt_threshold,
        "rows": [
            {
                "product_id": r.product_id,
                "event_time": iso(int(r.event_time)),
                "features": {name: float(getattr(r, name)) for name in FEATURE_NAMES},
                "probability": float(p),
                "baseline_probability": float(zp),
            }
            for r, p, zp in zip(fx.itertuples(index=False), fx_p, fx_zp, strict=True)
        ],
    }
    write_json(out_dir / "fixtures.json", fixtures)

    figures = {
        "pr_curves": "pr_curves.svg",
        "pr_auc_by_day": "pr_auc_by_day.svg",
        "calibration": "calibration.svg",
        "feature_importance": "feature_importance.svg",
    }
    plots.pr_curves(day_names, y_by_day, scores_by_day, out_dir / figures["pr_curves"])
    plots.pr_auc_by_day(
        day_names,
        {d: {n: per_day[d][n]["pr_auc"] for n in scored} for d in day_names},
        out_dir / figures["pr_auc_by_day"],
    )
    plots.calibration(y_rank, oof["gbdt"], out_dir / figures["calibration"])
    gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64)
    plots.feature_importance(FEATURE_NAMES, gain, out_dir / figures["feature_importance"])

    data = {
        "recordings": [{"file": p.name, "sha256": _sha256(p)} for p in (recordings or [])],
        "table_rows": len(df),
        "table_sha256": digest,
        "labelled_rows": len(rows),
        "days": {
            day: {
                "from": iso(int(rows.loc[(days == day).to_numpy(), "event_time"].min())),
                "to": iso(int(rows.loc[(days == day).to_numpy(), "event_time"].max())),
                "rows": int((days == day).sum()),
            }
            for day in day_names
        },
        "day_gap_seconds": dataset.DAY_GAP_S,
        "embargo_seconds": dataset.HORIZON_S,
    }
    result = {
        "model_name": MODEL_NAME,
        "model_version": version,
        "feature_set": dataset.FEATURE_SET,
        "label": {
            "mode": mode,
            "served": label_text,
            "ranking_definition": "y = 1 iff future_volatility_60s >= the 90th percentile of its day (per product)",
            "horizon_seconds": dataset.HORIZON_S,
            "tau_percentile_of_train": TAU_PERCENTILE,
            **({"tau": tau_final} if tau_final is not None else {}),
        },
        "evaluation": "leave one recording day out; every score of a day comes from models trained on the other days",
        "data": data,
        "thresholds": thresholds,
        "zscore": {"mean": zscore.mean, "std": zscore.std, "k": k},
        "har_final_coefficients": har.coefficients(),
        "ignored_features": list(LEVEL_FEATURES),
        "lightgbm_params": LGB_PARAMS,
        "onnx_max_abs_diff_vs_lightgbm": float(f"{parity:.3g}"),
        "figures": figures,
        "metrics": {"per_day": per_day, "pooled": pooled, "summary": summary},
    }
    write_json(out_dir / "metrics.json", result)
    (out_dir / "model_card.md").write_text(card.render(result))
    return result


# Smallest share a bin is given in a PSI (as the predictor computes it).
PSI_FLOOR = 1e-4


def psi(expected: np.ndarray, counts: np.ndarray) -> float:
    """Population stability index of `counts` against the `expected` shares, both floored."""
    a = np.maximum(counts / counts.sum(), PSI_FLOOR)
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def reference(rows: pd.DataFrame, version: str, days: pd.Series) -> dict:
    """Per feature: the training median (to fill a missing input), quantile bin edges with the
    training shares (to measure drift against) and, for the features the model uses, the
    largest PSI of any one training day against all of them (`psi_limit`): the drift the model
    was trained across. Rows further from the training rows than any training day was are what
    the drift alert reports."""
    qs = np.linspace(0, 1, REFERENCE_BINS + 1)[1:-1]
    features = {}
    for name in FEATURE_NAMES:
        x = rows[name].to_numpy(dtype=np.float64)
        edges = np.unique(np.quantile(x, qs))
        bins = np.searchsorted(edges, x, side="right")
        fractions = np.bincount(bins, minlength=len(edges) + 1) / len(x)
        features[name] = {
            "median": float(np.median(x)),
            "bin_edges": [float(e) for e in edges],
            "bin_fractions": [round(float(f), 6) for f in fractions],
        }
        if name not in LEVEL_FEATURES:
            per_day = [
                psi(fractions, np.bincount(bins[(days == day).to_numpy()], minlength=len(edges) + 1))
                for day in sorted(days.unique())
            ]
            features[name]["psi_limit"] = round(max(per_day), 6)
    return {"model_version": version, "rows": len(rows), "features": features}


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=False) + "\n")


def spikewatch_command(arg: str | None) -> list[str]:
    if arg:
        return shlex.split(arg)
    if os.environ.get("SPIKEWATCH_BIN"):
        return [os.environ["SPIKEWATCH_BIN"]]
    return ["cargo", "run", "--quiet", "--release", "-p", "spikewatch", "--"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m models.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--recordings",
        nargs="+",
        type=Path,
        default=DEFAULT_RECORDINGS,
        help="recordings (default: data/coinbase/ticks/*.csv.gz)",
    )
    ap.add_argument("--table", type=Path, help="use this feature table instead of running `spikewatch features`")
    ap.add_argument(
        "--spikewatch",
        help="command that runs the spikewatch binary (default: $SPIKEWATCH_BIN, else cargo run --release)",
    )
    ap.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT)
    ap.add_argument(
        "--label",
        choices=("ranking", "absolute"),
        default="ranking",
        help="what the served alert means (default: ranking)",
    )
    ap.add_argument("--register", action="store_true", help="log the model to MLflow and register it")
    ap.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    ap.add_argument("--alias", default="champion")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        table = args.table
        if table is None:
            table = dataset.build_table(
                args.recordings, Path(tmp) / "features.parquet", spikewatch_command(args.spikewatch)
            )
        df = dataset.load_table(table)
        result = train(df, args.output_dir, args.recordings if args.table is None else [], args.label)
    s = result["metrics"]["summary"]
    print(f"wrote {args.output_dir} (version {result['model_version']}, label {args.label})")
    for name, mean in s["mean_pr_auc"].items():
        print(f"  mean per-day PR-AUC {name:12s} {mean}")
    print(f"  gbdt / persistence = {s['gbdt_over_persistence']}; goal met: {s['goal']['met']}")
    if args.register:
        if not args.tracking_uri:
            print("--register needs --tracking-uri or MLFLOW_TRACKING_URI", file=sys.stderr)
            return 2
        from . import register

        version = register.register(args.output_dir, args.tracking_uri, MODEL_NAME, args.alias)
        print(f"registered {MODEL_NAME} version {version} as @{args.alias} at {args.tracking_uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
