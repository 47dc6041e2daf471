"""Warehouse connections and the versioned-migration runner.

Schema changes live in `latam_dagster/migrations/NNNN_name.sql`, applied once each, in order,
under an advisory lock, and recorded in `public.schema_migrations` with a checksum so that an
edited, already-applied migration is caught instead of silently ignored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.extensions

from latam_dagster import tls
from latam_dagster.settings import libpq_url

MIGRATION_LOCK_ID = 7_340_001


class WarehouseUnavailable(RuntimeError):
    """Postgres did not answer; the message says where we looked and how to start it."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


# libpq's words when every server it reached was read-only for the URL's target_session_attrs
_ONLY_READ_ONLY = ("session is read-only", "server is in hot standby mode")


def connect(url: str, **kwargs) -> psycopg2.extensions.connection:
    """Open a psycopg2 connection, turning a refused connection into advice.

    The URL's query (sslmode=verify-full&sslrootcert=... for TLS) goes to libpq as it is; in
    production a URL without sslmode=verify-full is refused before connecting (latam_dagster.tls).
    """
    dsn = libpq_url(url)
    try:
        tls.refuse_plaintext(dsn)
    except tls.TransportRefused as exc:
        raise WarehouseUnavailable(str(exc)) from exc
    try:
        return psycopg2.connect(dsn, connect_timeout=5, **kwargs)
    except psycopg2.OperationalError as exc:
        if tls.pg_tls_problem(str(exc)):
            raise WarehouseUnavailable(
                f"TLS with PostgreSQL at {tls.redact(dsn)} failed ({' '.join(str(exc).split())}): "
                "the server's certificate must be signed by the CA of the URL's sslrootcert and "
                "name the URL's host"
            ) from exc
        if "does not exist" in str(exc):
            raise
        if any(sign in str(exc) for sign in _ONLY_READ_ONLY):
            # the servers answer, but none takes writes: a standby, or a failover under way
            raise WarehouseUnavailable(
                f"PostgreSQL at {_redact(dsn)} answered, but no server there accepts writes "
                f"({' '.join(str(exc).split())}): the URL asks for a read-write server "
                "(target_session_attrs) and only read-only ones (standbys) were reached. During a "
                "failover this lasts until a standby is promoted; otherwise list the primary's "
                "host in LATAM_WAREHOUSE_URL."
            ) from exc
        raise WarehouseUnavailable(
            f"PostgreSQL is not reachable at {_redact(dsn)} ({' '.join(str(exc).split())}). "
            "Start it (on Debian: pg_ctlcluster --skip-systemctl-redirect "
            "$(ls /etc/postgresql) main start) or set LATAM_WAREHOUSE_URL."
        ) from exc


@contextmanager
def connection(url: str) -> Iterator[psycopg2.extensions.connection]:
    """A connection that commits on success, rolls back on error, and always closes."""
    conn = connect(url)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def ensure_database(url: str) -> bool:
    """Create the database named in `url` when it is missing. Returns True if created."""
    dsn = libpq_url(url)
    parts = urlsplit(dsn)
    dbname = parts.path.lstrip("/") or "postgres"
    admin = urlunsplit(parts._replace(path="/postgres"))
    conn = connect(admin)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            if cur.fetchone():
                return False
            cur.execute(f'CREATE DATABASE "{dbname}"')
            return True
    except psycopg2.errors.DuplicateDatabase:
        return False
    finally:
        conn.close()


def load_migrations() -> list[Migration]:
    """Every migration shipped in the package, in version order."""
    found = []
    for entry in resources.files("latam_dagster.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql"):
            version = int(name.split("_", 1)[0])
            found.append(Migration(version, name[:-4], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


def migrate(url: str) -> list[str]:
    """Create the database if needed and apply pending migrations. Returns the names applied."""
    ensure_database(url)
    applied: list[str] = []
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        cur.execute(
            """CREATE TABLE IF NOT EXISTS public.schema_migrations (
                   version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        cur.execute("SELECT version, checksum, name FROM public.schema_migrations")
        done = {v: (c, n) for v, c, n in cur.fetchall()}
        for m in load_migrations():
            if m.version in done:
                if done[m.version][0] != m.checksum:
                    raise RuntimeError(
                        f"migration {m.name} was edited after it was applied; "
                        "add a new migration instead"
                    )
                continue
            cur.execute(m.sql)
            cur.execute(
                "INSERT INTO public.schema_migrations (version, name, checksum) VALUES (%s,%s,%s)",
                (m.version, m.name, m.checksum),
            )
            applied.append(m.name)
    return applied


class SchemaMismatch(RuntimeError):
    """The warehouse's schema version is not the one this code was written for."""


def _fmt(version: int) -> str:
    return f"{version:04d}"


def code_version() -> int:
    """The newest migration this code ships: the schema version it needs."""
    migrations = load_migrations()
    return migrations[-1].version if migrations else 0


def applied_versions(url: str) -> set[int]:
    """Versions recorded in `schema_migrations`, read in a read-only session (no DDL, ever).

    A missing database or a missing table means nothing was applied.
    """
    try:
        conn = connect(url)
    except psycopg2.OperationalError as exc:
        if "does not exist" in str(exc) and "database" in str(exc):
            return set()
        raise
    try:
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
            if not cur.fetchone()[0]:
                return set()
            cur.execute("SELECT version FROM public.schema_migrations")
            return {v for (v,) in cur.fetchall()}
    finally:
        conn.close()


def schema_version(url: str) -> int:
    """The newest migration applied to the warehouse (0 when none)."""
    return max(applied_versions(url), default=0)


def pending_migrations(url: str) -> list[Migration]:
    """Migrations of this code not yet applied to the warehouse, in order."""
    done = applied_versions(url)
    return [m for m in load_migrations() if m.version not in done]


def require_schema(url: str) -> int:
    """Refuse to go on unless the warehouse has exactly this code's migrations; returns the version.

    Processes other than the deploy step (`latam migrate`) call this at start instead of migrating,
    so they need no DDL rights and never change the schema behind a running system.
    """
    done = applied_versions(url)
    needed = code_version()
    have = max(done, default=0)
    if have > needed:
        raise SchemaMismatch(
            f"warehouse at version {_fmt(have)}, newer than this code ({_fmt(needed)}): "
            "deploy the code that matches the warehouse"
        )
    missing = [m for m in load_migrations() if m.version not in done]
    if missing:
        raise SchemaMismatch(
            f"warehouse at version {_fmt(have)}, this code needs {_fmt(needed)}: run `latam migrate`"
        )
    return have


def require_schema_as(url: str, owner_url: str) -> int:
    """`require_schema` checked with a process's own role (`url`). On a warehouse older than
    that role (it does not exist yet, or may not read the versions), ask again as `owner_url` in
    a read-only session, to say which migrations are missing."""
    try:
        return require_schema(url)
    except (psycopg2.errors.InsufficientPrivilege, psycopg2.OperationalError):
        return require_schema(owner_url)
