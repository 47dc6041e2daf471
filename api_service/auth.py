"""API keys: bearer tokens stored as SHA-256 hashes, each with scopes.

A key is 256 random bits, so a plain SHA-256 is enough to make the stored hashes useless to
whoever reads them (a slow password hash protects low-entropy secrets; these are not). Workers
remember a lookup for LATAM_API_KEY_CACHE_SECONDS, which bounds how long a revoked key still works
on a worker that has just seen it, and keeps the key check off the database on the hot path.

Creating, revoking and listing keys needs the warehouse owner; the API itself only reads hashes.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import psycopg2

from api_service.db import Database

SCOPES = ("flights:read", "routes:read", "airports:read", "aircraft:read", "quality:read")
KEY_PREFIX = "latam_"
MAX_KEY_LENGTH = 128
_CACHE_SIZE = 4096


def hash_key(key: str) -> bytes:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def new_key() -> str:
    """A fresh key: recognisable prefix + 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class KeyOwner:
    """Who a valid key belongs to; `scopes` are the resources it may read."""

    name: str
    scopes: frozenset[str]


class KeyVerifier:
    """Checks bearer keys against api.api_keys, with a small time-bounded cache per worker."""

    def __init__(self, db: Database, cache_seconds: float):
        self.db = db
        self.cache_seconds = cache_seconds
        self._cache: dict[bytes, tuple[float, KeyOwner | None]] = {}
        self._lock = threading.Lock()

    def verify(self, key: str | None) -> KeyOwner | None:
        """The owner of an active key, or None for a missing, unknown or revoked one."""
        if not key or len(key) > MAX_KEY_LENGTH:
            return None
        digest = hash_key(key)
        now = time.monotonic()
        if self.cache_seconds > 0:
            hit = self._cache.get(digest)
            if hit is not None and hit[0] > now:
                return hit[1]
        row = self.db.fetch_one(
            "SELECT name, scopes FROM api.api_keys WHERE key_hash = %s AND revoked_at IS NULL",
            (psycopg2.Binary(digest),),
        )
        owner = KeyOwner(row["name"], frozenset(row["scopes"])) if row else None
        if self.cache_seconds > 0:
            with self._lock:
                if len(self._cache) >= _CACHE_SIZE:
                    self._cache.clear()
                self._cache[digest] = (now + self.cache_seconds, owner)
        return owner


# --- administration (runs as the warehouse owner, from the CLI) ----------------------------------


@dataclass(frozen=True)
class KeyInfo:
    name: str
    key_prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class KeyNameTaken(ValueError):
    """An active key already has this name."""


def create_key(conn: psycopg2.extensions.connection, name: str, scopes: list[str]) -> str:
    """Store the hash of a new key named `name` and return the key (shown only this once)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    key = new_key()
    try:
        with conn.cursor() as cur:
            cur.execute(
                """INSERT INTO api.api_keys (name, key_prefix, key_hash, scopes)
                   VALUES (%s, %s, %s, %s)""",
                (name, key[: len(KEY_PREFIX) + 4], psycopg2.Binary(hash_key(key)), sorted(scopes)),
            )
    except psycopg2.errors.UniqueViolation as exc:
        raise KeyNameTaken(f"an active key named {name!r} exists; revoke it first") from exc
    except psycopg2.errors.CheckViolation as exc:
        raise ValueError(
            f"invalid key name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'"
        ) from exc
    return key


def revoke_key(conn: psycopg2.extensions.connection, name: str) -> int:
    """Revoke the active key named `name`; returns how many keys were revoked (0 or 1)."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE api.api_keys SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL",
            (name,),
        )
        return cur.rowcount


def list_keys(conn: psycopg2.extensions.connection, include_revoked: bool = False) -> list[KeyInfo]:
    """Keys by name (never the keys themselves: only their first characters)."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT name, key_prefix, scopes, created_at, revoked_at FROM api.api_keys
               WHERE %s OR revoked_at IS NULL ORDER BY name, created_at""",
            (include_revoked,),
        )
        return [KeyInfo(*row) for row in cur.fetchall()]
