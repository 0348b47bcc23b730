"""Rewrites an ONNX model, for tests that must see a broken model.

    .venv/bin/python -m models.fixture_model IN.onnx OUT.onnx --swap-features
    .venv/bin/python -m models.fixture_model IN.onnx OUT.onnx --drop-feature-names
    .venv/bin/python -m models.fixture_model IN.onnx OUT.onnx --break-output

--swap-features and --drop-feature-names make a model the loader rejects. --break-output makes
one that loads (same input, an output named "probabilities", the same metadata) but answers
with the wrong shape, so every inference fails: a bad export that only shows in production.
"""

from __future__ import annotations

import argparse
import json
import sys

import onnx
from onnx import helper


def break_output(model: onnx.ModelProto) -> None:
    """Replaces the graph with one whose "probabilities" echo the input ([n, features])."""
    graph = model.graph
    source = graph.input[0]
    probabilities = helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, None)
    probabilities.type.tensor_type.shape.CopyFrom(source.type.tensor_type.shape)
    del graph.node[:]
    del graph.output[:]
    del graph.initializer[:]
    del graph.value_info[:]
    graph.node.append(helper.make_node("Identity", [source.name], ["probabilities"], name="broken"))
    graph.output.append(probabilities)
    onnx.checker.check_model(model)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.fixture_model", description=__doc__)
    ap.add_argument("input")
    ap.add_argument("output")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--swap-features", action="store_true", help="swap the first two feature names")
    group.add_argument("--drop-feature-names", action="store_true", help="remove the feature_names entry")
    group.add_argument("--break-output", action="store_true", help="answer with the wrong output shape")
    args = ap.parse_args(argv)
    model = onnx.load(args.input)
    if args.break_output:
        break_output(model)
        onnx.save(model, args.output)
        return 0
    props = list(model.metadata_props)
    del model.metadata_props[:]
    for p in props:
        if p.key == "feature_names":
            if args.drop_feature_names:
                continue
            names = json.loads(p.value)
            names[0], names[1] = names[1], names[0]
            p.value = json.dumps(names)
        model.metadata_props.add(key=p.key, value=p.value)
    onnx.save(model, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
