"""One RabbitMQ user per source system, through the management HTTP API (so it works against a
remote broker too).

Each user is named after its system, tagged `latam-source` (a tag that grants no management
access; it marks the users this module manages) and has, in the topology's vhost:
- permissions: configure nothing, write the events exchange only, read nothing;
- topic permissions on the events exchange: write only the system's routing keys.

The password comes from `<secrets dir>/<name>.password` when that file exists (mode 0600, else it
is refused), else a new one is generated and written there with mode 0600. Provisioning is
idempotent: the password is checked against the broker's hash, so a second run changes nothing.
Users of systems no longer in the registry are listed as stale and deleted only with `prune`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from latam_dagster.observability.broker import management_endpoint
from latam_dagster.sources.registry import Registry, SourceSystem

MANAGED_TAG = "latam-source"
NOTHING = "^$"


class ProvisionError(RuntimeError):
    """Provisioning cannot go on; the message says why (never a password)."""


class ManagementAPI:
    """The calls of the RabbitMQ management HTTP API that provisioning needs."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        try:
            self.base, self._auth = management_endpoint(base_url)
        except ValueError as exc:
            raise ProvisionError(str(exc)) from None
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        if self._auth:
            request.add_header("Authorization", f"Basic {self._auth}")
        try:
            # the scheme was checked to be http or https in __init__
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # nosec B310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and method == "GET":
                return None
            raise ProvisionError(
                f"RabbitMQ management API: {method} {path.split('?')[0]} answered {exc.code} "
                f"{exc.reason}"
                + (" (check the credentials of the management URL)" if exc.code == 401 else "")
            ) from None
        except OSError as exc:
            raise ProvisionError(
                f"RabbitMQ management API not reachable at {self.base} ({exc}); enable it "
                "(rabbitmq-plugins enable rabbitmq_management) or set "
                "LATAM_SOURCES_MANAGEMENT_URL"
            ) from None
        return json.loads(raw) if raw else None

    @staticmethod
    def q(value: str) -> str:
        return urllib.parse.quote(value, safe="")


@dataclass(frozen=True)
class Wanted:
    """The permissions one system's user should have in the vhost."""

    configure: str
    write: str
    read: str
    topic_write: str


def wanted(system: SourceSystem, exchange: str) -> Wanted:
    return Wanted(NOTHING, "^" + re.escape(exchange) + "$", NOTHING, system.write_topic_pattern())


def password_matches(password_hash: str, algorithm: str, password: str) -> bool:
    """Whether `password` is the one RabbitMQ stored as `password_hash` (salt + digest)."""
    digests = {
        "rabbit_password_hashing_sha256": hashlib.sha256,
        "rabbit_password_hashing_sha512": hashlib.sha512,
    }
    digest = digests.get(algorithm)
    if digest is None or not password_hash:
        return False
    try:
        raw = base64.b64decode(password_hash)
    except ValueError:
        return False
    salt, stored = raw[:4], raw[4:]
    return hmac.compare_digest(digest(salt + password.encode()).digest(), stored)


def secret_path(secrets_dir: str | Path, name: str) -> Path:
    return Path(secrets_dir) / f"{name}.password"


def read_secret(path: Path) -> str | None:
    """The password in `path`, or None when there is no such file. A file others may read, or
    an empty one, is refused."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ProvisionError(
            f"{path}: the password file is open to other users (mode {stat.S_IMODE(mode):04o}); "
            "chmod 600 it"
        )
    password = path.read_text(encoding="utf-8").strip()
    if not password:
        raise ProvisionError(f"{path}: the password file is empty")
    return password


def write_secret(path: Path, password: str) -> None:
    """Create `path` with mode 0600 holding `password` (never over an existing file)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")


@dataclass
class Plan:
    """What provisioning did (or, in a dry run, would do), by user name."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # managed users not in the registry, kept
    pruned: list[str] = field(default_factory=list)
    passwords_written: list[str] = field(default_factory=list)

    def lines(self, dry_run: bool) -> list[str]:
        verb = "would " if dry_run else ""
        out = [f"{verb}create {n}" for n in self.created]
        out += [f"{verb}update {n}" for n in self.updated]
        out += [f"{verb}delete {n} (not in the registry)" for n in self.pruned]
        out += [f"stale {n}: not in the registry, kept (--prune deletes it)" for n in self.stale]
        out.append(
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.pruned)} deleted, "
            f"{len(self.stale)} stale" + (" (dry run: nothing changed)" if dry_run else "")
        )
        return out


def provision(
    api: ManagementAPI,
    registry: Registry,
    vhost: str,
    exchange: str,
    secrets_dir: str | Path,
    dry_run: bool = False,
    prune: bool = False,
) -> Plan:
    """Make the broker's users match the registry in `vhost`; see the module docstring."""
    q = api.q
    if api.call("GET", f"/api/vhosts/{q(vhost)}") is None:
        raise ProvisionError(f"vhost {vhost!r} does not exist on the broker")
    users = {u["name"]: u for u in api.call("GET", "/api/users") or []}  # type: ignore[union-attr]
    perms = {
        p["user"]: p
        for p in api.call("GET", f"/api/vhosts/{q(vhost)}/permissions") or []  # type: ignore[union-attr]
    }
    topic = {
        p["user"]: p
        for p in api.call("GET", f"/api/vhosts/{q(vhost)}/topic-permissions") or []  # type: ignore[union-attr]
        if p.get("exchange") == exchange
    }
    plan = Plan()
    for system in registry.systems:
        name, want = system.name, wanted(system, exchange)
        path = secret_path(secrets_dir, name)
        password = read_secret(path)
        user = users.get(name)
        if user is not None and MANAGED_TAG not in _tags(user):
            raise ProvisionError(
                f"user {name!r} exists on the broker but was not made by this command (no "
                f"{MANAGED_TAG!r} tag); rename the system or remove that user"
            )
        new_password = password is None
        if new_password and not dry_run:
            password = secrets.token_urlsafe(32)
            write_secret(path, password)
            plan.passwords_written.append(name)
        password_ok = (
            user is not None
            and password is not None
            and password_matches(
                user.get("password_hash", ""), user.get("hashing_algorithm", ""), password
            )
        )
        p, t = perms.get(name), topic.get(name)
        perms_ok = p is not None and (p["configure"], p["write"], p["read"]) == (
            want.configure,
            want.write,
            want.read,
        )
        topic_ok = t is not None and (t["write"], t["read"]) == (want.topic_write, NOTHING)
        if user is not None and password_ok and perms_ok and topic_ok:
            plan.unchanged.append(name)
            continue
        (plan.created if user is None else plan.updated).append(name)
        if dry_run:
            continue
        if user is None or not password_ok:
            api.call("PUT", f"/api/users/{q(name)}", {"password": password, "tags": MANAGED_TAG})
        if not perms_ok:
            api.call(
                "PUT",
                f"/api/permissions/{q(vhost)}/{q(name)}",
                {"configure": want.configure, "write": want.write, "read": want.read},
            )
        if not topic_ok:
            api.call(
                "PUT",
                f"/api/topic-permissions/{q(vhost)}/{q(name)}",
                {"exchange": exchange, "write": want.topic_write, "read": NOTHING},
            )
    known = set(registry.names)
    for name in sorted(perms):
        user = users.get(name)
        if name in known or user is None or MANAGED_TAG not in _tags(user):
            continue
        if not prune:
            plan.stale.append(name)
            continue
        plan.pruned.append(name)
        if not dry_run:
            api.call("DELETE", f"/api/users/{q(name)}")
    return plan


def _tags(user: dict) -> list[str]:
    tags = user.get("tags") or []
    return tags.split(",") if isinstance(tags, str) else list(tags)
