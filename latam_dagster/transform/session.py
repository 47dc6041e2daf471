"""One transform transaction: serialised per table, with the session settings the SQL expects.

Every update of a table runs in a single transaction that also moves its watermarks, so a crash
leaves either the old state or the new one. A transaction-level advisory lock per table keeps two
runs (a drain of flights and a drain of passengers both updating passenger loads, or a full
refresh) from interleaving; the second simply waits.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2.extensions

from latam_dagster.db import connect
from latam_dagster.settings import get_settings

LOCK_NAMESPACE = 7_340_002


@contextmanager
def transform_transaction(
    url: str, lock_name: str, *, work_mem: str = "64MB"
) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor inside a transaction holding the advisory lock `lock_name`; commits on success."""
    conn = connect(url)
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
            cur.execute(
                "SELECT set_config('latam.pii_hash_key', %s, true)",
                (get_settings().pii_hash_key.get_secret_value(),),
            )
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
