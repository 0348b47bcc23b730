"""Train the spike forecaster and write `models/artifacts/spikewatch-gbdt/`.

    .venv/bin/python -m models.train                      # tables via `cargo run --release`
    .venv/bin/python -m models.train --spikewatch target/release/spikewatch
    .venv/bin/python -m models.train --register --tracking-uri http://127.0.0.1:5000

The evaluation leaves out whole dates, across every product (BTC-USD, ETH-USD and SOL-USD
recorded at the same hour share their spikes): every score of a date comes from models fitted on
the other dates, and the probability map and alert threshold applied to it were chosen on
out-of-fold scores of those other dates only (nested). The final-test dates are used for nothing
but the one report at the end. Deterministic: same recordings + same code → byte-identical files.
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

import numpy as np
import onnxruntime as ort
import pandas as pd

from . import baselines, calibration, card, dataset, evaluate, export, forecaster, plots
from .dataset import FEATURE_NAMES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "models" / "artifacts" / "spikewatch-gbdt"
DEFAULT_RECORDINGS = sorted((ROOT / "data" / "coinbase" / "ticks").glob("*.csv.gz"))
MODEL_NAME = "spikewatch-gbdt"
BASELINE_NAME = "spikewatch-har"
# Kept untouched until the end: every product of these dates (both BTC-USD recordings of 11-30).
FINAL_TEST_DATES = ("2025-11-29", "2025-11-30")
N_FIXTURES = 40
# Quantile bins of each feature over the training rows, stored for drift measurement.
REFERENCE_BINS = 10
# The goal on unseen dates: mean per-day PR-AUC against the better baseline.
GOAL_RATIO = 1.25
# The per-product alert threshold online: the trailing hour's 90th percentile of the product's
# own probabilities, once five minutes of them exist (the model's threshold before).
TRAILING_ALERT = {"quantile": 0.9, "window_seconds": 3600, "min_seconds": 300}

LABEL_TEXT = "the coming 60 s realized variance of one-second mid returns is in the top 10 % of the product's day"


def fitters() -> dict:
    """Each scorer: `fit(train rows) → score(rows)`. `ml` and the served baseline's two
    candidates work on the features; `har` and `persistence` are the reported baselines, on the
    grid at the second itself (docs/features.md, "Label")."""
    return {
        "ml": lambda rows: forecaster.fit(rows).score,
        "har": lambda rows: baselines.fit_har(rows, baselines.PAST_COLUMNS).score,
        "persistence": lambda rows: baselines.persistence(baselines.PAST_COLUMNS).score,
        "baseline_har": lambda rows: baselines.fit_har(rows, baselines.FEATURE_COLUMNS).score,
        "baseline_persistence": lambda rows: baselines.persistence(baselines.FEATURE_COLUMNS).score,
    }


def out_of_fold(rows: pd.DataFrame, fit) -> np.ndarray:
    """Scores of every date by a model fitted on the other dates."""
    score = np.full(len(rows), np.nan)
    for date in sorted(rows["date"].unique()):
        test = (rows["date"] == date).to_numpy()
        if test.all():
            raise ValueError("one date only: a date-grouped evaluation needs at least two")
        dataset.check_embargo(rows[~test], rows[test])
        score[test] = fit(rows[~test])(rows[test])
    return score


def calibrated(train: pd.DataFrame, y_train: np.ndarray, fit) -> tuple:
    """A scorer fitted on `train`, with its probability map and alert threshold chosen on the
    out-of-fold scores of `train`'s own dates."""
    inner = out_of_fold(train, fit)
    cal = calibration.fit(inner, y_train)
    return fit(train), cal, calibration.alert_threshold(cal.probability(inner))


def develop(dev: pd.DataFrame, y: np.ndarray) -> dict:
    """Leave-one-date-out over the development dates, nested for the calibrated scorers."""
    fits = fitters()
    scores = {name: np.full(len(dev), np.nan) for name in fits}
    probabilities = {name: np.full(len(dev), np.nan) for name in ("ml", "baseline_har", "baseline_persistence")}
    folds = {}
    for date in sorted(dev["date"].unique()):
        test = (dev["date"] == date).to_numpy()
        train, y_train = dev[~test], y[~test]
        gap = dataset.check_embargo(train, dev[test])
        thresholds = {}
        for name, fit in fits.items():
            if name in probabilities:
                score, cal, thresholds[name] = calibrated(train, y_train, fit)
                scores[name][test] = score(dev[test])
                probabilities[name][test] = cal.probability(scores[name][test])
            else:
                scores[name][test] = fit(train)(dev[test])
        folds[date] = {
            "train_seconds": int((~test).sum()),
            "test_seconds": int(test.sum()),
            "nearest_training_second_s": gap,
            "thresholds": {k: round(v, 6) for k, v in thresholds.items()},
        }
    return {"scores": scores, "probabilities": probabilities, "folds": folds}


def trailing_alerts(rows: pd.DataFrame, y: np.ndarray, probability: np.ndarray, fixed_threshold: float) -> dict:
    """Alerts per product-day when each second's threshold is the product's trailing-hour 90th
    percentile of its own probabilities (the model's fixed threshold for the first minutes):
    alert rate, precision and recall."""
    per_day = {}
    for day, idx in sorted(rows.groupby("day").indices.items()):
        p = pd.Series(probability[idx], index=pd.to_datetime(rows["second"].to_numpy()[idx], unit="s"))
        window = f"{TRAILING_ALERT['window_seconds']}s"
        cut = p.rolling(window, closed="left").quantile(TRAILING_ALERT["quantile"])
        seen = p.rolling(window, closed="left").count()
        cut = cut.where(seen >= TRAILING_ALERT["min_seconds"], fixed_threshold)
        alert = (p >= cut).to_numpy()
        positive = y[idx] == 1
        per_day[day] = {
            "alert_rate": round(float(alert.mean()), 4),
            "precision": round(float(positive[alert].mean()), 4) if alert.any() else None,
            "recall": round(float(alert[positive].mean()), 4) if positive.any() else None,
        }
    rates = np.array([m["alert_rate"] for m in per_day.values()])
    return {
        "per_day": per_day,
        "min": float(rates.min()),
        "max": float(rates.max()),
        "mean": round(float(rates.mean()), 4),
    }


def table_digest(df: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()).hexdigest()


def train(df: pd.DataFrame, out_dir: Path, recordings: list[Path]) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    final_mask = df["date"].isin(FINAL_TEST_DATES).to_numpy()
    dev, final = df[~final_mask].reset_index(drop=True), df[final_mask].reset_index(drop=True)
    if dev.empty:
        raise ValueError("no development date: every recording is a final-test date")
    y_dev, y_final = dataset.spike_label(dev), dataset.spike_label(final) if len(final) else np.zeros(0, int)

    # 1. Development dates, leave one date out.
    d = develop(dev, y_dev)
    dev_days = evaluate.per_group(dev, y_dev, d["scores"])
    dev_means = evaluate.means(dev_days, list(d["scores"]))
    # The served baseline: HAR-RV or persistence, whichever ranked the development dates better.
    kind = max(("baseline_har", "baseline_persistence"), key=lambda n: dev_means[n]["mean"] or 0.0)

    # 2. The final models: fitted on every development date, calibrated on their out-of-fold scores.
    fits = fitters()
    model = forecaster.fit(dev)
    ml_cal = calibration.fit(d["scores"]["ml"], y_dev)
    ml_threshold = calibration.alert_threshold(ml_cal.probability(d["scores"]["ml"]))
    base = (
        baselines.fit_har(dev, baselines.FEATURE_COLUMNS)
        if kind == "baseline_har"
        else baselines.persistence(baselines.FEATURE_COLUMNS)
    )
    base_cal = calibration.fit(d["scores"][kind], y_dev)
    base_threshold = calibration.alert_threshold(base_cal.probability(d["scores"][kind]))

    # 3. The final test, once.
    final_report = None
    if len(final):
        dataset.check_embargo(dev, final)
        scores = {
            "ml": model.score(final),
            "baseline": base.score(final),
            "har": fits["har"](dev)(final),
            "persistence": fits["persistence"](dev)(final),
        }
        probs = {"ml": ml_cal.probability(scores["ml"]), "baseline": base_cal.probability(scores["baseline"])}
        thresholds = {"ml": ml_threshold, "baseline": base_threshold}
        days = evaluate.per_group(final, y_final, scores, probabilities=probs, thresholds=thresholds)
        by_date = evaluate.per_group(final, y_final, scores, by="date")
        means = evaluate.means(days, list(scores))
        better = max(("har", "persistence"), key=lambda n: means[n]["mean"] or 0.0)
        served = "ml" if (means["ml"]["mean"] or 0.0) >= (means["baseline"]["mean"] or 0.0) else "baseline"
        ratio = (means[served]["mean"] or 0.0) / means[better]["mean"] if means[better]["mean"] else None
        final_report = {
            "dates": list(FINAL_TEST_DATES),
            "per_day": days,
            "per_date": by_date,
            "means": means,
            "better_baseline": better,
            "served_variant": served,
            "served_over_better_baseline": None if ratio is None else round(ratio, 4),
            "days_ahead_of_both_baselines": {
                n: evaluate.wins(days, n, ["har", "persistence"]) for n in ("ml", "baseline")
            },
            "days": len([m for m in days.values() if m["ml"]["pr_auc"] is not None]),
            "bootstrap": {
                n: evaluate.block_bootstrap(final, y_final, scores[n], scores[better]) for n in ("ml", "baseline")
            },
            "trailing_alerts": {
                n: trailing_alerts(final, y_final, probs[n], thresholds[n]) for n in ("ml", "baseline")
            },
            "goal": {"ratio_at_least": GOAL_RATIO, "met": ratio is not None and ratio >= GOAL_RATIO},
        }

    # 4. Artifacts.
    digest = table_digest(df)
    params_text = json.dumps(forecaster.LGB_PARAMS, sort_keys=True)
    version = "3." + hashlib.sha256((digest + params_text).encode()).hexdigest()[:12]
    onnx_model = export.to_onnx(
        model,
        ml_cal,
        ml_threshold,
        {
            "model_name": MODEL_NAME,
            "model_version": version,
            "threshold": repr(ml_threshold),
            "feature_set": dataset.FEATURE_SET,
            "label": LABEL_TEXT,
        },
        baselines.FLOOR,
    )
    onnx_bytes = onnx_model.SerializeToString()
    (out_dir / "model.onnx").write_bytes(onnx_bytes)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    onnx_p = onnx_probability(session, df)
    parity = float(np.max(np.abs(onnx_p - ml_cal.probability(model.score(df)))))
    # The isotonic map is steep in places: float32 scores move a probability by up to ~0.003.
    if parity > 1e-2:
        raise AssertionError(f"the ONNX graph disagrees with the trainer's arithmetic by {parity}")

    baseline_json = {
        "name": BASELINE_NAME,
        "version": version,
        "kind": base.kind,
        "features": base.columns,
        "intercept": base.intercept,
        "coefficients": base.coefficients,
        "floor": baselines.FLOOR,
        "calibration": base_cal.to_json(),
        "threshold": base_threshold,
        "score": "intercept + Σ coefficient × ln(max(feature, floor)): the coming minute's log realized "
        "variance per second; P(spike) by the piecewise-linear calibration",
    }
    write_json(out_dir / "baseline.json", baseline_json)
    write_json(out_dir / "reference.json", reference(dev, version))
    write_json(out_dir / "fixtures.json", fixtures(df, session, base, base_cal, version, ml_threshold))

    figures = plots.write_all(out_dir, dev, y_dev, d, final, y_final, final_report, model, ml_cal)
    result = {
        "model_name": MODEL_NAME,
        "model_version": version,
        "feature_set": dataset.FEATURE_SET,
        "label": {
            "definition": LABEL_TEXT,
            "horizon_seconds": dataset.HORIZON_S,
            "rows": "one per evaluated second: the last feature vector at or before it",
        },
        "evaluation": "leave one date out (every product of that date), nested probability map and threshold",
        "data": data_summary(df, recordings, digest),
        "final_test_dates": list(FINAL_TEST_DATES),
        "development": {
            "per_day": dev_days,
            "means": dev_means,
            "folds": d["folds"],
            "served_baseline_kind": base.kind,
        },
        "final_test": final_report,
        "ml": {
            "har": {
                "columns": model.har.columns,
                "intercept": model.har.intercept,
                "coefficients": model.har.coefficients,
            },
            "tree_features": forecaster.TREE_FEATURES,
            "ignored_features": list(forecaster.LEVEL_FEATURES),
            "lightgbm_params": forecaster.LGB_PARAMS,
            "threshold": ml_threshold,
            "calibration_knots": len(ml_cal.x),
            "onnx_max_abs_diff_vs_trainer": float(f"{parity:.3g}"),
        },
        "baseline": {k: v for k, v in baseline_json.items() if k not in ("calibration", "score")},
        "trailing_alert": TRAILING_ALERT,
        "figures": figures,
    }
    write_json(out_dir / "metrics.json", result)
    (out_dir / "model_card.md").write_text(card.render(result))
    return result


def onnx_probability(session, rows: pd.DataFrame) -> np.ndarray:
    x = rows[FEATURE_NAMES].to_numpy(dtype=np.float64).astype(np.float32)
    return session.run(["probabilities"], {export.INPUT_NAME: x})[0][:, 1].astype(np.float64)


def fixtures(df, session, base, base_cal, version, threshold) -> dict:
    """Rows spread over every product-day (with and without trades), with both variants'
    probabilities: the Rust serving is checked against them."""
    idx = np.unique(np.linspace(0, len(df) - 1, N_FIXTURES).round().astype(int))
    fx = df.iloc[idx]
    p = onnx_probability(session, fx)
    bp = base_cal.probability(base.score(fx))
    return {
        "feature_names": FEATURE_NAMES,
        "model_version": version,
        "threshold": threshold,
        "rows": [
            {
                "product_id": r["product_id"],
                "second": int(r["second"]),
                "features": {n: (None if np.isnan(r[n]) else float(r[n])) for n in FEATURE_NAMES},
                "probability": float(pi),
                "baseline_probability": float(bi),
            }
            for (_, r), pi, bi in zip(fx.iterrows(), p, bp, strict=True)
        ],
    }


def data_summary(df: pd.DataFrame, recordings: list[Path], digest: str) -> dict:
    return {
        "recordings": [{"file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in recordings],
        "table_sha256": digest,
        "seconds": len(df),
        "days": {
            day: {"date": g["date"].iat[0], "seconds": len(g), "minutes": round(len(g) / 60, 1)}
            for day, g in df.groupby("day", sort=True)
        },
    }


# Smallest share a bin is given in a PSI (as the predictor computes it).
PSI_FLOOR = 1e-4


def psi(expected: np.ndarray, counts: np.ndarray) -> float:
    """Population stability index of `counts` against the `expected` shares, both floored."""
    a = np.maximum(counts / max(counts.sum(), 1), PSI_FLOOR)
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def reference(rows: pd.DataFrame, version: str) -> dict:
    """Per feature, over the development seconds where it is present: the median (to fill a
    feature a request leaves out), quantile bins with their shares (drift is measured against
    them), and for the features the trees use `psi_limit`, the largest PSI of one day against
    all of them: drift the model was trained across."""
    qs = np.linspace(0, 1, REFERENCE_BINS + 1)[1:-1]
    features = {}
    for name in FEATURE_NAMES:
        present = rows[name].notna().to_numpy()
        x = rows[name].to_numpy(dtype=np.float64)[present]
        edges = np.unique(np.quantile(x, qs))
        bins = np.searchsorted(edges, x, side="right")
        fractions = np.bincount(bins, minlength=len(edges) + 1) / len(x)
        features[name] = {
            "median": float(np.median(x)),
            "bin_edges": [float(e) for e in edges],
            "bin_fractions": [round(float(f), 6) for f in fractions],
        }
        if name in forecaster.TREE_FEATURES:
            days = rows["day"].to_numpy()[present]
            per_day = [
                psi(fractions, np.bincount(bins[days == day], minlength=len(edges) + 1)) for day in sorted(set(days))
            ]
            features[name]["psi_limit"] = round(max(per_day), 6)
    return {"model_version": version, "seconds": len(rows), "features": features}


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
    ap.add_argument("--recordings", nargs="+", type=Path, default=DEFAULT_RECORDINGS)
    ap.add_argument(
        "--table",
        type=Path,
        help="a training table already built (Parquet, with `day` and `date` columns) instead of the recordings",
    )
    ap.add_argument(
        "--spikewatch", help="command that runs the spikewatch binary (default: $SPIKEWATCH_BIN, else cargo run)"
    )
    ap.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT)
    ap.add_argument("--register", action="store_true", help="log the model to MLflow and register it")
    ap.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    ap.add_argument("--alias", default="champion")
    args = ap.parse_args(argv)

    if args.table:
        recordings = []
        df = dataset.load_combined(args.table)
    else:
        recordings = sorted(args.recordings, key=lambda p: p.name)
        with tempfile.TemporaryDirectory() as tmp:
            tables = dataset.build_tables(recordings, Path(tmp), spikewatch_command(args.spikewatch))
            df = dataset.load_tables(tables, recordings)
    result = train(df, args.output_dir, recordings)
    print(f"wrote {args.output_dir} (version {result['model_version']})")
    for name, m in result["development"]["means"].items():
        print(f"  development  mean per-day PR-AUC {name:22s} {m['mean']}")
    f = result["final_test"]
    if f:
        for name, m in f["means"].items():
            print(f"  final test   mean per-day PR-AUC {name:22s} {m['mean']}")
        print(f"  served: {f['served_variant']}, {f['served_over_better_baseline']}× {f['better_baseline']}")
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
