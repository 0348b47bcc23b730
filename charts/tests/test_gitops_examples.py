"""Tests of examples/gitops/: the Argo CD and Flux objects deliver the chart with values the
chart accepts, keep the CRD current, and install the health check the chart documents.

Run: .venv/bin/python -m pytest charts
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
GITOPS = REPO_ROOT / "examples" / "gitops"
CHART_DIR = REPO_ROOT / "charts" / "spikewatch-operator"
HEALTH_LUA = CHART_DIR / "argocd" / "volatilitypipeline-health.lua"
KUBERNETES_VERSION = "1.34.0"


def documents(relative: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((GITOPS / relative).read_text()) if d]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def chart():
    with helm_python.Chart.load(CHART_DIR) as loaded:
        yield loaded


def test_the_argocd_health_customization_is_the_chart_s_lua_verbatim():
    [patch] = documents("argocd/argocd-cm-health.yaml")
    lua = patch["data"]["resource.customizations.health.spikewatch.io_VolatilityPipeline"]
    assert lua == HEALTH_LUA.read_text()


def test_the_argocd_root_application_syncs_the_operator_then_the_pipelines_in_waves(chart):
    root = one(documents("argocd/root.yaml"), "Application", "spikewatch")
    apps_dir = REPO_ROOT / root["spec"]["source"]["path"]
    children = [d for f in sorted(apps_dir.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    operator = one(children, "Application", "spikewatch-operator")
    pipelines = one(children, "Application", "spikewatch-pipelines")
    waves = [int(a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for a in (operator, pipelines)]
    assert waves[0] < waves[1], "the CRD and the operator before the pipelines"
    assert root["spec"]["destination"]["namespace"] == "argocd" == operator["metadata"]["namespace"]
    revisions = {a["spec"]["source"]["targetRevision"] for a in (root, operator, pipelines)}
    assert len(revisions) == 1, f"one revision for the whole tree: {revisions}"
    source = operator["spec"]["source"]
    assert (REPO_ROOT / source["path"] / "Chart.yaml").is_file()
    assert (REPO_ROOT / pipelines["spec"]["source"]["path"] / "kustomization.yaml").is_file()
    values = source["helm"]["valuesObject"]
    # The CRD is a release resource (upgraded on every sync), so crds/ is skipped.
    assert values["crds"]["manage"] is True and source["helm"]["skipCrds"] is True
    chart.validate_schema(chart.merge_values(values))
    rendered = chart.render(values=values, name="spikewatch-operator", namespace="spikewatch-system", is_install=True)
    assert any("kind: CustomResourceDefinition" in text for text in rendered.values())


def test_the_pipelines_application_survives_a_first_sync_before_the_crd_exists():
    pipelines = one(documents("argocd/apps/pipelines.yaml"), "Application", "spikewatch-pipelines")
    policy = pipelines["spec"]["syncPolicy"]
    assert "SkipDryRunOnMissingResource=true" in policy["syncOptions"]
    retry = policy["retry"]
    assert retry["limit"] >= 5 or retry["limit"] < 0, retry
    backoff = retry["backoff"]
    assert backoff["factor"] >= 2 and backoff["duration"].endswith("s") and backoff["maxDuration"].endswith("m")


def lua_table(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_table(k)}] = {lua_table(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "{" + ", ".join(lua_table(v) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_health_check(lua: str, obj: dict) -> dict:
    program = f"obj = {lua_table(obj)}\nlocal health = (function()\n{lua}\nend)()\n"
    program += 'print(health.status .. "|" .. (health.message or ""))\n'
    lua_bin = shutil.which("lua5.4")
    assert lua_bin, "lua5.4 not found: run scripts/setup (it installs Debian's lua5.4)"
    result = subprocess.run([lua_bin, "-"], input=program, capture_output=True, text=True, check=True)
    status, _, message = result.stdout.strip().partition("|")
    return {"status": status, "message": message}


def test_the_application_health_check_reports_what_the_child_application_reports():
    [patch] = documents("argocd/argocd-cm-health.yaml")
    lua = patch["data"]["resource.customizations.health.argoproj.io_Application"]
    assert run_health_check(lua, {"metadata": {"name": "a"}})["status"] == "Progressing"
    degraded = {"status": {"health": {"status": "Degraded", "message": "a pipeline is stalled"}}}
    assert run_health_check(lua, degraded) == {"status": "Degraded", "message": "a pipeline is stalled"}
    assert run_health_check(lua, {"status": {"health": {"status": "Healthy"}}})["status"] == "Healthy"


def test_the_flux_release_creates_and_replaces_the_crd_with_values_the_chart_accepts(chart):
    docs = documents("flux/operator.yaml")
    release = one(docs, "HelmRelease")
    assert release["spec"]["install"]["crds"] == "Create"
    assert release["spec"]["upgrade"]["crds"] == "CreateReplace"
    ref = release["spec"]["chartRef"]
    one(docs, ref["kind"], ref["name"])
    values = release["spec"]["values"]
    chart.validate_schema(chart.merge_values(values))
    assert not values.get("crds", {}).get("manage"), "Flux manages the CRD from crds/ itself"


def test_the_flux_kustomization_waits_on_the_pipelines_kstatus():
    kustomization = one(documents("flux/pipelines.yaml"), "Kustomization")
    spec = kustomization["spec"]
    assert spec["wait"] is True
    assert (REPO_ROOT / spec["path"] / "kustomization.yaml").is_file()


def kustomize(directory: Path) -> list[dict]:
    """`kustomize build` of a kustomization that lists resources and sets a namespace, nothing else."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kustomization) <= {"apiVersion", "kind", "namespace", "resources"}, (
        f"{directory}: this renderer reads only resources and namespace; extend it for {set(kustomization)}"
    )
    out = []
    for name in kustomization["resources"]:
        path = (directory / name).resolve()
        # A directory is another kustomization (kustomize refuses files outside the root).
        docs = kustomize(path) if path.is_dir() else [d for d in yaml.safe_load_all(path.read_text()) if d]
        for doc in docs:
            if "namespace" in kustomization and doc["kind"] != "Namespace":
                doc.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
            out.append(doc)
    return out


def delivered() -> list[dict]:
    return kustomize(GITOPS / "pipelines")


def test_every_delivered_pipeline_pins_its_workload_image():
    pipelines = [d for d in delivered() if d["kind"] == "VolatilityPipeline"]
    assert pipelines
    for pipeline in pipelines:
        assert pipeline["spec"]["image"]["tag"], "an operator upgrade must not change what runs"


# A value to be substituted before use: an all-caps identifier where a value belongs (such as
# `image: KAFKA_IMAGE`), angle-bracket or CHANGE_ME style markers.
PLACEHOLDER = re.compile(
    r"\b[A-Z][A-Z0-9_]*_(IMAGE|TAG|VERSION|URL|HOST|SERVERS?|NAMESPACE|PASSWORD|TOKEN)\b"
    r"|<[A-Za-z][\w-]*>|CHANGE[_-]?ME|REPLACE[_-]?ME|\bTODO\b"
)


def is_placeholder(value: str) -> bool:
    # `$(VAR)` is the kubelet's expansion of a variable the container defines, not a placeholder.
    return bool(PLACEHOLDER.search(re.sub(r"\$\([A-Za-z_][A-Za-z0-9_]*\)", "", value)))


def scalars(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from scalars(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from scalars(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def env_names(doc: dict) -> set[str]:
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    return {e["name"] for c in pod.get("containers", []) for e in c.get("env", [])}


def every_example_rendered() -> dict[str, list[dict]]:
    """Each example as what gets applied: plain manifests as written, the kustomization built."""
    files = sorted(
        p
        for p in (REPO_ROOT / "examples").rglob("*.yaml")
        if p.parent != GITOPS / "pipelines" and p.name != "kustomization.yaml"
    )
    files += sorted((REPO_ROOT / "e2e" / "manifests").glob("*.yaml"))
    rendered = {str(p.relative_to(REPO_ROOT)): [d for d in yaml.safe_load_all(p.read_text()) if d] for p in files}
    rendered["examples/gitops/pipelines (kustomize build)"] = delivered()
    return rendered


def test_no_example_holds_a_placeholder():
    found = []
    for name, docs in every_example_rendered().items():
        for doc in docs:
            # Environment variable names are all caps by nature; their values are checked.
            names = env_names(doc)
            for path, value in scalars(doc):
                if is_placeholder(value) and value not in names:
                    found.append(f"{name} {doc.get('kind')} {path}: {value!r}")
    assert found == []


def test_the_placeholder_check_finds_the_kinds_of_placeholder_it_is_for():
    """Guards the test above against a pattern that matches nothing."""
    for value in ("KAFKA_IMAGE", "MODEL_SERVER_IMAGE", "<your-broker>:9092", "CHANGE_ME"):
        assert is_placeholder(value), value
    for value in (
        "apache/kafka:4.1.0",
        "PLAINTEXT://kafka.$(POD_NAMESPACE).svc:9092",
        "SkipDryRunOnMissingResource=true",
    ):
        assert not is_placeholder(value), value


def test_the_delivered_objects_are_valid_and_the_pipeline_reaches_the_delivered_broker():
    docs = delivered()
    builtin = [d for d in docs if d["kind"] != "VolatilityPipeline"]
    for doc in builtin:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    [pipeline] = [d for d in docs if d["kind"] == "VolatilityPipeline"]
    crd = yaml.safe_load((REPO_ROOT / "crds" / "volatilitypipelines.spikewatch.io.yaml").read_text())
    # OpenAPI v3 schemas use the draft 4 keywords (boolean exclusiveMinimum and exclusiveMaximum).
    jsonschema.Draft4Validator(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]).validate(pipeline)
    [service] = [d for d in docs if d["kind"] == "Service"]
    [broker] = [d for d in docs if d["kind"] == "Deployment"]
    host, _, port = pipeline["spec"]["kafka"]["bootstrapServers"].partition(":")
    assert (host, int(port)) == (service["metadata"]["name"], service["spec"]["ports"][0]["port"])
    assert service["metadata"]["namespace"] == pipeline["metadata"]["namespace"]
    pod = broker["spec"]["template"]["spec"]
    assert pod["enableServiceLinks"] is False, "the Service kafka would inject KAFKA_* settings"
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    advertised = env["KAFKA_ADVERTISED_LISTENERS"]["value"]
    assert advertised == f"PLAINTEXT://{service['metadata']['name']}.$(POD_NAMESPACE).svc:{port}"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert list(env).index("POD_NAMESPACE") < list(env).index("KAFKA_ADVERTISED_LISTENERS"), (
        "$(VAR) expands only variables defined earlier"
    )


def test_the_flux_kustomization_delivers_the_broker_too():
    kustomization = one(documents("flux/pipelines.yaml"), "Kustomization")
    directory = REPO_ROOT / kustomization["spec"]["path"]
    kinds = {d["kind"] for d in kustomize(directory)}
    assert {"Namespace", "Service", "Deployment", "VolatilityPipeline"} <= kinds
