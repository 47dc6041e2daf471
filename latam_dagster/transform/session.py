"""One transform transaction: serialised per table, with the session settings the SQL expects.

Every update of a table runs in a single transaction that also moves its watermarks, so a crash
leaves either the old state or the new one. A transaction-level advisory lock per table keeps two
runs (a drain of flights and a drain of passengers both updating passenger loads, or a full
refresh) from interleaving; the second simply waits.

The PII hash key never travels in a statement. psycopg2 interpolates parameters into the SQL
text on the client, so a key passed as a parameter would be part of the statement that
`pg_stat_activity`, `log_statement` and `auto_explain` show to anyone allowed to look. Instead the
key rides in the connection's start-up packet, as the libpq `options` of the session
(`-c latam.pii_hash_key=...`): the server sets it as a session setting before the first statement,
no statement carries it, and no other session can read it. The SQL reaches it only through
`curated.pii_hash_key()` (migration 0032), which also checks the key's fingerprint against the one
the warehouse recorded on first use and refuses, aborting the transaction, when they differ: a
process with another key cannot write passenger hashes that would not match the existing ones.
The connection is closed with the transaction, so the key does not outlive it on the server.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2.extensions

from latam_dagster.db import connect
from latam_dagster.settings import get_settings, libpq_url

LOCK_NAMESPACE = 7_340_002
PII_KEY_SETTING = "latam.pii_hash_key"
_OPTION_SPACES = " \t\n\r\v\f"


def _option_value(value: str) -> str:
    """`value` escaped for libpq's `options`, which splits on white space and reads a backslash
    as "take the next character as it is"."""
    return "".join("\\" + ch if ch in _OPTION_SPACES or ch == "\\" else ch for ch in value)


def session_options(url: str, pii_hash_key: str) -> str:
    """The libpq `options` of a transform session: those of the URL (or PGOPTIONS), then the
    PII hash key as the session setting `latam.pii_hash_key`."""
    params = psycopg2.extensions.parse_dsn(libpq_url(url))
    inherited = params.get("options", os.environ.get("PGOPTIONS", ""))
    own = f"-c {PII_KEY_SETTING}={_option_value(pii_hash_key)}"
    return f"{inherited} {own}".strip()


@contextmanager
def transform_transaction(
    url: str, lock_name: str, *, work_mem: str = "64MB"
) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor inside a transaction holding the advisory lock `lock_name`; commits on success."""
    key = get_settings().pii_hash_key.get_secret_value()
    conn = connect(url, options=session_options(url, key))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, lock_name)
            )
            # JIT compilation costs more than it saves on these short, index-driven statements,
            # and the warehouse is read from memory or SSD, where random reads are cheap.
            cur.execute("SET LOCAL jit = off")
            cur.execute("SET LOCAL random_page_cost = 1.1")
            cur.execute("SELECT set_config('work_mem', %s, true)", (work_mem,))
            yield cur
    finally:
        conn.close()


def keep_to_indexes(cur: psycopg2.extensions.cursor) -> None:
    """Make the rest of the transaction join by index lookups from its (small) scope.

    An incremental statement touches a small, known set of keys. Hash and merge joins read the
    whole of the other table, a cost that grows with the history, which the planner accepts
    while the history is still small; nested loops over the indexes cost what the batch costs.
    """
    cur.execute("SET LOCAL enable_hashjoin = off")
    cur.execute("SET LOCAL enable_mergejoin = off")
