"""The training pipeline's rules: labels, embargoed time splits, τ from train only, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from models import dataset, train
from models.dataset import NS
from models.tests.conftest import synthetic_table


def test_retraining_reproduces_every_artifact(table_path, tmp_path):
    df = dataset.load_table(table_path)
    a, b = tmp_path / "a", tmp_path / "b"
    train.train(df, a)
    # The second run is a separate process (the command line), so per-process state such as
    # string hash seeds cannot make the two runs agree by accident.
    subprocess.run(
        [sys.executable, "-m", "models.train", "--table", str(table_path), "--output-dir", str(b)],
        cwd=train.ROOT,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "random"},
    )
    for name in ("metrics.json", "fixtures.json", "baseline.json", "model_card.md", "model.onnx"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    fixtures = json.loads((a / "fixtures.json").read_text())
    assert 20 <= len(fixtures["rows"]) <= 50
    assert all(0.0 <= r["probability"] <= 1.0 for r in fixtures["rows"])


def test_onnx_probabilities_match_the_trainer(table_path, tmp_path):
    import onnxruntime as ort

    train.train(dataset.load_table(table_path), tmp_path)
    fixtures = json.loads((tmp_path / "fixtures.json").read_text())
    x = np.array([[r["features"][n] for n in dataset.FEATURE_NAMES] for r in fixtures["rows"]], dtype=np.float32)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    p = session.run(["probabilities"], {"features": x})[0][:, 1]
    np.testing.assert_allclose(p, [r["probability"] for r in fixtures["rows"]], atol=1e-5)
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["feature_names"]) == dataset.FEATURE_NAMES
    assert float(meta["threshold"]) == fixtures["threshold"]


def test_only_complete_future_windows_are_labelled():
    df = synthetic_table()
    rows = dataset.labelled_rows(df)
    assert rows["future_window_complete"].all()
    assert rows["future_volatility_60s"].notna().all()
    assert len(rows) == int(df["future_window_complete"].sum())


def test_splits_are_ordered_disjoint_and_embargoed():
    rows = dataset.labelled_rows(synthetic_table())
    split = dataset.time_split(rows, (0.5, 0.25, 0.25), embargo_s=60.0)
    part = split.assign(rows["event_time"])
    t = {p: rows.loc[part == p, "event_time"] for p in ("train", "validation", "test")}
    assert all(len(v) > 0 for v in t.values())
    # No row in two parts; every row is in exactly one part or the embargo.
    assert set(part.unique()) <= {"train", "validation", "test", "embargo"}
    assert (t["validation"].min() - t["train"].max()) / NS >= 60.0
    assert (t["test"].min() - t["validation"].max()) / NS >= 60.0
    # No training label window (t, t+60 s] reaches the first validation row.
    assert t["train"].max() + 60 * NS <= t["validation"].min()
    assert (part == "embargo").sum() > 0


def test_embargo_shorter_than_the_horizon_is_refused():
    rows = dataset.labelled_rows(synthetic_table())
    with pytest.raises(ValueError, match="horizon"):
        dataset.time_split(rows, embargo_s=30.0)


def test_tau_comes_from_training_rows_only(tmp_path):
    df = synthetic_table()
    rows = dataset.labelled_rows(df)
    split = dataset.time_split(rows)
    part = split.assign(rows["event_time"])
    expected = float(np.percentile(rows.loc[part == "train", "future_volatility_60s"], 90))
    # Inflating the future volatility of validation/test rows must not move τ.
    inflated = df.copy()
    later = inflated["event_time"] > split.train[1]
    inflated.loc[later, "future_volatility_60s"] *= 100
    result = train.train(inflated, tmp_path)
    assert result["label"]["tau"] == pytest.approx(expected, rel=0, abs=0)
    baseline = json.loads((tmp_path / "baseline.json").read_text())
    vol_train = rows.loc[part == "train", "volatility"]
    assert baseline["mean"] == pytest.approx(vol_train.mean())
    assert baseline["std"] == pytest.approx(vol_train.std(ddof=0))


def test_label_is_at_or_above_tau():
    rows = pd.DataFrame({"future_volatility_60s": [0.1, 0.2, 0.3]})
    assert dataset.label(rows, 0.2).tolist() == [0, 1, 1]


def test_single_class_split_reports_null_with_a_reason():
    from models.evaluate import evaluate

    r = evaluate(np.zeros(5, dtype=np.int64), np.linspace(0, 1, 5), 0.5, probability=True)
    assert r["pr_auc"] is None and r["roc_auc"] is None
    assert any("one class" in n for n in r["notes"])
    assert r["recall"] is None


def test_committed_artifact_is_consistent():
    """The committed artifact's files agree with each other (the parity test covers Rust)."""
    out = train.DEFAULT_OUTPUT
    metrics = json.loads((out / "metrics.json").read_text())
    fixtures = json.loads((out / "fixtures.json").read_text())
    baseline = json.loads((out / "baseline.json").read_text())
    assert fixtures["model_version"] == metrics["model_version"] == baseline["version"]
    assert fixtures["threshold"] == metrics["thresholds"]["gbdt"]["value"]
    assert baseline["k"] == metrics["zscore"]["k"]
    assert metrics["data"]["embargo_seconds"] >= metrics["label"]["horizon_seconds"]
