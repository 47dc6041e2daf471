"""Locks in Postgres that order drains: one drain per queue, and one drain run's turn at a time.

Both are session-level advisory locks held on a connection of the drain's own, so they last
until that connection closes, also when the process dies. A waiter blocks in Postgres without
using CPU, and Postgres grants a lock to its waiters first come, first served.

- The queue lock (`take_queue`): whoever drains a queue holds it, so two drains never consume
  the same queue at once, whatever started them (a run, the CLI, another machine).
- The turn lock (`drain_turn`): a drain run holds it while it drains all of its queues. The
  next run waits for its turn as a whole and takes every queue over the moment the current
  drain ends. Without it, two waiting runs could each win some queues' locks and drain side by
  side, and each would then update its curated tables only after its slowest queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2.errors
import psycopg2.extensions

from latam_dagster.db import connect

log = logging.getLogger(__name__)

# advisory lock namespace of the drain locks (transforms use 7_340_002)
DRAIN_LOCK_NAMESPACE = 7_340_003


def take_lock(conn: psycopg2.extensions.connection, name: str, timeout: float) -> float | None:
    """Take the drain lock `name` on `conn`, waiting up to `timeout` seconds for its holder.

    Returns the seconds waited, or None when the holder kept it past `timeout`.
    """
    began = time.monotonic()
    with conn.cursor() as cur:
        args = (DRAIN_LOCK_NAMESPACE, name)
        cur.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", args)
        if cur.fetchone()[0]:
            conn.commit()
            return 0.0
        log.info("%s: waiting for the drain that holds it", name, extra={"lock": name})
        try:
            cur.execute("SET LOCAL lock_timeout = %s", (f"{int(timeout * 1000)}ms",))
            cur.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", args)
        except psycopg2.errors.LockNotAvailable:
            conn.rollback()
            return None
    conn.commit()  # SET LOCAL ends with the transaction; the session lock stays
    return time.monotonic() - began


def take_queue(conn: psycopg2.extensions.connection, queue: str, timeout: float) -> float | None:
    """Take `queue`'s lock on the drain's connection (see the module docstring)."""
    return take_lock(conn, queue, timeout)


def turn_lock_name(prefix: str) -> str:
    return f"turn:{prefix}"


@contextmanager
def drain_turn(warehouse_url: str, prefix: str, timeout: float) -> Iterator[float | None]:
    """Hold the drain turn of topology `prefix` for the block; yields the seconds waited for it,
    or None when it did not come within `timeout` (then the block should drain nothing)."""
    conn = connect(warehouse_url)
    try:
        yield take_lock(conn, turn_lock_name(prefix), timeout)
    finally:
        conn.close()
