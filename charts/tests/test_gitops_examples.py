"""Tests of examples/gitops/: the Argo CD and Flux objects deliver the chart with values the
chart accepts, keep the CRD current, and install the health check the chart documents.

Run: .venv/bin/python -m pytest charts
"""

from __future__ import annotations

from pathlib import Path

import helm_python
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
GITOPS = REPO_ROOT / "examples" / "gitops"
CHART_DIR = REPO_ROOT / "charts" / "spikewatch-operator"
HEALTH_LUA = CHART_DIR / "argocd" / "volatilitypipeline-health.lua"


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


def test_the_argocd_applications_sync_the_chart_then_the_pipelines(chart):
    docs = documents("argocd/applications.yaml")
    operator = one(docs, "Application", "spikewatch-operator")
    pipelines = one(docs, "Application", "spikewatch-pipelines")
    waves = [int(a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for a in (operator, pipelines)]
    assert waves[0] < waves[1], "the CRD and the operator before the pipelines"
    source = operator["spec"]["source"]
    assert (REPO_ROOT / source["path"] / "Chart.yaml").is_file()
    assert (REPO_ROOT / pipelines["spec"]["source"]["path"] / "kustomization.yaml").is_file()
    values = source["helm"]["valuesObject"]
    # The CRD is a release resource (upgraded on every sync), so crds/ is skipped.
    assert values["crds"]["manage"] is True and source["helm"]["skipCrds"] is True
    chart.validate_schema(chart.merge_values(values))
    rendered = chart.render(values=values, name="spikewatch-operator", namespace="spikewatch-system", is_install=True)
    assert any("kind: CustomResourceDefinition" in text for text in rendered.values())


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


def test_every_delivered_pipeline_pins_its_workload_image():
    listed = yaml.safe_load((GITOPS / "pipelines" / "kustomization.yaml").read_text())["resources"]
    pipelines = [d for f in listed for d in documents(f"pipelines/{f}") if d["kind"] == "VolatilityPipeline"]
    assert pipelines
    for pipeline in pipelines:
        assert pipeline["spec"]["image"]["tag"], "an operator upgrade must not change what runs"
