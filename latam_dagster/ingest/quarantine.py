"""List and replay quarantined messages.

Replay sends each open quarantine row back through the current contract validator: rows that now
pass are written to raw (idempotently, like a drain) and marked replayed; rows that still fail keep
their place with the new reason, so a partial fix never loses anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2.extras

from latam_dagster.contracts import InvalidEvent, validate_body
from latam_dagster.db import connect
from latam_dagster.ingest.writer import ROW_ERRORS, RawWriter, Valid


@dataclass
class ReplayResult:
    examined: int = 0
    inserted: int = 0
    already_in_raw: int = 0
    still_invalid: int = 0


def list_quarantine(
    url: str, limit: int = 50, queue: str | None = None, include_replayed: bool = False
) -> list[dict]:
    """Newest quarantine rows first, without the bodies (use --show-body for those)."""
    sql = """SELECT quarantine_id, queue, routing_key, reason, message_id, body_bytes,
                    received_at, replayed_at, replay_result,
                    convert_from(substring(body for 200), 'SQL_ASCII') AS body_head
             FROM raw.quarantine
             WHERE (%(queue)s::text IS NULL OR queue = %(queue)s)
               AND (%(all)s OR replayed_at IS NULL)
             ORDER BY quarantine_id DESC LIMIT %(limit)s"""
    conn = connect(url)
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, {"queue": queue, "all": include_replayed, "limit": limit})
            return [dict(r) for r in cur.fetchall()]
    finally:
        conn.close()


def replay(
    url: str,
    max_bytes: int,
    ids: list[int] | None = None,
    queue: str | None = None,
    dry_run: bool = False,
) -> ReplayResult:
    """Re-validate open quarantine rows and move the ones that now pass into raw."""
    result = ReplayResult()
    conn = connect(url)
    try:
        writer = RawWriter(conn)
        with conn.cursor() as cur:
            cur.execute(
                """SELECT quarantine_id, routing_key, body FROM raw.quarantine
                   WHERE replayed_at IS NULL
                     AND (%(ids)s::bigint[] IS NULL OR quarantine_id = ANY(%(ids)s))
                     AND (%(queue)s::text IS NULL OR queue = %(queue)s)
                   ORDER BY quarantine_id FOR UPDATE""",
                {"ids": ids or None, "queue": queue},
            )
            rows = cur.fetchall()
            for qid, routing_key, body in rows:
                result.examined += 1
                body = bytes(body)
                outcome = validate_body(body, max_bytes)
                if isinstance(outcome, InvalidEvent):
                    result.still_invalid += 1
                    cur.execute(
                        "UPDATE raw.quarantine SET reason = %s WHERE quarantine_id = %s",
                        (outcome.reason, qid),
                    )
                    continue
                valid = Valid(
                    outcome.event_type, routing_key or "", body.decode(), outcome.message_id
                )
                cur.execute("SAVEPOINT replay_row")
                try:
                    fresh = writer.write_in_transaction([valid]).inserted_total
                except ROW_ERRORS as exc:
                    cur.execute("ROLLBACK TO SAVEPOINT replay_row")
                    result.still_invalid += 1
                    reason = f"rejected by the warehouse: {str(exc).splitlines()[0]}"
                    cur.execute(
                        "UPDATE raw.quarantine SET reason = %s WHERE quarantine_id = %s",
                        (reason, qid),
                    )
                    continue
                result.inserted += fresh
                result.already_in_raw += 1 - fresh
                cur.execute(
                    """UPDATE raw.quarantine SET replayed_at = now(), replay_result = %s
                       WHERE quarantine_id = %s""",
                    ("inserted" if fresh else "already in raw", qid),
                )
        if dry_run:
            conn.rollback()
        else:
            conn.commit()
    finally:
        conn.close()
    return result
