"""API keys: bearer tokens stored as SHA-256 hashes, each with scopes.

A key is 256 random bits, so a plain SHA-256 is enough to make the stored hashes useless to
whoever reads them (a slow password hash protects low-entropy secrets; these are not). Workers
remember a lookup for LATAM_API_KEY_CACHE_SECONDS, which bounds how long a revoked key still works
on a worker that has just seen it, and keeps the key check off the database on the hot path.

Every key has one shape (`latam_` + 43 URL-safe base64 characters): a token of any other shape is
refused before the database is asked. Valid and refused lookups are remembered in two separate,
bounded caches, so a flood of made-up keys can only push out other made-up keys, never the
lookups of the keys in use; `api_service.limits` caps how many unknown keys an address may try.

Creating, revoking and listing keys needs the warehouse owner; the API itself only reads hashes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import psycopg2

from api_service.db import Database

SCOPES = ("flights:read", "routes:read", "airports:read", "aircraft:read", "quality:read")
KEY_PREFIX = "latam_"
MAX_KEY_LENGTH = 128
_KEY_BYTES = 32
# what `new_key` makes: the prefix and 32 random bytes in unpadded URL-safe base64 (43 characters)
KEY_SHAPE = re.compile(KEY_PREFIX + r"[A-Za-z0-9_-]{43}")
# lookups remembered per worker: keys in use (few) and refused keys (anyone can make up more)
VALID_CACHE_SIZE = 4096
REFUSED_CACHE_SIZE = 1024


def hash_key(key: str) -> bytes:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def new_key() -> str:
    """A fresh key: recognisable prefix + 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)


def well_formed(key: str | None) -> bool:
    """Whether `key` has the shape of a key this API issues (says nothing of its validity)."""
    return key is not None and KEY_SHAPE.fullmatch(key) is not None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


@dataclass(frozen=True)
class KeyOwner:
    """Who a valid key belongs to; `scopes` are the resources it may read."""

    name: str
    scopes: frozenset[str]
    key_id: int | None = None  # which key: a name is reused once its key is revoked


class _BoundedCache:
    """Lookups by key hash that expire; past `size` entries the oldest one goes."""

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[bytes, tuple[float, KeyOwner | None]] = OrderedDict()

    def get(self, digest: bytes, now: float) -> tuple[float, KeyOwner | None] | None:
        hit = self._entries.get(digest)
        return hit if hit is not None and hit[0] > now else None

    def put(self, digest: bytes, expires: float, owner: KeyOwner | None) -> None:
        self._entries.pop(digest, None)
        while len(self._entries) >= self.size:
            self._entries.popitem(last=False)
        self._entries[digest] = (expires, owner)

    def __len__(self) -> int:
        return len(self._entries)


_OWNER_BY_HASH = (
    "SELECT key_id, name, scopes FROM api.api_keys WHERE key_hash = %s AND revoked_at IS NULL"
)
_OWNER_BY_ID = (
    "SELECT key_id, name, scopes FROM api.api_keys WHERE key_id = %s AND revoked_at IS NULL"
)


class KeyVerifier:
    """Checks bearer keys against api.api_keys, with small time-bounded caches per worker."""

    def __init__(
        self,
        db: Database,
        cache_seconds: float,
        valid_cache_size: int = VALID_CACHE_SIZE,
        refused_cache_size: int = REFUSED_CACHE_SIZE,
    ):
        self.db = db
        self.cache_seconds = cache_seconds
        self.valid = _BoundedCache(valid_cache_size)
        self.refused = _BoundedCache(refused_cache_size)
        self._lock = threading.Lock()

    def verify(self, key: str | None) -> KeyOwner | None:
        """The owner of an active key, or None for a missing, malformed, unknown or revoked one.
        A malformed key never reaches the database."""
        if not key or len(key) > MAX_KEY_LENGTH or not well_formed(key):
            return None
        digest = hash_key(key)
        return self._owner(digest, _OWNER_BY_HASH, psycopg2.Binary(digest))

    def active_key(self, key_id: int) -> KeyOwner | None:
        """The owner of key `key_id` while it is active (a browser session's check on every page:
        revoking the key ends the session within the same cache time as its bearer use)."""
        return self._owner(b"key_id:%d" % key_id, _OWNER_BY_ID, key_id)  # never a digest's length

    def _owner(self, cache_key: bytes, sql: str, value: object) -> KeyOwner | None:
        """The cached answer for `cache_key`, else the database's (then cached)."""
        now = time.monotonic()
        if self.cache_seconds > 0:
            with self._lock:
                hit = self.valid.get(cache_key, now) or self.refused.get(cache_key, now)
            if hit is not None:
                return hit[1]
        row = self.db.fetch_one(sql, (value,))
        owner = KeyOwner(row["name"], frozenset(row["scopes"]), row["key_id"]) if row else None
        if self.cache_seconds > 0:
            with self._lock:
                cache = self.valid if owner is not None else self.refused
                cache.put(cache_key, now + self.cache_seconds, owner)
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
