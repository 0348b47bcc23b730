"""The README's "Deploy on Kubernetes" and the chart's NOTES.txt, read as a user runs them: every
command names things that exist (the chart where the release workflow publishes it, at the
chart's version; manifests in the repository; the pipeline and the objects the operator makes
for it, in the namespace the commands use), and NOTES.txt says the same.

What this cannot do is run them: the end-to-end workflow does that on kind (e2e/run.sh).

Run: .venv/bin/python -m pytest charts
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import helm_python
import kubernetes_validate
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "spikewatch-operator"
CHART = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
KUBERNETES_VERSION = "1.34.0"


def readme_section() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index("## Deploy on Kubernetes")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def code_blocks(text: str) -> list[list[str]]:
    """The lines of each ```sh block, comments kept apart (`# ...` lines and trailing ones)."""
    return [block.strip().splitlines() for block in re.findall(r"```sh\n(.*?)```", text, re.S)]


def command(line: str) -> list[str]:
    return shlex.split(line.split("  #")[0])


@pytest.fixture(scope="module")
def steps() -> dict:
    [setup, look] = code_blocks(readme_section())
    commands = [command(line) for line in setup if not line.lstrip().startswith("#")]
    from_checkout = [command(line.lstrip("# ").split(": ", 1)[1]) for line in setup if line.lstrip().startswith("#")]
    return {"commands": commands, "from_checkout": from_checkout, "look": [command(line) for line in look]}


def option(args: list[str], name: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == name]


def test_the_operator_is_installed_from_the_published_chart_or_a_checkout(steps):
    create, helm, *_ = steps["commands"]
    assert create[:3] == ["kubectl", "create", "namespace"]
    operator_namespace = create[3]
    assert helm[:2] == ["helm", "install"]
    release, chart = helm[2], helm[3]
    # Where release.yml pushes the chart: oci://ghcr.io/<owner>/charts/<chart name>.
    workflow = (REPO_ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert 'helm push "$RUNNER_TEMP/spikewatch-operator-' in workflow and '/charts"' in workflow
    owner = CHART["home"].rstrip("/").split("/")[-2]
    assert chart == f"oci://ghcr.io/{owner}/charts/{CHART['name']}"
    assert option(helm, "--version") == [CHART["version"]]
    assert option(helm, "-n") == [operator_namespace]
    [checkout] = steps["from_checkout"]
    assert checkout[:4] == ["helm", "install", release, "charts/spikewatch-operator"]
    assert (REPO_ROOT / checkout[3] / "Chart.yaml").is_file()
    assert option(checkout, "-n") == [operator_namespace]


def quickstart_manifests(steps) -> tuple[str, list[dict]]:
    commands = steps["commands"]
    apply = next(c for c in commands if c[:2] == ["kubectl", "apply"])
    [namespace] = option(apply, "-n")
    assert ["kubectl", "create", "namespace", namespace] in commands, "the pipeline's namespace is created first"
    docs = []
    for path in option(apply, "-f"):
        assert (REPO_ROOT / path).is_file(), path
        docs += [d for d in yaml.safe_load_all((REPO_ROOT / path).read_text()) if d]
    return namespace, docs


def test_the_pipeline_and_its_broker_land_in_the_namespace_the_commands_use(steps):
    namespace, docs = quickstart_manifests(steps)
    for doc in docs:
        assert doc["metadata"].get("namespace") in (None, namespace), f"{doc['kind']} names another namespace"
    [pipeline] = [d for d in docs if d["kind"] == "VolatilityPipeline"]
    spec = pipeline["spec"]
    assert spec["source"]["type"] == "replay", "no internet access needed"
    assert "authSecretRef" not in spec["kafka"], "no credentials needed"
    # The broker is the Service the same commands create.
    [service] = [d for d in docs if d["kind"] == "Service"]
    host, _, port = spec["kafka"]["bootstrapServers"].partition(":")
    assert (host, int(port)) == (service["metadata"]["name"], service["spec"]["ports"][0]["port"])
    # No Prometheus Operator on an empty cluster: the pipeline asks for none of its objects.
    assert spec["monitoring"]["serviceMonitor"] is False and spec["monitoring"]["prometheusRule"] is False
    for doc in docs:
        if doc["kind"] != "VolatilityPipeline":
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_wait_and_the_places_to_look_name_what_the_operator_creates(steps):
    namespace, docs = quickstart_manifests(steps)
    [pipeline] = [d for d in docs if d["kind"] == "VolatilityPipeline"]
    name = pipeline["metadata"]["name"]
    wait = next(c for c in steps["commands"] if c[:2] == ["kubectl", "wait"])
    assert option(wait, "-n") == [namespace]
    assert f"vp/{name}" in wait and "--for=condition=Ready" in wait
    operator_namespace = steps["commands"][0][3]
    release = steps["commands"][1][2]
    looked_at = set()
    for look in steps["look"]:
        assert look[0] == "kubectl", look
        for word in look:
            if "/" in word and not word.startswith("http"):
                looked_at.add((option(look, "-n")[0], word))
    # The operator's children are named <pipeline>-<workload>; the API Service listens on 8000;
    # the chart's Deployment is named after the release.
    assert (namespace, f"deploy/{name}-predictor") in looked_at
    assert (namespace, f"svc/{name}-api") in looked_at
    assert (operator_namespace, f"deploy/{release}") in looked_at
    forward = next(look for look in steps["look"] if "port-forward" in look)
    assert forward[-1] == "8000:8000"
    assert any(look[:3] == ["kubectl", "get", "vp"] and "wide" in look for look in steps["look"])


@pytest.fixture(scope="module")
def notes() -> str:
    with helm_python.Chart.load(CHART_DIR) as chart:
        rendered = chart.render(name="spikewatch-operator", namespace="spikewatch-system")
    return rendered["spikewatch-operator/templates/NOTES.txt"]


def test_notes_give_the_same_quickstart_for_users_of_the_oci_chart(steps, notes):
    namespace, _ = quickstart_manifests(steps)
    apply = next(c for c in steps["commands"] if c[:2] == ["kubectl", "apply"])
    joined = " ".join(notes.replace("\\\n", " ").split())
    assert f"kubectl create namespace {namespace}" in joined
    # Without a checkout: the same files, from the release's tag.
    for path in option(apply, "-f"):
        url = f"https://raw.githubusercontent.com/spikewatch/spikewatch/v{CHART['appVersion']}/{path}"
        assert f"-f {url}" in joined, url
    wait = next(c for c in steps["commands"] if c[:2] == ["kubectl", "wait"])
    assert " ".join(wait) in joined
    assert "examples/pipeline.yaml is the production example" in joined
    assert f"kubectl get vp -n {namespace} -o wide" in joined
