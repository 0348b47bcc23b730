"""Logs a trained artifact directory to MLflow and registers it under an alias.

    .venv/bin/python -m models.register --tracking-uri http://127.0.0.1:5000 [--alias champion]

The registered model version holds `model.onnx` (ONNX flavor) with `baseline.json`,
`metrics.json`, `model_card.md` and `fixtures.json` as extra files, so that serving can load
either variant from `models:/spikewatch-gbdt@champion`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXTRA_FILES = ("baseline.json", "reference.json", "metrics.json", "model_card.md", "fixtures.json")


def register(artifact_dir: Path, tracking_uri: str, name: str, alias: str) -> str:
    import mlflow
    import onnx
    import onnxruntime
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("spikewatch")
    metrics = json.loads((artifact_dir / "metrics.json").read_text())
    with mlflow.start_run(run_name=f"{name}-{metrics['model_version']}"):
        mlflow.log_params({f"lgb_{k}": v for k, v in metrics["ml"]["lightgbm_params"].items()})
        mlflow.log_param("feature_set", metrics["feature_set"])
        mlflow.log_param("baseline_kind", metrics["baseline"]["kind"])
        for scorer, values in metrics["development"]["means"].items():
            if values["mean"] is not None:
                mlflow.log_metric(f"development_mean_per_day_pr_auc_{scorer}", values["mean"])
        if metrics["final_test"]:
            mlflow.set_tag("served_variant", metrics["final_test"]["served_variant"])
            for scorer, values in metrics["final_test"]["means"].items():
                if values["mean"] is not None:
                    mlflow.log_metric(f"final_test_mean_per_day_pr_auc_{scorer}", values["mean"])
        info = mlflow.onnx.log_model(
            onnx.load(str(artifact_dir / "model.onnx")),
            name="model",
            extra_files=[str(artifact_dir / f) for f in EXTRA_FILES if (artifact_dir / f).exists()],
            save_as_external_data=False,
            # Explicit requirements: inferring them re-imports the model in a subprocess (slow).
            pip_requirements=[f"onnx=={onnx.__version__}", f"onnxruntime=={onnxruntime.__version__}"],
            registered_model_name=name,
        )
    client = MlflowClient(tracking_uri)
    version = str(info.registered_model_version)
    client.set_registered_model_alias(name, alias, version)
    return version


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.register", description=__doc__)
    ap.add_argument(
        "--artifact-dir", type=Path, default=Path(__file__).resolve().parent / "artifacts" / "spikewatch-gbdt"
    )
    ap.add_argument("--tracking-uri", required=True)
    ap.add_argument("--name", default="spikewatch-gbdt")
    ap.add_argument("--alias", default="champion")
    args = ap.parse_args(argv)
    version = register(args.artifact_dir, args.tracking_uri, args.name, args.alias)
    print(version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
