"""Write one batch of messages into raw Postgres in one transaction.

Valid events go through COPY into a temporary stage table and then `INSERT ... SELECT ... ON
CONFLICT (message_id) DO NOTHING` into their raw table (the event type picks the table, so a
message published under the wrong routing key is still kept). Invalid ones go to `raw.quarantine`,
keyed by queue and body hash so a redelivery lands on the same row. If Postgres rejects the batch
for a row's content (a value the contract allowed but the column cannot hold: SQLSTATE classes 22,
23 and 54), the batch is retried row by row and only the offending rows are quarantined, with the
error's name and code but never its message (Postgres quotes the value): nothing blocks a queue.
Any other database error (a lost connection, a full disk) fails the batch, so nothing is acked.

Every raw row keeps the SHA-256 of the body it came from. A message_id that arrives again with a
different body is a conflict: the first body stays in raw, and the pair of hashes is recorded in
`raw.message_id_conflicts` (looked for only in batches that had duplicates, so it costs nothing
in the common case).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from dataclasses import dataclass, field

import psycopg2
import psycopg2.errorcodes
import psycopg2.extensions
from psycopg2.extras import execute_values

from latam_dagster.ingest.safe_text import safe_text
from latam_dagster.ingest.topology import RAW_TABLE_OF_EVENT

STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS _raw_stage (
    event_type text, routing_key text, doc jsonb, body_sha256 bytea
) ON COMMIT DELETE ROWS
"""

_FLIGHT_KEY = "(p->>'carrier') || (p->>'flight_number') || '-' || (p->>'flight_date') || '-' || (p->>'origin')"
_ENVELOPE = """(d->>'message_id')::uuid, (d->>'schema_version')::smallint, d->>'event_type',
    (d->>'event_time')::timestamptz, d->>'source_system', routing_key, body_sha256"""

INSERT_SQL: dict[str, str] = {
    "flight_status": f"""
INSERT INTO raw.flight_events (message_id, schema_version, event_type, event_time, source_system,
    routing_key, body_sha256, carrier, flight_number, flight_date, origin, destination, status, flight_key, payload)
SELECT {_ENVELOPE}, p->>'carrier', (p->>'flight_number')::int, (p->>'flight_date')::date,
    p->>'origin', p->>'destination', p->>'status', {_FLIGHT_KEY}, p
FROM (SELECT doc AS d, doc->'payload' AS p, routing_key, body_sha256 FROM _raw_stage
      WHERE event_type = 'flight_status') s
ON CONFLICT (message_id) DO NOTHING""",
    "passenger_event": f"""
INSERT INTO raw.passenger_events (message_id, schema_version, event_type, event_time, source_system,
    routing_key, body_sha256, passenger_ref, carrier, flight_number, flight_date, origin, action, flight_key,
    payload)
SELECT {_ENVELOPE}, p->>'passenger_ref', p->>'carrier', (p->>'flight_number')::int,
    (p->>'flight_date')::date, p->>'origin', p->>'action', {_FLIGHT_KEY}, p
FROM (SELECT doc AS d, doc->'payload' AS p, routing_key, body_sha256 FROM _raw_stage
      WHERE event_type = 'passenger_event') s
ON CONFLICT (message_id) DO NOTHING""",
    "position_report": f"""
INSERT INTO raw.position_reports (message_id, schema_version, event_type, event_time,
    source_system, routing_key, body_sha256, tail_number, latitude, longitude, flight_key, payload)
SELECT {_ENVELOPE}, p->>'tail_number', (p->>'latitude')::float8, (p->>'longitude')::float8,
    CASE WHEN p->>'carrier' IS NOT NULL AND p->>'flight_number' IS NOT NULL
          AND p->>'flight_date' IS NOT NULL AND p->>'origin' IS NOT NULL
         THEN {_FLIGHT_KEY} END, p
FROM (SELECT doc AS d, doc->'payload' AS p, routing_key, body_sha256 FROM _raw_stage
      WHERE event_type = 'position_report') s
ON CONFLICT (message_id) DO NOTHING""",
}
TABLE_OF = RAW_TABLE_OF_EVENT
# All three inserts in one statement: one round trip per batch instead of three, which matters
# because every return from Postgres makes the writer thread wait for the consumer's GIL.
INSERT_ALL_SQL = (
    "WITH "
    + ", ".join(f"{etype} AS ({sql} RETURNING 1)" for etype, sql in INSERT_SQL.items())
    + " SELECT "
    + ", ".join(f"(SELECT count(*) FROM {etype})" for etype in INSERT_SQL)
)
COPY_SQL = "COPY _raw_stage (event_type, routing_key, doc, body_sha256) FROM STDIN"
COPY_CHUNK = 1 << 20  # read the batch's COPY text in few large pieces

# A message_id already in raw with another body: the first body stays, the pair is recorded.
CONFLICT_SQL = " UNION ALL ".join(
    f"""SELECT s.message_id, '{table}' AS raw_table, s.source_system, r.body_sha256 AS kept,
           s.body_sha256 AS conflicting
    FROM (SELECT (doc->>'message_id')::uuid AS message_id, doc->>'source_system' AS source_system,
                 body_sha256 FROM _raw_stage WHERE event_type = '{etype}') s
    JOIN {table} r USING (message_id)
    WHERE r.body_sha256 <> s.body_sha256"""
    for etype, table in TABLE_OF.items()
)
RECORD_CONFLICTS_SQL = f"""
INSERT INTO raw.message_id_conflicts AS c
    (message_id, raw_table, source_system, kept_sha256, conflicting_sha256, times_seen)
SELECT message_id, min(raw_table), min(source_system), (array_agg(kept))[1], conflicting, count(*)
FROM ({CONFLICT_SQL}) found
GROUP BY message_id, conflicting
ON CONFLICT (message_id, conflicting_sha256) DO UPDATE
SET last_seen_at = now(), times_seen = c.times_seen + excluded.times_seen
RETURNING 1"""

QUARANTINE_SQL = """
INSERT INTO raw.quarantine (queue, routing_key, reason, message_id, body, body_sha256, body_bytes,
    body_truncated, error_class)
VALUES %s ON CONFLICT (queue, body_sha256) DO NOTHING RETURNING 1"""

# SQLSTATE classes that mean "Postgres refused this row's content": data exception, integrity
# violation, program limit exceeded (a string or a jsonb too large or too deep). Anything else
# (connection, resources, operator intervention, our own SQL) is not the message's fault.
ROW_ERROR_CLASSES = frozenset({"22", "23", "54"})


def is_row_error(exc: BaseException) -> bool:
    """Whether Postgres refused a row for its content (quarantine it) rather than failing."""
    code = getattr(exc, "pgcode", None)
    return isinstance(exc, psycopg2.Error) and bool(code) and code[:2] in ROW_ERROR_CLASSES


def warehouse_reason(exc: BaseException) -> str:
    """Why Postgres refused a row, by error name and SQLSTATE only: Postgres messages quote the
    offending value, which may be personal data."""
    code = getattr(exc, "pgcode", None) or "?"
    name = psycopg2.errorcodes.lookup(code) if code != "?" else None
    words = name.lower().replace("_", " ") if name else type(exc).__name__
    return f"rejected by the warehouse: {words} (SQLSTATE {code})"


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


@dataclass(slots=True)
class Valid:
    """A contract-valid event ready for COPY: its type, routing key, JSON text and body hash."""

    event_type: str
    routing_key: str
    text: str
    message_id: str
    body_sha256: bytes | None = None  # of the body as received; computed from `text` when None

    def sha256(self) -> bytes:
        return self.body_sha256 or hashlib.sha256(self.text.encode("utf-8")).digest()


@dataclass(slots=True)
class Rejected:
    """A message for the quarantine, with the reason and the bytes as received (only the head of
    an oversized body, `truncated`; its hash and size then describe the whole body)."""

    queue: str
    routing_key: str | bytes | None
    reason: str
    body: bytes
    message_id: str | None = None
    error_class: str | None = None
    body_sha256: bytes | None = None
    body_bytes: int | None = None
    truncated: bool = False

    @classmethod
    def head_of(cls, queue: str, routing_key, reason: str, body: bytes, keep: int) -> Rejected:
        """A rejected body kept only in part: its first `keep` bytes, its hash and its size."""
        return cls(
            queue,
            routing_key,
            reason,
            body[:keep],
            body_sha256=hashlib.sha256(body).digest(),
            body_bytes=len(body),
            truncated=len(body) > keep,
        )


@dataclass
class BatchResult:
    valid: int = 0
    inserted: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    quarantine_new: int = 0
    conflicts: int = 0

    @property
    def inserted_total(self) -> int:
        return sum(self.inserted.values())

    @property
    def duplicates(self) -> int:
        return self.valid - self.inserted_total


def _copy_escape(text: str) -> str:
    # the common case has nothing to escape; checking is ten times cheaper than translating
    if "\\" in text or "\n" in text or "\r" in text or "\t" in text:
        return text.translate(_COPY_ESCAPES)
    return text


def _copy_line(v: Valid) -> str:
    # bytea in COPY text format: \\x + hex (the backslash itself escaped)
    return (
        f"{v.event_type}\t{_copy_escape(v.routing_key)}\t{_copy_escape(v.text)}"
        f"\t\\\\x{v.sha256().hex()}\n"
    )


class RawWriter:
    """Owns one warehouse connection and writes batches through it."""

    def __init__(self, conn: psycopg2.extensions.connection):
        self.conn = conn
        with conn.cursor() as cur:
            cur.execute(STAGE_DDL)
        conn.commit()

    def write(self, valid: list[Valid], rejected: list[Rejected], queue: str) -> BatchResult:
        """Write a batch in one transaction; returns counts. Raises only when the database fails
        for a reason other than a row's content (then nothing may be acked)."""
        try:
            result = self._write(valid, rejected)
            self.conn.commit()
            return result
        except psycopg2.Error as exc:
            if not is_row_error(exc):
                # a lost connection cannot roll back: report why it was lost, not that
                if not self.conn.closed:
                    with contextlib.suppress(psycopg2.Error):
                        self.conn.rollback()
                raise
            self.conn.rollback()
        return self._write_row_by_row(valid, rejected, queue)

    def write_in_transaction(self, valid: list[Valid]) -> BatchResult:
        """Insert valid events inside the caller's open transaction (no commit, no fallback)."""
        result = self._write(valid, [])
        with self.conn.cursor() as cur:
            cur.execute("TRUNCATE _raw_stage")
        return result

    def _write(self, valid: list[Valid], rejected: list[Rejected]) -> BatchResult:
        result = BatchResult(valid=len(valid), quarantined=len(rejected))
        with self.conn.cursor() as cur:
            if valid:
                buf = io.StringIO("".join(map(_copy_line, valid)))
                cur.copy_expert(COPY_SQL, buf, size=COPY_CHUNK)
                cur.execute(INSERT_ALL_SQL)
                counts = cur.fetchone()
                present = {v.event_type for v in valid}
                for etype, n in zip(INSERT_SQL, counts, strict=True):
                    if etype in present:
                        result.inserted[TABLE_OF[etype]] = n
                if result.duplicates:
                    result.conflicts = _record_conflicts(cur)
            if rejected:
                result.quarantine_new = _quarantine(cur, rejected)
        return result

    def _write_row_by_row(
        self, valid: list[Valid], rejected: list[Rejected], queue: str
    ) -> BatchResult:
        result = BatchResult(valid=0, quarantined=len(rejected))
        late_rejects: list[Rejected] = []
        with self.conn.cursor() as cur:
            for v in valid:
                cur.execute("SAVEPOINT one_row")
                try:
                    cur.copy_expert(COPY_SQL, io.StringIO(_copy_line(v)))
                    cur.execute(INSERT_SQL[v.event_type])
                    inserted = cur.rowcount
                    if not inserted:
                        result.conflicts += _record_conflicts(cur)
                    table = TABLE_OF[v.event_type]
                    result.inserted[table] = result.inserted.get(table, 0) + inserted
                    result.valid += 1
                    cur.execute("TRUNCATE _raw_stage")
                    cur.execute("RELEASE SAVEPOINT one_row")
                except psycopg2.Error as exc:
                    if not is_row_error(exc):
                        raise
                    cur.execute("ROLLBACK TO SAVEPOINT one_row")
                    late_rejects.append(
                        Rejected(
                            queue,
                            v.routing_key,
                            warehouse_reason(exc),
                            v.text.encode("utf-8"),
                            v.message_id,
                            error_class=type(exc).__name__,
                            body_sha256=v.body_sha256,
                        )
                    )
            all_rejects = rejected + late_rejects
            result.quarantined = len(all_rejects)
            if all_rejects:
                result.quarantine_new = _quarantine(cur, all_rejects)
        self.conn.commit()
        return result


def _record_conflicts(cur: psycopg2.extensions.cursor) -> int:
    """Record the staged events whose message_id is in raw with another body; returns how many."""
    cur.execute(RECORD_CONFLICTS_SQL)
    return cur.rowcount


def _quarantine(cur: psycopg2.extensions.cursor, rejected: list[Rejected]) -> int:
    # every text column goes through safe_text: a NUL or a lone surrogate from a message must not
    # fail the insert that is there to keep that very message
    rows = [
        (
            safe_text(r.queue, 255),
            safe_text(r.routing_key, 255),
            safe_text(r.reason),
            safe_text(r.message_id, 64),
            psycopg2.Binary(r.body),
            psycopg2.Binary(r.body_sha256 or hashlib.sha256(r.body).digest()),
            len(r.body) if r.body_bytes is None else r.body_bytes,
            r.truncated,
            safe_text(r.error_class, 100),
        )
        for r in rejected
    ]
    # a page of at most 100 rows: bodies are up to the size limit each, and the statement
    # carries them hex-encoded (twice their size)
    return len(execute_values(cur, QUARANTINE_SQL, rows, page_size=100, fetch=True))
