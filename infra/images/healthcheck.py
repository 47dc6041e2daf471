#!/usr/bin/python3 -I
"""The HEALTHCHECK of the latam/platform image (installed as /usr/local/bin/latam-healthcheck).

It checks the process the container was started as: the role `latam-entrypoint` received, read
from PID 1's command line (`tini -- latam-entrypoint ROLE ...`), and the address that role
listens on, from the same environment variables the entrypoint reads:

  api            GET /healthz       on LATAM_API_HOST:LATAM_API_PORT answers 200
  exporter       GET /metrics       on LATAM_EXPORTER_HOST:LATAM_EXPORTER_PORT answers 200
  webserver      GET /server_info   on DAGSTER_WEBSERVER_HOST:DAGSTER_WEBSERVER_PORT answers 200
  code-location  `dagster api grpc-health-check` on DAGSTER_GRPC_HOST:DAGSTER_GRPC_PORT
  daemon         `dagster-daemon liveness-check` (recent heartbeats in the instance)
  ui-proxy       GET / on LATAM_UI_HOST:LATAM_UI_PORT answers at all (401 without a login)

A one-shot command (`migrate`, `api-key ...`) has nothing to check: healthy. Exit status 0 is
healthy, 1 unhealthy, with one line saying why. Standard library only: it runs every interval.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

ENTRYPOINT = "latam-entrypoint"


def role() -> str | None:
    """The role PID 1 started, or None when the container runs something else."""
    try:
        with open("/proc/1/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None
    for i, arg in enumerate(argv):
        if os.path.basename(arg) == ENTRYPOINT:
            return argv[i + 1] if i + 1 < len(argv) else None
    return None


def address(host_var: str, port_var: str) -> tuple[str, str]:
    """Where to connect: the listen address, with a wildcard reached on loopback."""
    host = os.environ.get(host_var) or "127.0.0.1"
    if host in ("0.0.0.0", "::", "[::]", "*"):  # a wildcard listener answers on loopback too
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host, os.environ[port_var]


def http(url: str, any_status: bool = False) -> str | None:
    """None when `url` answers 200 (or anything at all with `any_status`), else why not."""
    context = ssl._create_unverified_context()  # liveness of the local listener, not its identity
    try:
        with urllib.request.urlopen(url, timeout=8, context=context) as response:  # noqa: S310
            return None if response.status == 200 else f"{url} answered {response.status}"
    except urllib.error.HTTPError as exc:
        return None if any_status else f"{url} answered {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{url}: {exc}"


def command(args: list[str]) -> str | None:
    """None when the command exits 0, else its last line of output."""
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=25, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{args[0]}: {exc}"
    if proc.returncode == 0:
        return None
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return f"{' '.join(args[:3])}: {lines[-1] if lines else f'exit status {proc.returncode}'}"


def check(name: str | None) -> str | None:
    if name == "api":
        host, port = address("LATAM_API_HOST", "LATAM_API_PORT")
        return http(f"http://{host}:{port}/healthz")
    if name == "exporter":
        host, port = address("LATAM_EXPORTER_HOST", "LATAM_EXPORTER_PORT")
        return http(f"http://{host}:{port}/metrics")
    if name == "webserver":
        host, port = address("DAGSTER_WEBSERVER_HOST", "DAGSTER_WEBSERVER_PORT")
        return http(f"http://{host}:{port}/server_info")
    if name == "code-location":
        host, port = address("DAGSTER_GRPC_HOST", "DAGSTER_GRPC_PORT")
        grpc_host = host.strip("[]")
        return command(["dagster", "api", "grpc-health-check", "--host", grpc_host, "--port", port])
    if name == "daemon":
        return command(["dagster-daemon", "liveness-check"])
    if name == "ui-proxy":
        host, port = address("LATAM_UI_HOST", "LATAM_UI_PORT")
        scheme = "https" if os.environ.get("LATAM_UI_TLS_CERT") else "http"
        return http(f"{scheme}://{host}:{port}/", any_status=True)
    return None


def main() -> int:
    name = role()
    problem = check(name)
    if problem:
        print(f"{name}: unhealthy: {problem}")
        return 1
    print(f"{name or 'command'}: healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
