#!/usr/bin/python3 -I
"""The HEALTHCHECK of the latam/platform image (installed as /usr/local/bin/latam-healthcheck).

It checks the process the container was started as, read from PID 1's command line
(`tini -- latam-entrypoint COMMAND ...`): a role of the entrypoint (`api`, `code-location`, ...)
or the same process spelled out (`latam api ...`, `dagster api grpc ...`, `dagster-webserver ...`,
`dagster-daemon run ...`). It connects where that process listens: `--host`/`-h` and
`--port`/`-p` of its command line when given, else the environment variables the entrypoint
reads:

  api            GET /healthz       LATAM_API_HOST:LATAM_API_PORT answers 200
  exporter       GET /metrics       LATAM_EXPORTER_HOST:LATAM_EXPORTER_PORT answers 200
  webserver      GET /server_info   DAGSTER_WEBSERVER_HOST:DAGSTER_WEBSERVER_PORT answers 200
  code-location  `dagster api grpc-health-check` on DAGSTER_GRPC_HOST:DAGSTER_GRPC_PORT
  daemon         `dagster-daemon liveness-check` (recent heartbeats in the instance)
  ui-proxy       GET / on LATAM_UI_HOST:LATAM_UI_PORT answers at all (401 without a login)

Anything else (`migrate`, `api-key ...`, a shell) has nothing to check: healthy. Exit status 0 is
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


ROLES = ("api", "exporter", "webserver", "code-location", "daemon", "ui-proxy")


def started() -> list[str]:
    """The command the entrypoint received (PID 1 is `tini -- latam-entrypoint ...`)."""
    try:
        with open("/proc/1/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []
    for i, arg in enumerate(argv):
        if os.path.basename(arg) == ENTRYPOINT:
            return argv[i + 1 :]
    return []


def classify(argv: list[str]) -> tuple[str | None, list[str]]:
    """(role, the arguments after the words that name it) of a command line."""
    if not argv:
        return None, []
    first, rest = os.path.basename(argv[0]), argv[1:]
    if first in ROLES:
        return first, rest
    if first == "latam" and rest[:1] in (["api"], ["exporter"]):
        return rest[0], rest[1:]
    if first == "dagster" and rest[:2] == ["api", "grpc"]:
        return "code-location", rest[2:]
    if first == "dagster-webserver":
        return "webserver", rest
    if first == "dagster-daemon" and rest[:1] == ["run"]:
        return "daemon", rest[1:]
    return None, rest


def option(args: list[str], *names: str) -> str | None:
    """The value of the first of the options `names` in `args` (`--port 80` or `--port=80`)."""
    for i, arg in enumerate(args):
        if arg in names and i + 1 < len(args):
            return args[i + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def address(args: list[str], host_var: str, port_var: str) -> tuple[str, str]:
    """Where to connect: the command line's listen address, else the environment's; a wildcard
    listener is reached on loopback."""
    host = option(args, "--host", "-h") or os.environ.get(host_var) or "127.0.0.1"
    port = option(args, "--port", "-p") or os.environ[port_var]
    if host in ("0.0.0.0", "::", "[::]", "*"):  # noqa: S104 (a wildcard answers on loopback)
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host, port


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


def dagster_env() -> dict[str, str]:
    """The environment a Dagster command needs, as the entrypoint prepares it: the Dagster
    database URL from LATAM_DAGSTER_PG_URL (or the file LATAM_DAGSTER_PG_URL_FILE names) in the
    postgresql+psycopg2:// form."""
    env = dict(os.environ)
    url = env.get("LATAM_DAGSTER_PG_URL")
    path = env.pop("LATAM_DAGSTER_PG_URL_FILE", None)
    if not url and path:
        with open(path, encoding="utf-8") as f:
            url = f.read().rstrip("\r\n")
    for prefix in ("postgresql://", "postgres://"):
        if url and url.startswith(prefix):
            url = "postgresql+psycopg2://" + url[len(prefix) :]
    if url:
        env["LATAM_DAGSTER_PG_URL"] = url
    return env


def command(args: list[str]) -> str | None:
    """None when the command exits 0, else its last line of output."""
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, timeout=25, check=False, env=dagster_env()
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{args[0]}: {exc}"
    if proc.returncode == 0:
        return None
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return f"{' '.join(args[:3])}: {lines[-1] if lines else f'exit status {proc.returncode}'}"


def check(name: str | None, args: list[str]) -> str | None:
    if name == "api":
        host, port = address(args, "LATAM_API_HOST", "LATAM_API_PORT")
        return http(f"http://{host}:{port}/healthz")
    if name == "exporter":
        host, port = address(args, "LATAM_EXPORTER_HOST", "LATAM_EXPORTER_PORT")
        return http(f"http://{host}:{port}/metrics")
    if name == "webserver":
        host, port = address(args, "DAGSTER_WEBSERVER_HOST", "DAGSTER_WEBSERVER_PORT")
        return http(f"http://{host}:{port}/server_info")
    if name == "code-location":
        host, port = address(args, "DAGSTER_GRPC_HOST", "DAGSTER_GRPC_PORT")
        grpc_host = host.strip("[]")
        return command(["dagster", "api", "grpc-health-check", "--host", grpc_host, "--port", port])
    if name == "daemon":
        return command(["dagster-daemon", "liveness-check"])
    if name == "ui-proxy":
        host, port = address([], "LATAM_UI_HOST", "LATAM_UI_PORT")
        scheme = "https" if os.environ.get("LATAM_UI_TLS_CERT") else "http"
        return http(f"{scheme}://{host}:{port}/", any_status=True)
    return None


def main() -> int:
    name, args = classify(started())
    problem = check(name, args)
    if problem:
        print(f"{name}: unhealthy: {problem}")
        return 1
    print(f"{name or 'command'}: healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
