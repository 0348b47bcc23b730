"""ONNX export of the LightGBM classifier, with the feature contract in its metadata."""

from __future__ import annotations

import json

import onnx
import onnxmltools
from onnxmltools.convert.common.data_types import FloatTensorType

from .dataset import FEATURE_NAMES

INPUT_NAME = "features"


def to_onnx(booster_model, metadata: dict[str, str]) -> onnx.ModelProto:
    """Converts without ZipMap (outputs `label` [N] and `probabilities` [N, 2], N dynamic)."""
    model = onnxmltools.convert_lightgbm(
        booster_model,
        name="spikewatch-gbdt",
        initial_types=[(INPUT_NAME, FloatTensorType([None, len(FEATURE_NAMES)]))],
        zipmap=False,
        target_opset=15,
    )
    set_metadata(model, {"feature_names": json.dumps(FEATURE_NAMES), **metadata})
    dynamic_batch(model)
    # The converter collects opsets in a set: sort them so that the file is byte-reproducible.
    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    for domain, version in opsets:
        model.opset_import.add(domain=domain, version=version)
    return model


def dynamic_batch(model: onnx.ModelProto, name: str = "N") -> None:
    """Every input and output's first dimension becomes the symbolic batch size: the converter
    declares `label` as `[1]`, and ONNX Runtime warns on every batch larger than that."""
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_param = name


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
    import numpy as np

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
