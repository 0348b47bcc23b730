"""Train the spike classifier and write `models/artifacts/spikewatch-gbdt/`.

    .venv/bin/python -m models.train                      # features via `cargo run --release`
    .venv/bin/python -m models.train --spikewatch target/debug/spikewatch
    .venv/bin/python -m models.train --table features.parquet --output-dir /tmp/m
    .venv/bin/python -m models.train --register --tracking-uri http://127.0.0.1:5000

Deterministic: same table + same code → byte-identical `model.onnx`, `metrics.json`,
`fixtures.json`, `baseline.json` and `model_card.md`.
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

from . import card, dataset, evaluate, export
from .dataset import FEATURE_NAMES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "models" / "artifacts" / "spikewatch-gbdt"
DEFAULT_RECORDINGS = sorted((ROOT / "data" / "coinbase").glob("*.ndjson"))
MODEL_NAME = "spikewatch-gbdt"
BASELINE_NAME = "spikewatch-zscore"
SEED = 42
TAU_PERCENTILE = 90.0
SPLIT_FRACTIONS = (0.5, 0.25, 0.25)
EMBARGO_S = 60.0
# Fallbacks when validation has a single class and no threshold can be chosen on it.
FALLBACK_PROBABILITY_THRESHOLD = 0.5
FALLBACK_Z_K = 2.0
N_FIXTURES = 36

LGB_PARAMS = dict(
    objective="binary",
    n_estimators=200,
    learning_rate=0.05,
    num_leaves=15,
    min_child_samples=20,
    reg_lambda=1.0,
    random_state=SEED,
    deterministic=True,
    force_row_wise=True,
    num_threads=1,
    verbose=-1,
)


def features_matrix(rows: pd.DataFrame) -> np.ndarray:
    # ONNX TreeEnsemble evaluates float32: train on the same values so thresholds agree.
    return rows[FEATURE_NAMES].to_numpy(dtype=np.float64).astype(np.float32)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def table_digest(df: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()).hexdigest()


def iso(ns: int) -> str:
    return pd.Timestamp(ns, unit="ns", tz="UTC").isoformat()


def train(df: pd.DataFrame, out_dir: Path, recordings: list[Path] | None = None) -> dict:
    """Labels, splits, trains, evaluates and writes every artifact into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = dataset.labelled_rows(df)
    split = dataset.time_split(rows, SPLIT_FRACTIONS, EMBARGO_S)
    part = split.assign(rows["event_time"])
    train_rows, val_rows, test_rows = (rows[part == p] for p in ("train", "validation", "test"))
    tau = dataset.spike_threshold(train_rows, TAU_PERCENTILE)
    y_train, y_val, y_test = (dataset.label(r, tau) for r in (train_rows, val_rows, test_rows))
    if len(np.unique(y_train)) < 2:
        raise ValueError("the training rows have a single class: cannot train a classifier")

    clf = lgb.LGBMClassifier(**LGB_PARAMS)
    clf.fit(features_matrix(train_rows), y_train)
    # Identical predictions on float32 inputs, and an ONNX export that agrees with them.
    booster = export.float32_thresholds(clf.booster_)

    def predict(r: pd.DataFrame) -> np.ndarray:
        return booster.predict(features_matrix(r)).astype(np.float64)

    # The z-score rule's μ and σ come from the training rows only.
    vol_train = train_rows["volatility"].to_numpy(dtype=np.float64)
    mu, sigma = float(vol_train.mean()), float(vol_train.std())
    if not sigma > 0:
        raise ValueError("volatility is constant over the training rows: the z-score rule is undefined")

    def scores(r: pd.DataFrame) -> dict[str, np.ndarray]:
        vol = r["volatility"].to_numpy(dtype=np.float64)
        return {
            "gbdt": predict(r),
            "persistence": vol,
            "zscore_z": (vol - mu) / sigma,
        }

    s_val, s_test = scores(val_rows), scores(test_rows)

    thresholds = {}
    for name, fallback in (
        ("gbdt", FALLBACK_PROBABILITY_THRESHOLD),
        ("persistence", float(np.percentile(vol_train, TAU_PERCENTILE))),
        ("zscore_z", FALLBACK_Z_K),
    ):
        chosen, how = evaluate.choose_threshold(y_val, s_val[name])
        if chosen is None:
            thresholds[name] = {"value": float(fallback), "chosen_by": f"fallback ({how})"}
        else:
            thresholds[name] = {"value": chosen, "chosen_by": how}
    k = thresholds["zscore_z"]["value"]

    def zscore_probability(z: np.ndarray) -> np.ndarray:
        return evaluate.logistic(z - k)

    metrics = {}
    for split_name, y, s in (("validation", y_val, s_val), ("test", y_test, s_test)):
        metrics[split_name] = {
            "gbdt": evaluate.evaluate(y, s["gbdt"], thresholds["gbdt"]["value"], probability=True),
            "persistence": evaluate.evaluate(y, s["persistence"], thresholds["persistence"]["value"], probability=False),
            "zscore": evaluate.evaluate(y, zscore_probability(s["zscore_z"]), 0.5, probability=True),
        }
    metrics["train"] = {"rows": int(len(y_train)), "positives": int(y_train.sum()), "positive_rate": round(float(y_train.mean()), 6)}
    # Supplementary, ranking only (no threshold involved): validation and test pooled. Both are
    # out of sample, and together they may hold both classes when each alone holds one.
    y_pool = np.concatenate([y_val, y_test])
    metrics["pooled_validation_test_ranking"] = {
        name: {
            k: v
            for k, v in evaluate.evaluate(y_pool, np.concatenate([s_val[key], s_test[key]]), np.inf, probability=False).items()
            if k in ("rows", "positives", "positive_rate", "pr_auc", "roc_auc", "notes")
            and not (k == "notes")
        }
        for name, key in (("gbdt", "gbdt"), ("persistence", "persistence"), ("zscore", "zscore_z"))
    }

    digest = table_digest(df)
    params_text = json.dumps(LGB_PARAMS, sort_keys=True)
    version = "1." + hashlib.sha256((digest + params_text).encode()).hexdigest()[:12]
    gbdt_threshold = thresholds["gbdt"]["value"]

    onnx_model = export.to_onnx(
        booster,
        {
            "model_name": MODEL_NAME,
            "model_version": version,
            "threshold": repr(gbdt_threshold),
            "feature_set": "v1",
            "label": f"future_volatility_60s >= {tau!r} (p{TAU_PERCENTILE:g} of training rows)",
        },
    )
    onnx_bytes = onnx_model.SerializeToString()
    (out_dir / "model.onnx").write_bytes(onnx_bytes)

    baseline = {
        "name": BASELINE_NAME,
        "version": version,
        "feature": "volatility",
        "mean": mu,
        "std": sigma,
        "k": k,
        "score": "p = 1 / (1 + exp(-(z - k))), z = (volatility - mean) / std; alert when z >= k (p >= 0.5)",
    }
    write_json(out_dir / "baseline.json", baseline)

    # Fixtures: rows spread over the whole table (labelled or not), scored by the trainer.
    finite = df[np.isfinite(df[FEATURE_NAMES]).all(axis=1)].reset_index(drop=True)
    idx = np.unique(np.linspace(0, len(finite) - 1, N_FIXTURES).round().astype(int))
    fx = finite.iloc[idx]
    fx_scores = scores(fx)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    onnx_all = session.run(["probabilities"], {export.INPUT_NAME: features_matrix(rows)})[0][:, 1]
    lgb_all = predict(rows)
    parity = float(np.max(np.abs(onnx_all.astype(np.float64) - lgb_all)))
    if parity > 1e-5:
        raise AssertionError(f"ONNX export disagrees with LightGBM by {parity}")
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
            for r, p, zp in zip(fx.itertuples(index=False), fx_scores["gbdt"], zscore_probability(fx_scores["zscore_z"]))
        ],
    }
    write_json(out_dir / "fixtures.json", fixtures)

    data = {
        "recordings": [{"file": p.name, "sha256": _sha256(p)} for p in (recordings or [])],
        "table_rows": int(len(df)),
        "table_sha256": digest,
        "labelled_rows": int(len(rows)),
        "embargo_rows_dropped": int((part == "embargo").sum()),
        "split": {
            name: {"from": iso(lo), "to": iso(hi), "rows": int((part == name).sum()), "seconds": round((hi - lo) / 1e9, 3)}
            for name, (lo, hi) in (("train", split.train), ("validation", split.validation), ("test", split.test))
        },
        "split_fractions_of_active_time": list(SPLIT_FRACTIONS),
        "embargo_seconds": EMBARGO_S,
    }
    result = {
        "model_name": MODEL_NAME,
        "model_version": version,
        "label": {
            "definition": "y(t) = 1 iff realized volatility of log mid-price returns over (t, t+60s] >= tau",
            "horizon_seconds": dataset.HORIZON_S,
            "tau_percentile_of_train": TAU_PERCENTILE,
            "tau": tau,
        },
        "data": data,
        "thresholds": {
            "gbdt": thresholds["gbdt"],
            "persistence": thresholds["persistence"],
            "zscore_k": thresholds["zscore_z"],
        },
        "zscore": {"mean": mu, "std": sigma, "k": k},
        "lightgbm_params": LGB_PARAMS,
        "onnx_max_abs_diff_vs_lightgbm": float(f"{parity:.3g}"),
        "metrics": metrics,
    }
    write_json(out_dir / "metrics.json", result)
    (out_dir / "model_card.md").write_text(card.render(result))
    return result


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=False) + "\n")


def spikewatch_command(arg: str | None) -> list[str]:
    if arg:
        return shlex.split(arg)
    if os.environ.get("SPIKEWATCH_BIN"):
        return [os.environ["SPIKEWATCH_BIN"]]
    return ["cargo", "run", "--quiet", "--release", "-p", "spikewatch", "--"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recordings", nargs="+", type=Path, default=DEFAULT_RECORDINGS, help="NDJSON recordings (default: data/coinbase/*.ndjson)")
    ap.add_argument("--table", type=Path, help="use this feature table instead of running `spikewatch features`")
    ap.add_argument("--spikewatch", help="command that runs the spikewatch binary (default: $SPIKEWATCH_BIN, else cargo run --release)")
    ap.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT)
    ap.add_argument("--register", action="store_true", help="log the model to MLflow and register it")
    ap.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    ap.add_argument("--alias", default="champion")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        table = args.table
        if table is None:
            table = dataset.build_table(args.recordings, Path(tmp) / "features.parquet", spikewatch_command(args.spikewatch))
        df = dataset.load_table(table)
        result = train(df, args.output_dir, args.recordings if args.table is None else [])
    m = result["metrics"]
    print(f"wrote {args.output_dir} (version {result['model_version']}, tau={result['label']['tau']:.3g})")
    for split_name in ("validation", "test"):
        for name in ("gbdt", "persistence", "zscore"):
            r = m[split_name][name]
            print(f"  {split_name:10s} {name:11s} rows={r['rows']} pos={r['positives']} pr_auc={r['pr_auc']} roc_auc={r['roc_auc']} brier={r['brier']}")
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
