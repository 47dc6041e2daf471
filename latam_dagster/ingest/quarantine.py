"""List and replay quarantined messages.

Replay sends each open quarantine row back through the current contract validator: rows that now
pass are written to raw (idempotently, like a drain) and marked replayed; rows that still fail keep
their place with the new reason, so a partial fix never loses anything. A row whose body was kept
truncated (it was over the size limit) cannot be replayed: it stays open and is counted apart.

A source controls every byte of a quarantined message, so whatever a listing shows of it goes
through `safe_text` / `preview`: invalid UTF-8 comes out as hex, control characters escaped.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from latam_dagster.contracts import InvalidEvent, validate_body
from latam_dagster.db import connect
from latam_dagster.ingest.safe_text import preview, safe_text
from latam_dagster.ingest.writer import RawWriter, Valid, is_row_error, warehouse_reason

# characters of body shown per row in a listing, and with --show-body
SHORT_PREVIEW = 80
LONG_PREVIEW = 4000

_TEXT_COLUMNS = ("queue", "routing_key", "reason", "message_id", "replay_result", "error_class")


@dataclass
class ReplayResult:
    examined: int = 0
    inserted: int = 0
    already_in_raw: int = 0
    still_invalid: int = 0
    truncated: int = 0  # kept open: only the head of the body was stored


def list_quarantine(
    url: str,
    limit: int = 50,
    queue: str | None = None,
    include_replayed: bool = False,
    show_body: bool = False,
) -> list[dict]:
    """Newest quarantine rows first, every text safe to print: a short `body_preview` always, and
    a longer `body` (still escaped or hex, and cut) with `show_body`."""
    chars = LONG_PREVIEW if show_body else SHORT_PREVIEW
    # the head as bytes: Postgres cannot convert a body that is not valid UTF-8 to text
    sql = """SELECT quarantine_id, queue, routing_key, reason, message_id, body_bytes,
                    body_truncated, octet_length(body) AS stored_bytes, error_class,
                    encode(body_sha256, 'hex') AS body_sha256,
                    received_at, replayed_at, replay_result,
                    substring(body for %(head)s) AS body_head
             FROM raw.quarantine
             WHERE (%(queue)s::text IS NULL OR queue = %(queue)s)
               AND (%(all)s OR replayed_at IS NULL)
             ORDER BY quarantine_id DESC LIMIT %(limit)s"""
    params = {"queue": queue, "all": include_replayed, "limit": limit, "head": chars * 2}
    conn = connect(url)
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, params)
            return [_shown(dict(r), show_body) for r in cur.fetchall()]
    finally:
        conn.close()


def _shown(row: dict, show_body: bool) -> dict:
    head = bytes(row.pop("body_head"))
    for column in _TEXT_COLUMNS:
        row[column] = safe_text(row[column])
    row["body_preview"] = preview(head, SHORT_PREVIEW, total=row["body_bytes"])
    if show_body:
        row["body"] = preview(head, LONG_PREVIEW, total=row["body_bytes"])
    return row


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
                """SELECT quarantine_id, routing_key, body_truncated,
                          CASE WHEN body_truncated THEN NULL ELSE body END
                   FROM raw.quarantine
                   WHERE replayed_at IS NULL
                     AND (%(ids)s::bigint[] IS NULL OR quarantine_id = ANY(%(ids)s))
                     AND (%(queue)s::text IS NULL OR queue = %(queue)s)
                   ORDER BY quarantine_id FOR UPDATE""",
                {"ids": ids or None, "queue": queue},
            )
            rows = cur.fetchall()
            for qid, routing_key, truncated, body in rows:
                result.examined += 1
                if truncated:
                    result.truncated += 1
                    continue
                body = bytes(body)
                try:
                    outcome = validate_body(body, max_bytes)
                except Exception as exc:  # noqa: BLE001 - one row must not stop the replay
                    outcome = InvalidEvent(f"could not handle the message: {type(exc).__name__}")
                if isinstance(outcome, InvalidEvent):
                    result.still_invalid += 1
                    _set_reason(cur, qid, outcome.reason)
                    continue
                text = outcome.text if outcome.text is not None else body.decode()
                valid = Valid(outcome.event_type, routing_key or "", text, outcome.message_id)
                cur.execute("SAVEPOINT replay_row")
                try:
                    fresh = writer.write_in_transaction([valid]).inserted_total
                except psycopg2.Error as exc:
                    if not is_row_error(exc):
                        raise  # the database failed, not the row: nothing is committed
                    cur.execute("ROLLBACK TO SAVEPOINT replay_row")
                    result.still_invalid += 1
                    _set_reason(cur, qid, warehouse_reason(exc))
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


def _set_reason(cur: psycopg2.extensions.cursor, qid: int, reason: str) -> None:
    # reasons name paths and rules; escaped all the same, as everything stored from a message
    cur.execute(
        "UPDATE raw.quarantine SET reason = %s WHERE quarantine_id = %s",
        (safe_text(reason), qid),
    )
