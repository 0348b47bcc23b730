"""Prints the RBAC the chart grants the operator, as JSON on stdout, for the operator's tests.

    render_rbac.py [VALUES_JSON]

Output: a list of {"kind", "namespace", "rules"}, one per Role or ClusterRole the chart renders
with these values (Helm's own rendering, through the helm-python-sdk library).
`operator/tests/rbac_verbs.rs` compares it with the requests the operator's code makes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import helm_python
import yaml

CHART_DIR = Path(__file__).resolve().parents[1] / "spikewatch-operator"


def main() -> int:
    values = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    with helm_python.Chart.load(CHART_DIR) as chart:
        manifests = chart.render(
            values=values, name="spikewatch-operator", namespace="spikewatch-system", is_install=True
        )
    roles = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc and doc["kind"] in ("Role", "ClusterRole"):
                roles.append(
                    {"kind": doc["kind"], "namespace": doc["metadata"].get("namespace"), "rules": doc.get("rules", [])}
                )
    json.dump(roles, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
