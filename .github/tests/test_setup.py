"""The set-up scripts: the README's first command (`scripts/setup`) installs only what
`spikewatch run` needs, without root; the test suite's set-up installs the rest; the ONNX Runtime
pins agree everywhere the library comes from.

Run: .venv/bin/python -m pytest .github
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\[\]-]+)==([^\s#]+)\s*(#.*)?", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def commands(script: Path) -> list[str]:
    """The script's lines that run something (comments and blank lines left out)."""
    return [
        line.strip() for line in script.read_text().splitlines() if line.strip() and not line.strip().startswith("#")
    ]


def test_the_first_command_installs_onnx_runtime_only_and_never_needs_root():
    run = pins(REPO_ROOT / "requirements-run.txt")
    assert list(run) == ["onnxruntime"], run
    lines = commands(REPO_ROOT / "scripts" / "setup")
    installs = [line for line in lines if "pip install" in line]
    assert installs and all("-r requirements-run.txt" in line for line in installs), installs
    for forbidden in ("sudo", "apt-get", "requirements.txt ", "models/requirements.txt"):
        assert not any(forbidden in line for line in lines), f"scripts/setup runs {forbidden!r}"


def test_the_test_suite_installs_everything_else():
    lines = commands(REPO_ROOT / "scripts" / "setup-test")
    assert lines[lines.index("scripts/setup")] == "scripts/setup", "the run environment first"
    assert any("-r requirements.txt" in line for line in lines)
    assert "-r models/requirements.txt" in (REPO_ROOT / "requirements.txt").read_text()
    assert "scripts/setup-test || exit 1" in commands(REPO_ROOT / "scripts" / "test")


def test_onnx_runtime_pins_agree():
    run = pins(REPO_ROOT / "requirements-run.txt")["onnxruntime"]
    assert pins(REPO_ROOT / "models" / "requirements.txt")["onnxruntime"] == run
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(rf"onnxruntime=={re.escape(run)}\b", dockerfile), "docker/Dockerfile pins another ONNX Runtime"
