"""The nginx that guards the Dagster UI: its configuration, rendered from
infra/proxy/nginx.conf.j2, and the command that runs it as an unprivileged foreground process.

Everything nginx writes (pid file, logs, temporary files) lives in one state directory, so it runs
without root on a port above 1023: `nginx -p <state_dir> -c <state_dir>/nginx.conf`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from latam_dagster.settings import UiProxySettings
from latam_dagster.uiproxy.users import UserStore

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "proxy" / "nginx.conf.j2"
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class NginxMissing(RuntimeError):
    """nginx is not installed."""


@dataclass(frozen=True)
class ProxyConfig:
    """What the configuration needs: where to listen, where the two webservers are, where the
    users and the state live, and the TLS pair (both or neither)."""

    listen_host: str
    listen_port: int
    analyst_upstream: str  # host:port of the read-only webserver
    operator_upstream: str  # host:port of the full webserver
    auth_dir: Path
    state_dir: Path
    tls_cert: Path | None = None
    tls_key: Path | None = None
    worker_processes: int = 2
    api_upstream: str | None = None
    """host:port of the REST API: with `api_port`, a second server of the proxy terminates TLS
    for it (no basic auth there: the API checks its own keys)."""
    api_port: int | None = None

    @classmethod
    def from_settings(
        cls,
        settings: UiProxySettings,
        port: int,
        analyst_upstream: str,
        operator_upstream: str,
        state_dir: Path,
    ) -> ProxyConfig:
        return cls(
            listen_host=settings.host,
            listen_port=port,
            analyst_upstream=analyst_upstream,
            operator_upstream=operator_upstream,
            auth_dir=Path(settings.auth_dir),
            state_dir=state_dir,
            tls_cert=Path(settings.tls_cert) if settings.tls_cert else None,
            tls_key=Path(settings.tls_key) if settings.tls_key else None,
        )

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def url(self) -> str:
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        # a wildcard listener is reached on loopback from this machine (a URL to show, not a bind)
        shown = "127.0.0.1" if host in ("0.0.0.0", "[::]") else host  # nosec B104
        return f"{'https' if self.tls else 'http'}://{shown}:{self.listen_port}"

    @property
    def conf_path(self) -> Path:
        return self.state_dir / "nginx.conf"


def _worker_user() -> str | None:
    """Under root, the workers keep root's account rather than nginx's default `nobody`, which
    could not read the users' files (owner-only). Otherwise nginx cannot switch users anyway."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwuid(os.geteuid())
    import grp

    return f"{entry.pw_name} {grp.getgrgid(entry.pw_gid).gr_name}"


def _token(value: object) -> str:
    """A path or address as one nginx token: nothing that nginx would split or interpret."""
    text = str(value)
    if not text or any(c.isspace() or c in "\"'\\;{}$#" for c in text):
        raise ValueError(f"{text!r} cannot appear in the nginx configuration (no spaces or quotes)")
    return text


def render(config: ProxyConfig) -> str:
    """The nginx configuration text."""
    import jinja2

    if config.tls and not (config.tls_cert and config.tls_key):
        raise ValueError("TLS needs both a certificate and a key")
    if (config.api_upstream is None) != (config.api_port is None):
        raise ValueError("the API needs both an upstream and a port on the proxy")
    host = f"[{config.listen_host}]" if ":" in config.listen_host else config.listen_host
    # an nginx configuration, not HTML: HTML escaping would corrupt it, and every value rendered
    # is a path, port or name from the settings (never request data)
    env = jinja2.Environment(  # nosec B701
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True
    )
    template = env.from_string(TEMPLATE.read_text())
    return template.render(
        worker_user=_worker_user(),
        worker_processes=int(config.worker_processes),
        state_dir=_token(config.state_dir.resolve()),
        auth_dir=_token(config.auth_dir.resolve()),
        listen=_token(f"{host}:{int(config.listen_port)}"),
        analyst_upstream=_token(config.analyst_upstream),
        operator_upstream=_token(config.operator_upstream),
        tls=config.tls,
        tls_cert=_token(config.tls_cert.resolve()) if config.tls_cert else None,
        tls_key=_token(config.tls_key.resolve()) if config.tls_key else None,
        api_upstream=_token(config.api_upstream) if config.api_upstream else None,
        api_listen=_token(f"{host}:{int(config.api_port)}") if config.api_port else None,
    )


def write_config(config: ProxyConfig) -> Path:
    """Create the state directory and the users' files, write the configuration; returns it."""
    for sub in ("logs", "tmp"):
        (config.state_dir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    UserStore(config.auth_dir).ensure()
    config.conf_path.write_text(render(config))
    return config.conf_path


def nginx_binary() -> str:
    """The nginx executable (Debian installs it in /usr/sbin, outside a user's PATH)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise NginxMissing(
            "nginx is not installed: `apt-get install nginx-light` (or run infra/ci/install-tools.sh)"
        )
    return found


def command(config: ProxyConfig) -> list[str]:
    """nginx in the foreground with its own prefix and configuration."""
    return [nginx_binary(), "-p", f"{config.state_dir.resolve()}/", "-c", str(config.conf_path)]


def check(config: ProxyConfig) -> None:
    """`nginx -t` on the written configuration; raises with nginx's own message when invalid."""
    proc = subprocess.run(
        [*command(config), "-t", "-q"], capture_output=True, text=True, timeout=30
    )
    if proc.returncode != 0:
        raise ValueError(f"nginx refuses its configuration: {proc.stderr.strip()}")


def reload(pid: int) -> None:
    """Make a running nginx master re-read its configuration (the role map)."""
    os.kill(pid, signal.SIGHUP)
