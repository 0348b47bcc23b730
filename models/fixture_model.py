"""Rewrites an ONNX model's metadata, for tests that must see a load-time rejection.

    .venv/bin/python -m models.fixture_model IN.onnx OUT.onnx --swap-features
    .venv/bin/python -m models.fixture_model IN.onnx OUT.onnx --drop-feature-names
"""

from __future__ import annotations

import argparse
import json
import sys

import onnx


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.fixture_model", description=__doc__)
    ap.add_argument("input")
    ap.add_argument("output")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--swap-features", action="store_true", help="swap the first two feature names")
    group.add_argument("--drop-feature-names", action="store_true", help="remove the feature_names entry")
    args = ap.parse_args(argv)
    model = onnx.load(args.input)
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
