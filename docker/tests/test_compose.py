"""Static checks of the Docker Compose stack (docker/compose.yaml), for machines without a
Docker engine: the Compose file against the Compose Specification's JSON schema (vendored in
compose-spec/), the Prometheus config with Prometheus's own `promtool`, the Grafana
provisioning files against the structure Grafana reads (written down below as JSON schemas),
and the dashboard byte for byte against the operator's.

Run: .venv/bin/python -m pytest docker/tests
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER = REPO_ROOT / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
COMPOSE_SCHEMA = Path(__file__).resolve().parent / "compose-spec" / "compose-spec.json"
PROMETHEUS_CONFIG = DOCKER / "prometheus" / "prometheus.yml"
RULES = DOCKER / "prometheus" / "spikewatch-rules.yaml"
DATASOURCES = DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
DASHBOARD_PROVIDERS = DOCKER / "grafana" / "provisioning" / "dashboards" / "spikewatch.yaml"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "spikewatch.json"
# The operator's dashboard ConfigMap for examples/pipeline.yaml, as its golden-file test pins it.
OPERATOR_DASHBOARD_SNAPSHOT = (
    REPO_ROOT / "operator" / "tests" / "snapshots" / "external-kafka__configmap__btc-eth-dashboard.snap"
)
WORKLOADS = ["ingest", "replay", "featurize", "predict", "serve"]
# A full version tag (`v3.5.0`, `4.1.0`) or a digest; never `latest`, never a bare major.
PINNED_IMAGE = re.compile(r"^[a-z0-9./-]+(:v?\d+\.\d+\.\d+)?(@sha256:[0-9a-f]{64})?$")


def load(path: Path):
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load(COMPOSE_FILE)


def validator(schema: dict):
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def errors(schema: dict, document) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator(schema).iter_errors(document)]


# --- the Compose file -------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification(compose):
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    assert errors(schema, compose) == []


def test_the_schema_check_rejects_what_compose_would(compose):
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(compose))
    broken["services"]["kafka"]["healthcheck"]["retry"] = 3  # typo of `retries`
    broken["services"]["serve"]["ports"] = "8000:8000"  # a string, not a list
    found = errors(schema, broken)
    assert any("retry" in e for e in found), found
    assert any("services.serve.ports" in e for e in found), found


def test_stack_has_kafka_the_four_workloads_monitoring_and_mlflow(compose):
    services = compose["services"]
    assert set(services) == {"kafka", *WORKLOADS, "prometheus", "grafana", "mlflow"}
    for name in WORKLOADS:
        assert services[name]["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}, name
        assert services[name]["command"][0] == name, name
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy", name
    assert (DOCKER / "Dockerfile").is_file()


def test_replay_runs_instead_of_ingest_by_profile(compose):
    services = compose["services"]
    assert services["ingest"]["profiles"] == ["live"]
    assert services["replay"]["profiles"] == ["replay"]
    for name, service in services.items():
        if name not in ("ingest", "replay"):
            assert "profiles" not in service, f"{name} must run in every profile"
    env = (DOCKER / ".env").read_text(encoding="utf-8")
    assert re.search(r"^COMPOSE_PROFILES=live$", env, re.MULTILINE), env


def test_every_service_has_a_health_check_and_no_host_networking(compose):
    for name, service in compose["services"].items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        assert service.get("network_mode") != "host", name
        assert "host" not in str(service.get("networks", "")), name


def test_images_are_pinned_to_a_full_version(compose):
    for name, service in compose["services"].items():
        image = service["image"]
        if "build" in service:
            assert image == "spikewatch:local", name
            continue
        assert PINNED_IMAGE.match(image) and ":" in image.split("/")[-1], f"{name}: {image} is not pinned"


def test_state_lives_in_named_volumes_and_bind_mounts_exist(compose):
    declared = set(compose["volumes"])
    used = set()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, _target = volume.split(":")[:2]
            if source.startswith("./"):
                assert (DOCKER / source).exists(), f"{name}: {source} does not exist"
                assert volume.endswith(":ro"), f"{name}: configuration is mounted read-only"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared == {"kafka-data", "prometheus-data", "grafana-data", "mlflow-data"}


def test_workload_config_points_at_the_stacks_kafka_and_serve_streams_predictions(compose):
    config = load(DOCKER / "spikewatch" / "config.yaml")
    assert config["kafka"]["bootstrap_servers"] == "kafka:9092"
    assert "PLAINTEXT://kafka:9092" in compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    serve = compose["services"]["serve"]
    assert serve["environment"]["SPIKEWATCH_PREDICTIONS_FROM_KAFKA"] == "true"
    assert serve["environment"]["SPIKEWATCH_CONFIG"] == "/etc/spikewatch/config.yaml"
    assert "8000:8000" in serve["ports"]


# --- Prometheus -------------------------------------------------------------------------------


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool not found: run scripts/setup (it installs Debian's prometheus package)"
    return found


def test_promtool_accepts_the_prometheus_config_and_its_rules():
    result = subprocess.run(
        [promtool(), "check", "config", PROMETHEUS_CONFIG.name],
        cwd=PROMETHEUS_CONFIG.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rules = sum(len(group["rules"]) for group in load(RULES)["groups"])
    assert rules >= 5, "the SLO alerts and the quality alert"
    assert f"SUCCESS: {rules} rules found" in output, output


def test_prometheus_scrapes_every_workload_with_the_labels_the_rules_select(compose):
    config = load(PROMETHEUS_CONFIG)
    targets = {}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                targets[target] = static.get("labels", {})
    ports = {"serve": 8000}
    for workload in WORKLOADS:
        target = f"{workload}:{ports.get(workload, 8001)}"
        assert target in targets, f"{target} is not scraped"
        assert targets[target]["namespace"] == "spikewatch", target
    services = {labels.get("service") for labels in targets.values()}
    selected = set()
    for text in (RULES.read_text(encoding="utf-8"), DASHBOARD.read_text(encoding="utf-8")):
        for match in re.finditer(r'service=~?\\?"([^"\\]+)\\?"', text):
            selected.update(match.group(1).split("|"))
    assert selected, "the rules and the dashboard select services"
    assert selected <= services, f"selected but never scraped: {selected - services}"
    prometheus = compose["services"]["prometheus"]
    assert "./prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


# --- Grafana ----------------------------------------------------------------------------------

# What Grafana reads from provisioning/datasources/*.yaml (apiVersion 1): the fields used here
# and their types; unknown fields are refused, so a misspelt one fails instead of being ignored.
DATASOURCES_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["apiVersion", "datasources"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": 1},
        "datasources": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "type", "access", "url"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "type": {"enum": ["prometheus"]},
                    "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
                    "access": {"enum": ["proxy", "direct"]},
                    "url": {"type": "string", "pattern": "^https?://"},
                    "isDefault": {"type": "boolean"},
                    "editable": {"type": "boolean"},
                    "orgId": {"type": "integer"},
                    "jsonData": {"type": "object"},
                },
            },
        },
    },
}

# What Grafana reads from provisioning/dashboards/*.yaml (apiVersion 1, file providers).
DASHBOARD_PROVIDERS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["apiVersion", "providers"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": 1},
        "providers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "type", "options"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "type": {"const": "file"},
                    "orgId": {"type": "integer"},
                    "folder": {"type": "string"},
                    "folderUid": {"type": "string"},
                    "disableDeletion": {"type": "boolean"},
                    "allowUiUpdates": {"type": "boolean"},
                    "updateIntervalSeconds": {"type": "integer", "minimum": 1},
                    "options": {
                        "type": "object",
                        "required": ["path"],
                        "additionalProperties": False,
                        "properties": {
                            "path": {"type": "string", "pattern": "^/"},
                            "foldersFromFilesStructure": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}

# The parts of a dashboard JSON model Grafana needs to load and provision it.
DASHBOARD_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["uid", "title", "panels", "schemaVersion"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer"},
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "title", "gridPos", "targets"],
                "properties": {
                    "targets": {
                        "type": "array",
                        "items": {"type": "object", "required": ["refId", "expr"]},
                    },
                },
            },
        },
    },
}


def test_grafana_datasource_is_the_stacks_prometheus(compose):
    datasources = load(DATASOURCES)
    assert errors(DATASOURCES_SCHEMA, datasources) == []
    (prometheus,) = datasources["datasources"]
    assert prometheus["url"] == "http://prometheus:9090"
    assert prometheus["isDefault"] is True, "the dashboard's datasource variable picks the default"
    assert "9090:9090" in compose["services"]["prometheus"]["ports"]


def test_grafana_loads_the_dashboard_from_where_compose_mounts_it(compose):
    providers = load(DASHBOARD_PROVIDERS)
    assert errors(DASHBOARD_PROVIDERS_SCHEMA, providers) == []
    (provider,) = providers["providers"]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    assert errors(DASHBOARD_SCHEMA, json.loads(DASHBOARD.read_text(encoding="utf-8"))) == []


def test_the_provisioning_schemas_refuse_mistakes():
    datasources = load(DATASOURCES)
    datasources["datasources"][0]["URL"] = datasources["datasources"][0].pop("url")
    assert errors(DATASOURCES_SCHEMA, datasources)
    providers = load(DASHBOARD_PROVIDERS)
    providers["providers"][0]["options"]["path"] = "relative/path"
    assert errors(DASHBOARD_PROVIDERS_SCHEMA, providers)


def operator_dashboard() -> str:
    """The dashboard JSON in the operator's ConfigMap golden file (insta: a `---` header, then YAML)."""
    text = OPERATOR_DASHBOARD_SNAPSHOT.read_text(encoding="utf-8")
    _, header, body = text.split("---\n", 2)
    assert "operator/tests/generated_files.rs" in header
    data = yaml.safe_load(body)["data"]
    (dashboard,) = data.values()
    return dashboard


def test_the_dashboard_is_the_operators_byte_for_byte():
    assert DASHBOARD.read_bytes() == operator_dashboard().encode("utf-8"), (
        "docker/grafana/dashboards/spikewatch.json is stale: run scripts/generate"
    )
