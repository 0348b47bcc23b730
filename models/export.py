"""ONNX export of the `ml` variant as one graph, with the feature contract in its metadata.

    features [N, F] ─┬─ Gather(rv_60s, rv_300s, rv_900s) → Max(floor) → Log → MatMul + intercept ─┐
                     └─ TreeEnsembleRegressor (LightGBM, via onnxmltools) ───────────────────────┴─ Add → score [N, 1]
    score → 0.99 × isotonic map (piecewise linear between knots, clipped) + 0.01 × σ(a × score + b) → p
    outputs: `probabilities` [N, 2] = (1 − p, p), `label` [N] = p ≥ threshold

Everything is float32, as ONNX Runtime evaluates it; the trainer checks the graph against its own
float64 arithmetic. spikewatch refuses a model whose `feature_names` or `feature_set` metadata
differ from the feature set it computes.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxmltools
from onnx import TensorProto, helper
from onnxmltools.convert.common.data_types import FloatTensorType

from .dataset import FEATURE_NAMES

INPUT_NAME = "features"
OPSET = 15
ML_OPSET = 1


def to_onnx(forecaster, calibration, threshold: float, metadata: dict[str, str], floor: float) -> onnx.ModelProto:
    from .forecaster import TREE_FEATURES

    trees = onnxmltools.convert_lightgbm(
        forecaster.booster,
        name="trees",
        initial_types=[("tree_input", FloatTensorType([None, len(TREE_FEATURES)]))],
        target_opset=OPSET,
    )
    tree_nodes = [n for n in trees.graph.node if n.op_type == "TreeEnsembleRegressor"]
    if len(tree_nodes) != 1:
        raise ValueError(f"expected one TreeEnsembleRegressor, got {[n.op_type for n in trees.graph.node]}")
    tree = onnx.NodeProto()
    tree.CopyFrom(tree_nodes[0])
    tree.input[0] = INPUT_NAME
    tree.output[0] = "residual"
    # The trees were trained on TREE_FEATURES: point their splits at the full input's columns.
    full_index = [FEATURE_NAMES.index(name) for name in TREE_FEATURES]
    for attribute in tree.attribute:
        if attribute.name == "nodes_featureids":
            attribute.ints[:] = [full_index[i] for i in attribute.ints]

    har = forecaster.har
    har_index = [FEATURE_NAMES.index(c) for c in har.columns]
    x = np.asarray(calibration.x, dtype=np.float32)
    y = np.asarray(calibration.y, dtype=np.float32)
    m = len(x)
    init = [
        helper.make_tensor("har_index", TensorProto.INT64, [len(har_index)], har_index),
        helper.make_tensor("floor", TensorProto.FLOAT, [], [floor]),
        helper.make_tensor("har_coefficients", TensorProto.FLOAT, [len(har_index), 1], har.coefficients),
        helper.make_tensor("har_intercept", TensorProto.FLOAT, [1], [har.intercept]),
        helper.make_tensor("knots_x_row", TensorProto.FLOAT, [1, m], x.tolist()),
        helper.make_tensor("knots_x", TensorProto.FLOAT, [m], x.tolist()),
        helper.make_tensor("knots_y", TensorProto.FLOAT, [m], y.tolist()),
        helper.make_tensor("axis_1", TensorProto.INT64, [1], [1]),
        helper.make_tensor("one_i", TensorProto.INT64, [], [1]),
        helper.make_tensor("last_i", TensorProto.INT64, [], [max(m - 1, 1)]),
        helper.make_tensor("zero_f", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("one_f", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("tiny_f", TensorProto.FLOAT, [], [1e-30]),
        helper.make_tensor("threshold", TensorProto.FLOAT, [], [threshold]),
        helper.make_tensor("logistic_slope", TensorProto.FLOAT, [], [calibration.slope]),
        helper.make_tensor("logistic_intercept", TensorProto.FLOAT, [], [calibration.intercept]),
        helper.make_tensor("logistic_weight", TensorProto.FLOAT, [], [calibration.logistic_weight]),
        helper.make_tensor("iso_weight", TensorProto.FLOAT, [], [1.0 - calibration.logistic_weight]),
    ]
    nodes = [
        helper.make_node("Gather", [INPUT_NAME, "har_index"], ["har_x"], axis=1),
        helper.make_node("Max", ["har_x", "floor"], ["har_floored"]),
        helper.make_node("Log", ["har_floored"], ["har_log"]),
        helper.make_node("MatMul", ["har_log", "har_coefficients"], ["har_sum"]),
        helper.make_node("Add", ["har_sum", "har_intercept"], ["har"]),
        tree,
        helper.make_node("Add", ["har", "residual"], ["score_column"]),
        helper.make_node("Squeeze", ["score_column", "axis_1"], ["score"]),
    ]
    if m == 1:
        nodes += [
            helper.make_node("Mul", ["score", "zero_f"], ["zeros"]),
            helper.make_node("Add", ["zeros", "knots_y"], ["p_iso"]),
        ]
    else:
        nodes += [
            # How many knots lie at or below the score → the segment it falls in.
            helper.make_node("GreaterOrEqual", ["score_column", "knots_x_row"], ["at_or_above"]),
            helper.make_node("Cast", ["at_or_above"], ["at_or_above_i"], to=TensorProto.INT64),
            helper.make_node("ReduceSum", ["at_or_above_i", "axis_1"], ["count"], keepdims=0),
            helper.make_node("Clip", ["count", "one_i", "last_i"], ["hi"]),
            helper.make_node("Sub", ["hi", "one_i"], ["lo"]),
            helper.make_node("Gather", ["knots_x", "lo"], ["x_lo"]),
            helper.make_node("Gather", ["knots_x", "hi"], ["x_hi"]),
            helper.make_node("Gather", ["knots_y", "lo"], ["y_lo"]),
            helper.make_node("Gather", ["knots_y", "hi"], ["y_hi"]),
            helper.make_node("Sub", ["score", "x_lo"], ["dx"]),
            helper.make_node("Sub", ["x_hi", "x_lo"], ["width"]),
            helper.make_node("Max", ["width", "tiny_f"], ["width_pos"]),
            helper.make_node("Div", ["dx", "width_pos"], ["t_raw"]),
            helper.make_node("Clip", ["t_raw", "zero_f", "one_f"], ["t"]),
            helper.make_node("Sub", ["y_hi", "y_lo"], ["dy"]),
            helper.make_node("Mul", ["t", "dy"], ["rise"]),
            helper.make_node("Add", ["y_lo", "rise"], ["p_iso"]),
        ]
    nodes += [
        # A little of a logistic map blended in keeps the probability strictly increasing.
        helper.make_node("Mul", ["score", "logistic_slope"], ["z_slope"]),
        helper.make_node("Add", ["z_slope", "logistic_intercept"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["p_logistic"]),
        helper.make_node("Mul", ["p_iso", "iso_weight"], ["p_iso_part"]),
        helper.make_node("Mul", ["p_logistic", "logistic_weight"], ["p_logistic_part"]),
        helper.make_node("Add", ["p_iso_part", "p_logistic_part"], ["p"]),
        helper.make_node("Unsqueeze", ["p", "axis_1"], ["p_column"]),
        helper.make_node("Sub", ["one_f", "p_column"], ["q_column"]),
        helper.make_node("Concat", ["q_column", "p_column"], ["probabilities"], axis=1),
        helper.make_node("GreaterOrEqual", ["p", "threshold"], ["alert"]),
        helper.make_node("Cast", ["alert"], ["label"], to=TensorProto.INT64),
    ]
    graph = helper.make_graph(
        nodes,
        "spikewatch",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", len(FEATURE_NAMES)])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2]),
        ],
        initializer=init,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="spikewatch models.train",
    )
    model.ir_version = 8
    set_metadata(model, {"feature_names": json.dumps(FEATURE_NAMES), **metadata})
    onnx.checker.check_model(model)
    return model


def set_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    existing = {p.key: p for p in model.metadata_props}
    for key, value in metadata.items():
        if key in existing:
            existing[key].value = value
        else:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value


def float32_thresholds(booster):
    """The same trees with every split threshold moved down to the nearest float32.

    ONNX Runtime's TreeEnsemble compares float32 inputs against float32 thresholds, while
    LightGBM compares doubles: rounding a threshold to the *nearest* float32 can flip
    `x <= t` for an input equal to the rounded value. For a float32 input x,
    `x <= t` ⇔ `x <= (largest float32 ≤ t)`, so this booster predicts exactly what the
    original predicts on float32 inputs, and its ONNX export agrees with it.
    """
    import lightgbm as lgb

    lines = []
    for line in booster.model_to_string().splitlines():
        if line.startswith("tree_sizes="):
            continue  # byte offsets of the original text; LightGBM parses sequentially without them
        if line.startswith("threshold="):
            t = np.array([float(v) for v in line[len("threshold=") :].split()], dtype=np.float64)
            t32 = t.astype(np.float32)
            t32 = np.where(t32.astype(np.float64) > t, np.nextafter(t32, np.float32(-np.inf)), t32)
            line = "threshold=" + " ".join(repr(float(v)) for v in t32)
        lines.append(line)
    return lgb.Booster(model_str="\n".join(lines) + "\n")
