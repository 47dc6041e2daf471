"""Run the platform's images with podman for the image tests: one-shot commands and long-running
containers on the host's network (each process listens on a loopback port of its own), waited on
through their HEALTHCHECK, and removed with their volumes at the end whatever happened."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = ROOT / "infra" / "images" / "containers.conf"
IMAGE = os.environ.get("PLATFORM_IMAGE", "localhost/latam/platform") + ":latest"


def podman_env() -> dict[str, str]:
    """The environment podman runs with: the project's containers.conf unless one is set."""
    return {"CONTAINERS_CONF": str(CONTAINERS_CONF), **os.environ}


def podman(
    *args: str, input: str | None = None, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`podman ARGS`; raises with podman's output when it fails and `check` is set."""
    proc = subprocess.run(
        ["podman", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=podman_env(),
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args[:3])} ... exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
        )
    return proc


def image_exists(image: str = IMAGE) -> bool:
    return podman("image", "exists", image, check=False).returncode == 0


class Stack:
    """Containers and volumes of one test, named `<prefix>-<role>`, all removed by `close()`."""

    def __init__(self, prefix: str, env: Mapping[str, str], image: str = IMAGE):
        self.prefix = prefix
        self.env = dict(env)
        self.image = image
        self.containers: list[str] = []
        self.volumes: list[str] = []

    def _env_args(self, extra: Mapping[str, str]) -> list[str]:
        return [arg for k, v in {**self.env, **extra}.items() for arg in ("--env", f"{k}={v}")]

    def volume(self, name: str) -> str:
        """A named volume of this test; a new volume takes the owner of the image's directory it
        is first mounted on (the image's non-root user)."""
        full = f"{self.prefix}-{name}"
        podman("volume", "create", full)
        self.volumes.append(full)
        return full

    def run(
        self,
        *command: str,
        env: Mapping[str, str] = {},
        mounts: Sequence[str] = (),
        input: str | None = None,
        timeout: float = 180,
    ) -> subprocess.CompletedProcess[str]:
        """A one-shot container (`--rm`) running `command`; returns its outcome, unchecked."""
        args = ["run", "--rm", "--network=host", "--no-healthcheck"]
        if input is not None:
            args.append("--interactive")
        for mount in mounts:
            args += ["--volume", mount]
        return podman(
            *args, *self._env_args(env), self.image, *command,
            input=input, timeout=timeout, check=False,
        )  # fmt: skip

    def start(
        self, role: str, *command: str, env: Mapping[str, str] = {}, mounts: Sequence[str] = ()
    ) -> str:
        """A long-running container `<prefix>-<role>` (detached) running `command`."""
        name = f"{self.prefix}-{role}"
        args = ["run", "--detach", "--name", name, "--network=host", "--label", "latam.test=images"]
        for mount in mounts:
            args += ["--volume", mount]
        self.containers.append(name)
        podman(*args, *self._env_args(env), self.image, *command)
        return name

    def running(self, name: str) -> bool:
        proc = podman("inspect", "--format", "{{.State.Running}}", name, check=False)
        return proc.stdout.strip() == "true"

    def logs(self, name: str, lines: int = 40) -> str:
        proc = podman("logs", "--tail", str(lines), name, check=False)
        return proc.stdout + proc.stderr

    def diagnostics(self) -> str:
        """The last log lines of every container, for a failure's message."""
        return "\n".join(f"--- {name}:\n{self.logs(name)}" for name in self.containers)

    def wait_healthy(self, name: str, timeout: float) -> float:
        """Run the container's HEALTHCHECK until it passes; returns the seconds it took. Fails at
        once when the container exits."""
        started = time.monotonic()
        last = ""
        while time.monotonic() - started < timeout:
            if not self.running(name):
                raise AssertionError(f"{name} exited:\n{self.logs(name, 80)}")
            proc = podman("healthcheck", "run", name, check=False, timeout=60)
            if proc.returncode == 0:
                return time.monotonic() - started
            last = (proc.stdout + proc.stderr).strip()
            time.sleep(2)
        raise AssertionError(
            f"{name} not healthy within {timeout:.0f} s ({last}):\n{self.logs(name, 80)}"
        )

    def close(self) -> None:
        """Stop and remove every container and volume of this test (SIGTERM, then SIGKILL)."""
        if self.containers:
            podman("rm", "--force", "--time", "10", *self.containers, check=False, timeout=180)
        if self.volumes:
            podman("volume", "rm", "--force", *self.volumes, check=False)
        self.containers, self.volumes = [], []
