"""The Dagster UI's users: one htpasswd file per role, and the role map nginx routes by.

`LATAM_UI_AUTH_DIR` holds:

- `analyst.htpasswd`, `operator.htpasswd`: `name:bcrypt-hash` lines, one file per role;
- `roles.map`: `"name" role;` lines, included in the nginx `map` that picks, per request, the
  role of the user name the client sent.

nginx authenticates a request against the htpasswd file *of the role the map gives* and sends it
to that role's webserver. The files are read on every request, the map only when nginx (re)loads
its configuration, and the map's default role is `analyst`. So a map that lags behind the files
(a user added, removed or moved since the last reload) can only refuse a login, never grant a
role: a user reaches the operator webserver only while listed in `operator.htpasswd`.

Every change rewrites the files atomically (write to a temporary file, then rename) under a lock,
so nginx never reads half a file and two concurrent `latam ui-user` commands do not lose each
other's changes.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROLES = ("analyst", "operator")
"""analyst: the read-only UI; operator: the full UI (launch runs, backfills, sensors on/off)."""

DEFAULT_ROLE = "analyst"
"""The role nginx assumes for a name missing from the role map (the least privileged one)."""

ROLES_MAP = "roles.map"

# Lower case only: nginx matches map keys without regard to case, while it compares the htpasswd
# name exactly; one spelling per name keeps both in step. No quote, colon, space or semicolon can
# reach the htpasswd lines or the nginx map.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_BYTES = 72  # bcrypt uses the first 72 bytes of a password and no more

BCRYPT_COST = 8
"""bcrypt work factor. Basic authentication has no session: nginx checks the hash on every
request the UI makes (dozens per page, then polling), so the cost is paid per request. 2^8 rounds
keep a page load responsive on a small machine while a stolen file still costs an attacker
thousands of times more per guess than the MD5-based apr1 scheme."""


class UserError(ValueError):
    """A user name, role or password the store refuses, or a missing user."""


@dataclass(frozen=True)
class UiUser:
    name: str
    role: str


def htpasswd_file(auth_dir: str | Path, role: str) -> Path:
    return Path(auth_dir) / f"{role}.htpasswd"


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise UserError(
            f"invalid user name {name!r}: 1 to 64 characters among a-z, 0-9, '.', '_' and '-', "
            "starting with a letter or a digit"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> bytes:
    raw = password.encode()
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(raw) > MAX_PASSWORD_BYTES:
        raise UserError(f"the password must fit in {MAX_PASSWORD_BYTES} bytes (bcrypt's limit)")
    if any(c in password for c in "\r\n\0"):
        raise UserError("the password must be one line")
    return raw


def hash_password(password: str) -> str:
    import bcrypt

    return bcrypt.hashpw(check_password(password), bcrypt.gensalt(BCRYPT_COST)).decode()


class UserStore:
    """The users of one `LATAM_UI_AUTH_DIR`."""

    def __init__(self, auth_dir: str | Path):
        self.dir = Path(auth_dir)

    def ensure(self) -> None:
        """Create the directory and the (possibly empty) files nginx expects at start."""
        with self._locked():
            pass

    def list(self) -> list[UiUser]:
        users = [UiUser(name, role) for role in ROLES for name in self._read(role)]
        return sorted(users, key=lambda u: u.name)

    def role_of(self, name: str) -> str | None:
        return next((u.role for u in self.list() if u.name == name), None)

    def add(self, name: str, role: str, password: str, replace: bool = False) -> bool:
        """Add a user, or with `replace` set the role and password of an existing one; returns
        whether the user existed."""
        check_name(name)
        check_role(role)
        hashed = hash_password(password)
        with self._locked():
            entries = {r: self._read(r) for r in ROLES}
            existed = any(name in e for e in entries.values())
            if existed and not replace:
                raise UserError(f"user {name!r} exists (use --replace to change it)")
            for r in ROLES:
                entries[r].pop(name, None)
            entries[role][name] = hashed
            self._write(entries)
        return existed

    def remove(self, name: str) -> str:
        """Remove a user; returns the role it had."""
        with self._locked():
            entries = {r: self._read(r) for r in ROLES}
            role = next((r for r in ROLES if name in entries[r]), None)
            if role is None:
                raise UserError(f"no user {name!r}")
            del entries[role][name]
            self._write(entries)
        return role

    # -- files -----------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if (
                    not all(htpasswd_file(self.dir, r).exists() for r in ROLES)
                    or not (self.dir / ROLES_MAP).exists()
                ):
                    self._write({r: self._read(r) for r in ROLES})
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self, role: str) -> dict[str, str]:
        path = htpasswd_file(self.dir, role)
        if not path.exists():
            return {}
        entries = {}
        for line in path.read_text().splitlines():
            if line and not line.startswith("#") and ":" in line:
                name, hashed = line.split(":", 1)
                entries[name] = hashed
        return entries

    def _write(self, entries: dict[str, dict[str, str]]) -> None:
        # one file at a time: any mix of old and new files only refuses logins (module docstring)
        roles_map = "".join(
            f'"{name}" {role};\n' for role in ROLES for name in sorted(entries[role])
        )
        _atomic_write(self.dir / ROLES_MAP, "# written by `latam ui-user`\n" + roles_map)
        for role in ROLES:
            lines = "".join(f"{n}:{h}\n" for n, h in sorted(entries[role].items()))
            _atomic_write(htpasswd_file(self.dir, role), lines)


def _atomic_write(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename, readable by its owner only."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
