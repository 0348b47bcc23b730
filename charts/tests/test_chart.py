"""Tests of the spikewatch-operator Helm chart.

The chart is rendered and linted by Helm itself (the Go library bundled in PyPI's
`helm-python-sdk`), and every rendered object and the CRD are validated against the
Kubernetes 1.34 OpenAPI schemas by `kubernetes-validate`. Nothing here re-implements
templating or schema validation; the tests assert what the chart must guarantee
(least-privilege RBAC, restricted pods, wiring between objects) on Helm's real output.

Run: .venv/bin/python -m pytest charts
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "spikewatch-operator"
CRD_FILE = "volatilitypipelines.spikewatch.io.yaml"
GENERATED_CRD = REPO_ROOT / "crds" / CRD_FILE
CHART_CRD = CHART_DIR / "crds" / CRD_FILE

KUBERNETES_VERSION = "1.34.0"
RELEASE = "spikewatch-operator"
NAMESPACE = "spikewatch-system"

# Every documented values variant: the chart's defaults plus each `ci/*-values.yaml`
# (the chart-testing convention; the README lists them).
VARIANT_FILES = sorted(CHART_DIR.glob("ci/*-values.yaml"))
VARIANTS = {"default": None} | {f.name.removesuffix("-values.yaml"): f for f in VARIANT_FILES}

# Kinds of the cluster's own API every variant renders.
BASE_KINDS = {
    "Deployment",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
}
# Custom resources the chart may render; kubernetes-validate has no schema for them.
CUSTOM_KINDS = {"ServiceMonitor"}
# Namespaces of the ci/watch-namespaces-values.yaml variant.
WATCHED = ["markets", "markets-staging"]

# Children: read, applied server-side (a patch, authorized as a create when it creates), watched.
APPLIED_AND_WATCHED = {"get", "list", "watch", "create", "patch"}
APPLIED = {"get", "create", "patch"}
# The operator's complete permission set where it reconciles: (API group, resource) -> verbs.
# `operator/tests/rbac_verbs.rs` derives the same table from the requests the code makes.
EXPECTED_CLUSTER_RULES = {
    ("spikewatch.io", "volatilitypipelines"): {"list", "watch", "patch"},
    ("spikewatch.io", "volatilitypipelines/status"): {"patch"},
    ("spikewatch.io", "volatilitypipelines/finalizers"): {"update"},
    ("", "configmaps"): APPLIED_AND_WATCHED,
    ("", "services"): APPLIED_AND_WATCHED,
    ("", "serviceaccounts"): APPLIED_AND_WATCHED,
    ("apps", "deployments"): APPLIED_AND_WATCHED,
    ("apps", "deployments/scale"): {"patch"},
    ("", "pods"): {"list"},
    ("keda.sh", "scaledobjects"): APPLIED,
    ("keda.sh", "triggerauthentications"): APPLIED,
    ("policy", "poddisruptionbudgets"): APPLIED_AND_WATCHED | {"delete"},
    ("networking.k8s.io", "networkpolicies"): APPLIED_AND_WATCHED,
    ("monitoring.coreos.com", "servicemonitors"): APPLIED,
    ("monitoring.coreos.com", "prometheusrules"): APPLIED,
    ("kafka.strimzi.io", "kafkatopics"): {"get", "list", "create", "patch"},
    ("", "secrets"): {"get", "create"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
LEASE_NAME = "spikewatch-operator"


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def chart():
    with helm_python.Chart.load(CHART_DIR) as loaded:
        yield loaded


def variant_values(name: str) -> dict:
    path = VARIANTS[name]
    if path is None:
        return {}
    # Parsed by Helm, exactly as `helm install -f <file>` would.
    return helm_python.chart.values_from_yaml(path.read_text())


def render(chart, values: dict | None = None, release: str = RELEASE) -> list[dict]:
    """Helm's rendering of the templates as Kubernetes objects (NOTES.txt excluded)."""
    manifests = chart.render(values=values, name=release, namespace=NAMESPACE, is_install=True)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def only(objects: list[dict], kind: str) -> dict:
    matches = [o for o in objects if o["kind"] == kind]
    assert len(matches) == 1, f"expected exactly one {kind}, got {len(matches)}"
    return matches[0]


def kubernetes_validate_all(objects: list[dict]) -> set[str]:
    """Validate each object strictly; return the kinds that have no upstream schema."""
    unknown = set()
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unknown.add(obj["kind"])
    return unknown


def rules_by_resource(role: dict) -> dict[tuple[str, str], set[str]]:
    table: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                table.setdefault((group, resource), set()).update(rule["verbs"])
    return table


def pod_spec(objects: list[dict]) -> dict:
    return only(objects, "Deployment")["spec"]["template"]["spec"]


# --------------------------------------------------------------------------- chart metadata


def test_chart_metadata(chart):
    meta = chart.metadata
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "spikewatch-operator"
    assert meta["version"] == "0.1.0"
    assert meta["appVersion"] == "0.1.0"
    assert meta["kubeVersion"].startswith(">=1.28")


def test_documented_variants_exist():
    names = set(VARIANTS)
    for expected in (
        "service-monitor",
        "no-network-policy",
        "high-availability",
        "custom-image",
        "resources",
        "watch-namespaces",
        "managed-crd",
    ):
        assert expected in names, f"ci/{expected}-values.yaml is missing"


# --------------------------------------------------------------------------- helm lint


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_passes(variant):
    report = helm_python.chart.lint(
        CHART_DIR,
        values=variant_values(variant),
        strict=True,
        namespace=NAMESPACE,
        kube_version=f"v{KUBERNETES_VERSION}",
    )
    assert report["errors"] == []
    # Severity 2 = warning, 3 = error; informational hints (1) are allowed.
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


def test_helm_lint_reports_bad_values():
    """Guards the lint test above against a linter that accepts everything."""
    report = helm_python.chart.lint(CHART_DIR, values={"replicaCount": -1})
    assert any("replicaCount" in e for e in report["errors"]), report


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("variant", VARIANTS)
def test_renders_expected_objects(chart, variant):
    values = chart.merge_values(variant_values(variant))
    kinds = [o["kind"] for o in render(chart, variant_values(variant))]
    expected = set(BASE_KINDS)
    if values["watchNamespaces"]:
        expected -= {"ClusterRole", "ClusterRoleBinding"}
    if values["crds"]["manage"]:
        expected.add("CustomResourceDefinition")
    if values["serviceMonitor"]["enabled"]:
        expected.add("ServiceMonitor")
    if values["networkPolicy"]["enabled"]:
        expected.add("NetworkPolicy")
    if values["podDisruptionBudget"]["enabled"]:
        expected.add("PodDisruptionBudget")
    assert set(kinds) == expected


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_objects_validate_against_kubernetes_schemas(chart, variant):
    objects = render(chart, variant_values(variant))
    unknown = kubernetes_validate_all(objects)
    # Exactly the custom resources are skipped, nothing of the core API.
    assert unknown == {o["kind"] for o in objects} & CUSTOM_KINDS


def test_kubernetes_validate_rejects_an_invalid_deployment(chart):
    """Guards the schema test above: a wrong type in a rendered object must be reported."""
    deployment = only(render(chart), "Deployment")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("variant", VARIANTS)
def test_namespaced_objects_live_in_the_release_namespace(chart, variant):
    watched = chart.merge_values(variant_values(variant))["watchNamespaces"]
    for obj in render(chart, variant_values(variant)):
        if obj["kind"] in {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}:
            assert "namespace" not in obj["metadata"]
        elif obj["kind"] in {"Role", "RoleBinding"} and obj["metadata"]["namespace"] != NAMESPACE:
            # The operator's permissions in each watched namespace.
            assert obj["metadata"]["namespace"] in watched, obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]


# --------------------------------------------------------------------------- the operator pod


def test_deployment_runs_the_operator(chart):
    objects = render(chart)
    [container] = pod_spec(objects)["containers"]
    assert container["name"] == "operator"
    assert container["image"] == "ghcr.io/spikewatch/spikewatch-operator:0.1.0"
    assert container["command"] + container["args"] == [
        "spikewatch-operator",
        "run",
        "--bind",
        "0.0.0.0:8080",
    ]
    env = {e["name"]: e for e in container["env"]}
    # Only the operator's own prefixed names (the unprefixed ones are deprecated aliases).
    assert all(name.startswith("SPIKEWATCH_") or name == "RUST_LOG" for name in env), sorted(env)
    assert env["SPIKEWATCH_IDENTITY"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["SPIKEWATCH_LEASE_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["SPIKEWATCH_LOG_FORMAT"]["value"] == "json"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    assert only(objects, "Deployment")["spec"]["replicas"] == 1


def test_custom_image(chart):
    spec = pod_spec(render(chart, variant_values("custom-image")))
    container = spec["containers"][0]
    assert container["image"] == "registry.example.com/mirror/spikewatch-operator:0.1.1-rc.1"
    assert container["imagePullPolicy"] == "Always"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]


def test_image_tag_alone_keeps_the_default_repository(chart):
    container = pod_spec(render(chart, {"image": {"tag": "0.2.0"}}))["containers"][0]
    assert container["image"] == "ghcr.io/spikewatch/spikewatch-operator:0.2.0"


def test_resources_come_from_values(chart):
    container = pod_spec(render(chart, variant_values("resources")))["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "0.25", "memory": "256Mi"},
        "limits": {"cpu": 1, "memory": "1Gi", "ephemeral-storage": "64Mi"},
    }


def test_high_availability(chart):
    objects = render(chart, variant_values("high-availability"))
    assert only(objects, "Deployment")["spec"]["replicas"] == 2
    pdb = only(objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    pod_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert "podAntiAffinity" in pod_spec(objects)["affinity"]


def test_logging_and_pod_labels_from_values(chart):
    objects = render(chart, variant_values("locked-down"))
    deployment = only(objects, "Deployment")
    env = {e["name"]: e.get("value") for e in pod_spec(objects)["containers"][0]["env"]}
    assert env["SPIKEWATCH_LOG_FORMAT"] == "text"
    assert env["RUST_LOG"] == "debug,kube=info"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["team"] == "market-data"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pod_spec(objects)["nodeSelector"] == {"node-role.example.com/operators": "true"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_pod_meets_the_restricted_pod_security_standard(chart, variant):
    spec = pod_spec(render(chart, variant_values(variant)))
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] > 0
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(key)
    for volume in spec.get("volumes", []):
        # The restricted profile allows only these volume sources; the chart uses emptyDir.
        assert set(volume) - {"name"} <= {"emptyDir", "configMap", "secret", "projected", "downwardAPI"}
    for container in spec["containers"] + spec.get("initContainers", []):
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["runAsNonRoot"] is True
        assert not sc.get("privileged")
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert not sc["capabilities"].get("add")
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert all("hostPort" not in p for p in container.get("ports", []))


# --------------------------------------------------------------------------- wiring between objects


@pytest.mark.parametrize("release", [RELEASE, "staging"])
def test_objects_reference_each_other(chart, release):
    objects = render(chart, {"serviceMonitor": {"enabled": True}}, release=release)
    deployment = only(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service_account = only(objects, "ServiceAccount")["metadata"]["name"]
    assert pod_spec(objects)["serviceAccountName"] == service_account

    service = only(objects, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]

    monitor = only(objects, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"

    policy = only(objects, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()

    roles = {(o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] in {"Role", "ClusterRole"}}
    for binding in (only(objects, "ClusterRoleBinding"), only(objects, "RoleBinding")):
        assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) in roles
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": service_account, "namespace": NAMESPACE}]


def test_service_monitor_options(chart):
    monitor = only(render(chart, variant_values("service-monitor")), "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    endpoint = monitor["spec"]["endpoints"][0]
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("15s", "5s")


def test_network_policy_admits_only_configured_peers_on_8080(chart):
    policy = only(render(chart), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]


def test_network_policy_without_peers_denies_all_ingress(chart):
    policy = only(render(chart, variant_values("locked-down")), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == []


def test_network_policy_can_be_disabled(chart):
    kinds = {o["kind"] for o in render(chart, variant_values("no-network-policy"))}
    assert "NetworkPolicy" not in kinds


# --------------------------------------------------------------------------- RBAC


@pytest.mark.parametrize("variant", VARIANTS)
def test_rbac_has_no_wildcards(chart, variant):
    for obj in render(chart, variant_values(variant)):
        if obj["kind"] not in {"Role", "ClusterRole"}:
            continue
        assert "aggregationRule" not in obj
        for rule in obj["rules"]:
            assert "nonResourceURLs" not in rule
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), (obj["kind"], rule)
                assert not any("*" in item for item in rule.get(field, [])), (obj["kind"], rule)


def test_cluster_role_is_exactly_the_operators_needs(chart):
    cluster_role = only(render(chart), "ClusterRole")
    assert rules_by_resource(cluster_role) == EXPECTED_CLUSTER_RULES


@pytest.mark.parametrize("variant", VARIANTS)
def test_secrets_are_only_read_one_by_one_and_created(chart, variant):
    for obj in render(chart, variant_values(variant)):
        if obj["kind"] not in {"Role", "ClusterRole"}:
            continue
        for rule in obj["rules"]:
            if "secrets" in rule["resources"]:
                assert rule["apiGroups"] == [""]
                assert rule["resources"] == ["secrets"]
                # Never list or watch (that would read every Secret of the cluster).
                assert rule["verbs"] in (["get"], ["create"])


def test_secret_access_can_be_limited_to_named_secrets(chart):
    cluster_role = only(render(chart, variant_values("locked-down")), "ClusterRole")
    [rule] = [r for r in cluster_role["rules"] if "secrets" in r["resources"] and r["verbs"] == ["get"]]
    assert rule["resourceNames"] == ["kafka-credentials", "kafka-credentials-staging", "btc-eth-admin-token"]


def test_watch_namespaces_grants_a_role_in_each_and_nothing_cluster_wide(chart):
    objects = render(chart, variant_values("watch-namespaces"))
    assert not [o for o in objects if o["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    cluster_rules = rules_by_resource(only(render(chart), "ClusterRole"))
    service_account = only(objects, "ServiceAccount")["metadata"]["name"]
    for namespace in WATCHED:
        [role] = [o for o in objects if o["kind"] == "Role" and o["metadata"]["namespace"] == namespace]
        assert rules_by_resource(role) == cluster_rules, "the same permissions, in that namespace only"
        [binding] = [o for o in objects if o["kind"] == "RoleBinding" and o["metadata"]["namespace"] == namespace]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": service_account, "namespace": NAMESPACE}]
    env = {e["name"]: e.get("value") for e in pod_spec(objects)["containers"][0]["env"]}
    assert env["SPIKEWATCH_WATCH_NAMESPACES"] == "markets,markets-staging"
    # The leader-election Role stays in the release namespace.
    leases = [o for o in objects if o["kind"] == "Role" and o["metadata"]["namespace"] == NAMESPACE]
    assert len(leases) == 1
    # Cluster-wide by default: no SPIKEWATCH_WATCH_NAMESPACES at all.
    env = {e["name"] for e in pod_spec(render(chart))["containers"][0]["env"]}
    assert "SPIKEWATCH_WATCH_NAMESPACES" not in env


def test_the_workload_image_tag_is_a_value_of_its_own_not_the_operators_version(chart):
    def workload_tag(values):
        env = {e["name"]: e.get("value") for e in pod_spec(render(chart, values))["containers"][0]["env"]}
        return env["SPIKEWATCH_WORKLOAD_IMAGE_TAG"]

    assert workload_tag({}) == chart.values["workloadImage"]["tag"]
    # Upgrading the operator (its image) leaves the workloads' tag alone: no pipeline restarts.
    assert workload_tag({"image": {"tag": "9.9.9"}}) == chart.values["workloadImage"]["tag"]
    assert workload_tag(variant_values("managed-crd")) == "0.1.0-rc.2"


def test_a_managed_crd_is_the_generated_crd_kept_on_uninstall(chart):
    assert not [o for o in render(chart) if o["kind"] == "CustomResourceDefinition"], "off by default"
    crd = only(render(chart, variant_values("managed-crd")), "CustomResourceDefinition")
    generated = yaml.safe_load(GENERATED_CRD.read_text())
    assert crd["spec"] == generated["spec"], "Helm's fromYaml/toYaml round trip changes nothing"
    assert crd["metadata"]["name"] == generated["metadata"]["name"]
    annotations = crd["metadata"]["annotations"]
    assert annotations["helm.sh/resource-policy"] == "keep", "uninstalling must not delete every pipeline"
    assert "Prune=false" in annotations["argocd.argoproj.io/sync-options"]
    assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert kubernetes_validate_all([crd]) == set()


def test_the_crd_upgrade_steps_are_documented():
    readme = (CHART_DIR / "README.md").read_text()
    assert f"kubectl apply --server-side --force-conflicts -f charts/spikewatch-operator/crds/{CRD_FILE}" in readme
    assert "--set crds.manage=true --skip-crds" in readme
    notes = (CHART_DIR / "templates" / "NOTES.txt").read_text()
    assert "crds.manage" in notes


def test_leader_election_role_is_namespaced_to_the_operators_lease(chart):
    role = only(render(chart), "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert rules_by_resource(role) == {("coordination.k8s.io", "leases"): {"get", "create", "update"}}
    for rule in role["rules"]:
        if set(rule["verbs"]) != {"create"}:
            # Everything but create (which cannot be bound to a name) targets only our Lease.
            assert rule["resourceNames"] == [LEASE_NAME]


# --------------------------------------------------------------------------- values.schema.json


BAD_VALUES = {
    "negative replicas": ({"replicaCount": -1}, "replicaCount"),
    "zero replicas": ({"replicaCount": 0}, "replicaCount"),
    "replicas of the wrong type": ({"replicaCount": "two"}, "replicaCount"),
    "unknown top-level key": ({"replicas": 2}, "replicas"),
    "unknown nested key": ({"image": {"registry": "docker.io"}}, "registry"),
    "tag of the wrong type": ({"image": {"tag": 1.2}}, "tag"),
    "pull policy outside the enum": ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    "log format outside the enum": ({"logging": {"format": "xml"}}, "format"),
    "root user": ({"podSecurityContext": {"runAsUser": 0}}, "runAsUser"),
    "service port out of range": ({"service": {"port": 70000}}, "port"),
    "service type outside the enum": ({"service": {"type": "LoadBalancer"}}, "type"),
    "flag of the wrong type": ({"serviceMonitor": {"enabled": "yes"}}, "enabled"),
    "malformed scrape interval": ({"serviceMonitor": {"interval": "30 seconds"}}, "interval"),
    "malformed quantity": ({"resources": {"limits": {"memory": "lots"}}}, "memory"),
    "unknown resource": ({"resources": {"limits": {"gpu": 1}}}, "gpu"),
    "pdb that blocks drains": ({"podDisruptionBudget": {"enabled": True, "maxUnavailable": 0}}, "maxUnavailable"),
    "peer with an unknown selector": (
        {"networkPolicy": {"metricsFrom": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}},
        "ipBlock",
    ),
    "pod label overriding a selector label": ({"podLabels": {"app.kubernetes.io/name": "x"}}, "podLabels"),
    "invalid secret name": ({"rbac": {"kafkaSecretNames": ["Kafka_Creds"]}}, "kafkaSecretNames"),
    "invalid namespace name": ({"watchNamespaces": ["Markets"]}, "watchNamespaces"),
    "a namespace twice": ({"watchNamespaces": ["a", "a"]}, "watchNamespaces"),
    "empty workload tag": ({"workloadImage": {"tag": ""}}, "tag"),
    "workload tag with a slash": ({"workloadImage": {"tag": "a/b"}}, "tag"),
    "crd switch of the wrong type": ({"crds": {"manage": "yes"}}, "manage"),
}


@pytest.mark.parametrize("values,key", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_helm_rejects_bad_values_on_render(chart, values, key):
    # Helm validates the merged values against values.schema.json before rendering,
    # exactly as `helm install` does.
    with pytest.raises(helm_python.HelmValuesError) as error:
        chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
    assert key in str(error.value)


def test_schema_is_draft_07_and_closed_at_every_level():
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)

    def walk(node, where):
        if isinstance(node, dict):
            if "properties" in node:
                assert node.get("additionalProperties") is False, f"{where} accepts unknown keys"
            for key, child in node.items():
                walk(child, f"{where}/{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{where}/{i}")

    walk(schema, "#")


def test_schema_describes_every_default_key(chart):
    """A key added to values.yaml without a schema entry is rejected by the closed schema."""
    chart.validate_schema(chart.values)
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    assert set(schema["properties"]) == set(chart.values)


# --------------------------------------------------------------------------- documentation


def leaf_paths(values: dict, prefix: str = "") -> list[str]:
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            paths.extend(leaf_paths(value, f"{path}."))
        else:
            paths.append(path)
    return paths


def test_every_values_key_is_commented():
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    key_line = re.compile(r"^\s*(- )?[\w./-]+:(\s|$)")
    for number, line in enumerate(lines):
        if not key_line.match(line) or "#" in line:
            continue
        previous = lines[number - 1].strip() if number else ""
        assert previous.startswith("#"), f"values.yaml:{number + 1} `{line.strip()}` has no comment"


def test_readme_documents_every_value_and_the_install_command(chart):
    readme = (CHART_DIR / "README.md").read_text()
    # networkPolicy.metricsFrom is a list: documented as one entry, not per selector label.
    documented = {p for p in leaf_paths(chart.values) if not p.startswith("networkPolicy.metricsFrom.")}
    missing = [p for p in sorted(documented) if f"`{p}`" not in readme]
    assert missing == [], f"README.md values table lacks {missing}"
    assert (
        "helm install spikewatch-operator charts/spikewatch-operator -n spikewatch-system --create-namespace" in readme
    )
    for variant in VARIANT_FILES:
        assert variant.name in readme, f"README.md does not mention ci/{variant.name}"


def test_notes_explain_kubectl_get_vp(chart):
    notes = chart.render(name=RELEASE, namespace=NAMESPACE)[f"{RELEASE}/templates/NOTES.txt"]
    assert "kubectl get vp" in notes
    assert f"-n {NAMESPACE} rollout status deployment/{RELEASE}" in notes


# --------------------------------------------------------------------------- the CRD


RESYNC = (
    f"the chart's CRD must equal the generated crds/{CRD_FILE}; resync it with: "
    f"cp crds/{CRD_FILE} charts/spikewatch-operator/crds/{CRD_FILE}"
)


def test_chart_crd_equals_the_generated_crd():
    assert GENERATED_CRD.is_file(), f"crds/{CRD_FILE} is missing: run `spikewatch-operator crdgen`"
    assert CHART_CRD.is_file(), RESYNC
    assert CHART_CRD.read_bytes() == GENERATED_CRD.read_bytes(), RESYNC


def test_chart_crd_is_loaded_by_helm_and_valid(chart):
    assert CHART_CRD.is_file(), RESYNC
    # What Helm installs before the templates: the chart's crds/ as it loaded them.
    crds = {c["filename"]: c["data"] for c in chart.crds}
    assert list(crds) == [f"spikewatch-operator/crds/{CRD_FILE}"]
    [crd] = [d for d in yaml.safe_load_all(crds[f"spikewatch-operator/crds/{CRD_FILE}"]) if d]
    assert kubernetes_validate_all([crd]) == set()
    assert crd["metadata"]["name"] == "volatilitypipelines.spikewatch.io"
    # NOTES.txt tells users to run `kubectl get vp`.
    assert "vp" in crd["spec"]["names"]["shortNames"]
