"""Watermarks on transaction ids (xid8): how far a consumer has read each source table.

Raw rows carry `ingest_xid` and curated rows `updated_xid`: the id of the transaction that wrote
them. Ids are handed out when transactions start but rows become visible when they commit, so a
plain "greater than the last id seen" would skip a slow transaction that commits after a faster,
younger one. Instead a consumer:

1. reads the horizon: the oldest transaction still running, `pg_snapshot_xmin(pg_current_snapshot())`
   (everything below it has finished, committed or not);
2. processes every visible row with an id >= its watermark (rows above the horizon that are already
   committed are processed now as well, so nothing waits for an unrelated long transaction);
3. stores the horizon as its new watermark, in the same transaction as its output.

A row still in flight at step 1 has an id >= the horizon, so the next run picks it up; a row
processed in step 2 above the horizon is processed once more next time, which is harmless because
every update recomputes its keys from scratch.
"""

import psycopg2.extensions


def horizon(cur: psycopg2.extensions.cursor) -> int:
    """The oldest transaction id still running: everything below it is settled."""
    cur.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    return int(cur.fetchone()[0])


def current_xid(cur: psycopg2.extensions.cursor) -> int:
    """This transaction's id (assigning one), the `updated_xid` of the rows it writes."""
    cur.execute("SELECT pg_current_xact_id()::text::bigint")
    return int(cur.fetchone()[0])


def get_watermarks(
    cur: psycopg2.extensions.cursor, consumer: str, sources: list[str]
) -> dict[str, int]:
    """The watermark of `consumer` on each source (0 = never read)."""
    cur.execute(
        "SELECT source, xid::text::bigint FROM curated.watermarks WHERE consumer = %s",
        (consumer,),
    )
    found = dict(cur.fetchall())
    return {s: int(found.get(s, 0)) for s in sources}


def set_watermarks(
    cur: psycopg2.extensions.cursor, consumer: str, sources: list[str], xid: int
) -> None:
    """Move `consumer` to `xid` on every source."""
    for source in sources:
        cur.execute(
            """INSERT INTO curated.watermarks (consumer, source, xid, updated_at)
               VALUES (%s, %s, %s::text::xid8, now())
               ON CONFLICT (consumer, source) DO UPDATE
               SET xid = excluded.xid, updated_at = now()""",
            (consumer, source, str(xid)),
        )


def lag(cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int, float]]:
    """(consumer, source, xid, seconds since the last advance) for every watermark."""
    cur.execute(
        """SELECT consumer, source, xid::text::bigint,
                  extract(epoch FROM now() - updated_at)::float8
           FROM curated.watermarks ORDER BY consumer, source"""
    )
    return [(c, s, int(x), float(a)) for c, s, x, a in cur.fetchall()]
