"""The training pipeline's rules: product-days, the label, date folds without leakage, nested
calibration, the untouched final test, the exported graph, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pandas as pd
import pytest

from models import baselines, calibration, dataset, evaluate, forecaster, train
from models.tests.conftest import synthetic_table

ARTIFACT_FILES = (
    "metrics.json",
    "fixtures.json",
    "baseline.json",
    "reference.json",
    "model_card.md",
    "model.onnx",
    "pr_auc_development.svg",
    "pr_auc_final_test.svg",
    "pr_curves_final_test.svg",
    "calibration.svg",
    "feature_importance.svg",
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    df = dataset.load_table_frame(synthetic_table())
    return out, train.train(df, out, [])


def test_retraining_reproduces_every_artifact(trained, table_path, tmp_path):
    a, _ = trained
    # The second run is a separate process (the command line), so per-process state such as
    # string hash seeds cannot make the two runs agree by accident.
    subprocess.run(
        [sys.executable, "-m", "models.train", "--table", str(table_path), "--output-dir", str(tmp_path)],
        cwd=train.ROOT,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "random"},
    )
    for name in ARTIFACT_FILES:
        assert (a / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_the_onnx_graph_is_the_trainers_model_in_batches_of_any_size(trained):
    import onnxruntime as ort

    out, result = trained
    fixtures = json.loads((out / "fixtures.json").read_text())
    rows = fixtures["rows"]
    assert any(r["features"]["trade_rate_10s"] is None for r in rows), "rows without trades are covered"
    x = np.array(
        [[np.nan if r["features"][n] is None else r["features"][n] for n in dataset.FEATURE_NAMES] for r in rows],
        dtype=np.float32,
    )
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 3, len(x)):
        label, p = session.run(["label", "probabilities"], {"features": x[:batch]})
        assert label.shape == (batch,) and p.shape == (batch, 2)
        np.testing.assert_allclose(p[:, 1], [r["probability"] for r in rows[:batch]], atol=1e-6)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
        assert ((p[:, 1] >= fixtures["threshold"]) == (label == 1)).all()
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["feature_names"]) == dataset.FEATURE_NAMES
    assert float(meta["threshold"]) == fixtures["threshold"]
    assert meta["feature_set"] == dataset.FEATURE_SET
    graph = onnx.load(str(out / "model.onnx")).graph
    assert [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim] == ["N", ""]
    assert result["ml"]["onnx_max_abs_diff_vs_trainer"] < 1e-2


def test_the_label_is_each_product_days_top_decile():
    rows = synthetic_table()
    y = dataset.spike_label(rows)
    rates = pd.Series(y).groupby(rows["day"]).mean()
    assert ((rates > 0.09) & (rates < 0.11)).all(), rates
    for day, g in rows.groupby("day"):
        cut = g["rv_future_60s"].quantile(0.9)
        assert (y[g.index] == (g["rv_future_60s"] >= cut)).all(), day


def test_recording_names_give_product_days():
    from pathlib import Path

    assert dataset.recording_day(Path("btc-usd-2025-11-30b.csv.gz")) == ("BTC-USD 2025-11-30b", "2025-11-30")
    assert dataset.recording_day(Path("sol-usd-2025-11-24.csv")) == ("SOL-USD 2025-11-24", "2025-11-24")
    with pytest.raises(ValueError):
        dataset.recording_day(Path("ticks.csv"))


def test_every_score_of_a_date_comes_from_models_that_never_saw_that_date(monkeypatch):
    """Outer and inner folds: each fitted model's training dates exclude the dates it scores,
    and no final-test date is ever seen before the final report."""
    df = dataset.load_table_frame(synthetic_table())
    dev = df[~df["date"].isin(train.FINAL_TEST_DATES)].reset_index(drop=True)
    seen = []
    real_fit = forecaster.fit

    def spying_fit(rows):
        dates = set(rows["date"])
        model = real_fit(rows)
        original = model.score

        def score(scored):
            seen.append((dates, set(scored["date"])))
            return original(scored)

        model.score = score
        return model

    monkeypatch.setattr(forecaster, "fit", spying_fit)
    train.develop(dev, dataset.spike_label(dev))
    dev_dates = set(dev["date"])
    assert seen, "the model was fitted"
    for trained_on, scored in seen:
        assert not trained_on & scored, (trained_on, scored)
        assert trained_on <= dev_dates and not trained_on & set(train.FINAL_TEST_DATES)
    # Each of the three outer folds runs an inner evaluation over its two training dates.
    assert len(seen) == 3 * (2 + 1)


def test_a_training_second_inside_the_embargo_is_refused():
    df = synthetic_table()
    a = df[df["date"] == "2025-11-24"]
    b = a.assign(second=a["second"] + a["second"].max() - a["second"].min() + 30)
    with pytest.raises(AssertionError, match="embargo"):
        dataset.check_embargo(a, b)
    assert dataset.check_embargo(a, b.assign(second=b["second"] + 30)) == 60


def test_calibration_is_strictly_increasing_and_alerts_a_tenth():
    rng = np.random.default_rng(3)
    score = rng.normal(size=5000)
    y = (score + rng.normal(scale=1.5, size=5000) > 1.8).astype(int)
    cal = calibration.fit(score, y)
    grid = np.linspace(-5, 5, 2001)
    p = cal.probability(grid)
    assert (np.diff(p) > 0).all(), "no plateau: the probability ranks like the score"
    assert ((p >= 0) & (p <= 1)).all()
    threshold = calibration.alert_threshold(cal.probability(score))
    assert (cal.probability(score) >= threshold).mean() == pytest.approx(0.10, abs=0.005)
    assert all(b > a for a, b in zip(cal.x, cal.x[1:], strict=False))


def test_har_is_the_least_squares_fit_and_persistence_the_past_minute():
    rows = synthetic_table()
    har = baselines.fit_har(rows)
    x = np.column_stack([np.ones(len(rows))] + [baselines.log_floor(rows[c]) for c in baselines.PAST_COLUMNS])
    beta = np.linalg.lstsq(x, baselines.target(rows), rcond=None)[0]
    np.testing.assert_allclose([har.intercept, *har.coefficients], beta)
    p = baselines.persistence().score(rows)
    np.testing.assert_allclose(p, np.log(np.maximum(rows["rv_past_60s"], baselines.FLOOR)))


def test_the_bootstrap_of_a_scorer_against_itself_is_exactly_zero():
    rows = synthetic_table()
    y = dataset.spike_label(rows)
    s = rows["rv_60s"].to_numpy()
    same = evaluate.block_bootstrap(rows, y, s, s)
    assert same["mean_difference"] == 0.0 and same["interval_95"] == [0.0, 0.0]
    better = evaluate.block_bootstrap(rows, y, rows["rv_future_60s"].to_numpy(), s)
    assert better["interval_95"][0] > 0.0, "the label itself beats any forecast, surely"


def test_means_are_plain_and_weighted_by_minutes():
    per_day = {
        "a": {"m": {"pr_auc": 0.2, "seconds": 600}},
        "b": {"m": {"pr_auc": 0.4, "seconds": 1800}},
        "c": {"m": {"pr_auc": None, "seconds": 60}},
    }
    m = evaluate.means(per_day, ["m"])["m"]
    assert m["mean"] == pytest.approx(0.3)
    assert m["weighted_mean"] == pytest.approx(0.35)


def test_committed_artifact_is_consistent():
    """The committed artifact's files agree with each other (the parity test covers Rust)."""
    out = train.DEFAULT_OUTPUT
    metrics = json.loads((out / "metrics.json").read_text())
    fixtures = json.loads((out / "fixtures.json").read_text())
    baseline = json.loads((out / "baseline.json").read_text())
    reference = json.loads((out / "reference.json").read_text())
    assert fixtures["model_version"] == metrics["model_version"] == baseline["version"] == reference["model_version"]
    assert fixtures["threshold"] == metrics["ml"]["threshold"]
    assert fixtures["feature_names"] == dataset.FEATURE_NAMES == list(reference["features"])
    assert metrics["feature_set"] == dataset.FEATURE_SET
    assert baseline["kind"] == metrics["development"]["served_baseline_kind"]
    assert set(metrics["final_test_dates"]) == set(train.FINAL_TEST_DATES)
    final_days = set(metrics["final_test"]["per_day"])
    assert final_days and not final_days & set(metrics["development"]["per_day"])
    card = (out / "model_card.md").read_text()
    for figure in metrics["figures"].values():
        assert (out / figure).is_file(), figure
        assert f"]({figure})" in card, figure
    for name, f in reference["features"].items():
        assert len(f["bin_fractions"]) == len(f["bin_edges"]) + 1
        assert sum(f["bin_fractions"]) == pytest.approx(1.0, abs=1e-4)
        # A drift limit for every feature the trees use, none for those they ignore.
        assert ("psi_limit" in f) == (name in metrics["ml"]["tree_features"]), name


def test_psi_by_hand():
    # Reference 50/50; current 80/20: (0.8-0.5)ln(0.8/0.5) + (0.2-0.5)ln(0.2/0.5), as in Rust.
    want = 0.3 * np.log(1.6) + (-0.3) * np.log(0.4)
    assert train.psi(np.array([0.5, 0.5]), np.array([80, 20])) == pytest.approx(want, abs=1e-12)
    assert train.psi(np.array([0.5, 0.5]), np.array([50, 50])) == 0.0
    # An empty bin is floored, not infinite.
    assert np.isfinite(train.psi(np.array([0.5, 0.5]), np.array([100, 0])))


def test_reference_skips_missing_values_and_limits_by_the_most_distant_day():
    rows = synthetic_table()
    rows.loc[rows["day"] == "BTC-USD 2025-11-26", "rv_60s"] *= 50  # one day far from the others
    ref = train.reference(rows, "v")
    f = ref["features"]["rv_60s"]
    edges, expected = np.array(f["bin_edges"]), np.array(f["bin_fractions"])
    far = rows.loc[rows["day"] == "BTC-USD 2025-11-26", "rv_60s"]
    counts = np.bincount(np.searchsorted(edges, far, side="right"), minlength=len(edges) + 1)
    assert f["psi_limit"] == pytest.approx(train.psi(expected, counts), abs=1e-5)
    trades = ref["features"]["trade_rate_10s"]
    assert np.isfinite(trades["median"]), "the median of the rows that have trades"
    assert "psi_limit" not in ref["features"]["price"], "the trees ignore price"
