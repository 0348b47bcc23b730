"""The training pipeline's rules: days, labels, leave-one-day-out without leakage, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pandas as pd
import pytest

from models import dataset, evaluate, train
from models.dataset import NS
from models.tests.conftest import synthetic_table

ARTIFACT_FILES = (
    "metrics.json",
    "fixtures.json",
    "baseline.json",
    "reference.json",
    "model_card.md",
    "model.onnx",
    "pr_curves.svg",
    "pr_auc_by_day.svg",
    "calibration.svg",
    "feature_importance.svg",
)


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
    for name in ARTIFACT_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    fixtures = json.loads((a / "fixtures.json").read_text())
    assert 20 <= len(fixtures["rows"]) <= 50
    assert all(0.0 <= r["probability"] <= 1.0 for r in fixtures["rows"])


def test_onnx_probabilities_match_the_trainer_in_batches_of_any_size(table_path, tmp_path):
    import onnxruntime as ort

    train.train(dataset.load_table(table_path), tmp_path)
    fixtures = json.loads((tmp_path / "fixtures.json").read_text())
    x = np.array([[r["features"][n] for n in dataset.FEATURE_NAMES] for r in fixtures["rows"]], dtype=np.float32)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    label, p = session.run(["label", "probabilities"], {"features": x})
    assert label.shape == (len(x),)
    np.testing.assert_allclose(p[:, 1], [r["probability"] for r in fixtures["rows"]], atol=1e-5)
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["feature_names"]) == dataset.FEATURE_NAMES
    assert float(meta["threshold"]) == fixtures["threshold"]
    assert meta["feature_set"] == dataset.FEATURE_SET
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    for value in list(graph.input) + list(graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == "N", value.name


def test_only_complete_future_windows_are_labelled():
    df = synthetic_table()
    rows = dataset.labelled_rows(df)
    assert rows["future_window_complete"].all()
    assert rows["future_volatility_60s"].notna().all()
    assert len(rows) == int(df["future_window_complete"].sum())


def test_days_are_products_contiguous_recordings():
    rows = dataset.labelled_rows(dataset.load_table_frame(synthetic_table()))
    days = dataset.assign_days(rows)
    assert days.nunique() == 4
    assert sorted(days.unique())[-1].startswith("ETH-USD ")
    for _, day in rows.groupby(days):
        assert day["product_id"].nunique() == 1
        assert np.diff(day["event_time"].to_numpy()).max() <= dataset.DAY_GAP_S * NS


def test_the_ranking_label_is_each_days_top_decile():
    rows = dataset.labelled_rows(dataset.load_table_frame(synthetic_table()))
    days = dataset.assign_days(rows)
    y = dataset.rank_label(rows, days)
    for _, m in pd.Series(y, index=rows.index).groupby(days):
        assert 0.09 <= m.mean() <= 0.11
    # Doubling one day's volatility does not change any day's label: it is relative.
    scaled = rows.copy()
    first = days == sorted(days.unique())[0]
    scaled.loc[first, "future_volatility_60s"] *= 2
    assert (dataset.rank_label(scaled, days) == y).all()


def test_each_held_out_day_is_scored_by_models_that_never_saw_it(tmp_path):
    df = dataset.load_table_frame(synthetic_table())
    result = train.train(df, tmp_path)
    rows = dataset.labelled_rows(df)
    days = dataset.assign_days(rows)
    per_day = result["metrics"]["per_day"]
    assert set(per_day) == set(days.unique())
    for day, m in per_day.items():
        fold = m["fold"]
        assert fold["test_rows"] == int((days == day).sum())
        assert fold["train_rows"] + fold["test_rows"] == len(rows)
        nearest = fold["nearest_training_row_seconds"]
        if day.startswith("ETH-USD"):
            assert nearest is None, "the only ETH-USD day held out: the model never saw the product"
        else:
            assert nearest >= dataset.DAY_GAP_S
        others = rows[(days != day).to_numpy()]
        assert fold["tau_of_other_days"] == pytest.approx(np.percentile(others["future_volatility_60s"], 90), abs=0)


def test_a_training_row_inside_the_embargo_is_refused():
    rows = dataset.labelled_rows(dataset.load_table_frame(synthetic_table()))
    test = rows.iloc[:10]
    close = test.copy()
    close["event_time"] = close["event_time"] + 30 * NS
    with pytest.raises(AssertionError, match="embargo"):
        dataset.check_embargo(close, test)


def test_the_absolute_label_takes_tau_from_the_training_days_only(tmp_path):
    df = dataset.load_table_frame(synthetic_table())
    result = train.train(df, tmp_path, mode="absolute")
    rows = dataset.labelled_rows(df)
    days = dataset.assign_days(rows)
    for day, m in result["metrics"]["per_day"].items():
        others = rows[(days != day).to_numpy()]
        assert m["fold"]["tau"] == pytest.approx(np.percentile(others["future_volatility_60s"], 90), abs=0)
    assert result["label"]["mode"] == "absolute"
    assert result["label"]["tau"] == pytest.approx(np.percentile(rows["future_volatility_60s"], 90), abs=0)


def test_label_is_at_or_above_tau():
    rows = pd.DataFrame({"future_volatility_60s": [0.1, 0.2, 0.3]})
    assert dataset.absolute_label(rows, 0.2).tolist() == [0, 1, 1]


def test_single_class_split_reports_null_with_a_reason():
    r = evaluate.evaluate(np.zeros(5, dtype=np.int64), np.linspace(0, 1, 5), 0.5, probability=True)
    assert r["pr_auc"] is None and r["roc_auc"] is None
    assert any("one class" in n for n in r["notes"])
    assert r["recall"] is None


def test_the_goal_needs_every_part():
    def day(g, p, h=0.1):
        return {"gbdt": {"pr_auc": g}, "persistence": {"pr_auc": p}, "har": {"pr_auc": h}, "zscore": {"pr_auc": p}}

    days = ["BTC-USD a", "ETH-USD b"]
    met = evaluate.summarize({"BTC-USD a": day(0.3, 0.1), "ETH-USD b": day(0.3, 0.1)}, days)
    assert met["goal"]["met"] and met["gbdt_over_persistence"] == 3.0
    eth_behind = evaluate.summarize({"BTC-USD a": day(0.6, 0.1), "ETH-USD b": day(0.1, 0.12)}, days)
    assert eth_behind["gbdt_over_persistence"] >= 2.5
    assert not eth_behind["goal"]["ahead_on_eth_usd"] and not eth_behind["goal"]["met"]
    assert eth_behind["goal"]["days_not_ahead_of_persistence"] == ["ETH-USD b"]
    below_har = evaluate.summarize({"BTC-USD a": day(0.3, 0.1, 0.5), "ETH-USD b": day(0.3, 0.1, 0.5)}, days)
    assert not below_har["goal"]["ahead_of_har"] and not below_har["goal"]["met"]


def test_committed_artifact_is_consistent():
    """The committed artifact's files agree with each other (the parity test covers Rust)."""
    out = train.DEFAULT_OUTPUT
    metrics = json.loads((out / "metrics.json").read_text())
    fixtures = json.loads((out / "fixtures.json").read_text())
    baseline = json.loads((out / "baseline.json").read_text())
    reference = json.loads((out / "reference.json").read_text())
    assert fixtures["model_version"] == metrics["model_version"] == baseline["version"] == reference["model_version"]
    assert fixtures["threshold"] == metrics["thresholds"]["gbdt"]["value"]
    assert fixtures["feature_names"] == dataset.FEATURE_NAMES == list(reference["features"])
    assert baseline["k"] == metrics["zscore"]["k"]
    assert metrics["data"]["day_gap_seconds"] >= metrics["label"]["horizon_seconds"]
    card = (out / "model_card.md").read_text()
    for figure in metrics["figures"].values():
        assert (out / figure).is_file(), figure
        assert f"]({figure})" in card, figure
    for name, f in reference["features"].items():
        assert len(f["bin_fractions"]) == len(f["bin_edges"]) + 1
        assert sum(f["bin_fractions"]) == pytest.approx(1.0, abs=1e-4)
        # A drift limit for every feature the model uses, none for those it ignores.
        assert ("psi_limit" in f) == (name not in metrics["ignored_features"]), name
        if "psi_limit" in f:
            assert 0.0 < f["psi_limit"] < 10.0, (name, f["psi_limit"])


def test_psi_by_hand():
    # Reference 50/50; current 80/20: (0.8-0.5)ln(0.8/0.5) + (0.2-0.5)ln(0.2/0.5), as in Rust.
    want = 0.3 * np.log(1.6) + (-0.3) * np.log(0.4)
    assert train.psi(np.array([0.5, 0.5]), np.array([80, 20])) == pytest.approx(want, abs=1e-12)
    assert train.psi(np.array([0.5, 0.5]), np.array([50, 50])) == 0.0
    # An empty bin is floored, not infinite.
    assert np.isfinite(train.psi(np.array([0.5, 0.5]), np.array([100, 0])))


def test_psi_limit_is_the_most_distant_training_day():
    rows = pd.DataFrame({name: np.zeros(400) for name in dataset.FEATURE_NAMES})
    # Day a: spread evenly; day b: piled at one end. The limit is day b's PSI.
    rows["volatility"] = np.concatenate([np.linspace(0, 1, 200), np.full(200, 0.99)])
    days = pd.Series(["a"] * 200 + ["b"] * 200)
    ref = train.reference(rows, "v", days)
    f = ref["features"]["volatility"]
    edges, expected = np.array(f["bin_edges"]), np.array(f["bin_fractions"])
    day_b = np.bincount(np.searchsorted(edges, rows["volatility"][200:], side="right"), minlength=len(edges) + 1)
    assert f["psi_limit"] == pytest.approx(train.psi(expected, day_b), abs=1e-5)
    assert "psi_limit" not in ref["features"]["price"], "the model ignores price"
