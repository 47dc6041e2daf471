"""Write one batch of messages into raw Postgres in one transaction.

Valid events go through COPY into a temporary stage table and then `INSERT ... SELECT ... ON
CONFLICT (message_id) DO NOTHING` into their raw table (the event type picks the table, so a
message published under the wrong routing key is still kept). Invalid ones go to `raw.quarantine`,
keyed by queue and body hash so a redelivery lands on the same row. If Postgres rejects the batch
(a value the contract allowed but the column cannot hold), the batch is retried row by row and only
the offending rows are quarantined: nothing blocks a queue.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field

import psycopg2
import psycopg2.extensions
from psycopg2.extras import execute_values

STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS _raw_stage (
    event_type text, routing_key text, doc jsonb
) ON COMMIT DELETE ROWS
"""

_FLIGHT_KEY = "(p->>'carrier') || (p->>'flight_number') || '-' || (p->>'flight_date') || '-' || (p->>'origin')"
_ENVELOPE = """(d->>'message_id')::uuid, (d->>'schema_version')::smallint, d->>'event_type',
    (d->>'event_time')::timestamptz, d->>'source_system', routing_key"""

INSERT_SQL: dict[str, str] = {
    "flight_status": f"""
INSERT INTO raw.flight_events (message_id, schema_version, event_type, event_time, source_system,
    routing_key, carrier, flight_number, flight_date, origin, destination, status, flight_key, payload)
SELECT {_ENVELOPE}, p->>'carrier', (p->>'flight_number')::int, (p->>'flight_date')::date,
    p->>'origin', p->>'destination', p->>'status', {_FLIGHT_KEY}, p
FROM (SELECT doc AS d, doc->'payload' AS p, routing_key FROM _raw_stage
      WHERE event_type = 'flight_status') s
ON CONFLICT (message_id) DO NOTHING""",
    "passenger_event": f"""
INSERT INTO raw.passenger_events (message_id, schema_version, event_type, event_time, source_system,
    routing_key, passenger_ref, carrier, flight_number, flight_date, origin, action, flight_key,
    payload)
SELECT {_ENVELOPE}, p->>'passenger_ref', p->>'carrier', (p->>'flight_number')::int,
    (p->>'flight_date')::date, p->>'origin', p->>'action', {_FLIGHT_KEY}, p
FROM (SELECT doc AS d, doc->'payload' AS p, routing_key FROM _raw_stage
      WHERE event_type = 'passenger_event') s
ON CONFLICT (message_id) DO NOTHING""",
    "position_report": f"""
INSERT INTO raw.position_reports (message_id, schema_version, event_type, event_time,
    source_system, routing_key, tail_number, latitude, longitude, flight_key, payload)
SELECT {_ENVELOPE}, p->>'tail_number', (p->>'latitude')::float8, (p->>'longitude')::float8,
    CASE WHEN p->>'carrier' IS NOT NULL AND p->>'flight_number' IS NOT NULL
          AND p->>'flight_date' IS NOT NULL AND p->>'origin' IS NOT NULL
         THEN {_FLIGHT_KEY} END, p
FROM (SELECT doc AS d, doc->'payload' AS p, routing_key FROM _raw_stage
      WHERE event_type = 'position_report') s
ON CONFLICT (message_id) DO NOTHING""",
}
TABLE_OF = {
    "flight_status": "raw.flight_events",
    "passenger_event": "raw.passenger_events",
    "position_report": "raw.position_reports",
}
# All three inserts in one statement: one round trip per batch instead of three, which matters
# because every return from Postgres makes the writer thread wait for the consumer's GIL.
INSERT_ALL_SQL = (
    "WITH "
    + ", ".join(f"{etype} AS ({sql} RETURNING 1)" for etype, sql in INSERT_SQL.items())
    + " SELECT "
    + ", ".join(f"(SELECT count(*) FROM {etype})" for etype in INSERT_SQL)
)
COPY_SQL = "COPY _raw_stage (event_type, routing_key, doc) FROM STDIN"
COPY_CHUNK = 1 << 20  # read the batch's COPY text in few large pieces

QUARANTINE_SQL = """
INSERT INTO raw.quarantine (queue, routing_key, reason, message_id, body, body_sha256, body_bytes)
VALUES %s ON CONFLICT (queue, body_sha256) DO NOTHING RETURNING 1"""

# Errors that a row's content can cause (as opposed to a lost connection, which must propagate
# so that nothing is acked).
ROW_ERRORS = (psycopg2.DataError, psycopg2.IntegrityError, psycopg2.ProgrammingError)

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


@dataclass(slots=True)
class Valid:
    """A contract-valid event ready for COPY: its type, routing key and JSON text."""

    event_type: str
    routing_key: str
    text: str
    message_id: str


@dataclass(slots=True)
class Rejected:
    """A message for the quarantine, with the reason and the bytes exactly as received."""

    queue: str
    routing_key: str | None
    reason: str
    body: bytes
    message_id: str | None = None


@dataclass
class BatchResult:
    valid: int = 0
    inserted: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    quarantine_new: int = 0

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
    return f"{v.event_type}\t{_copy_escape(v.routing_key)}\t{_copy_escape(v.text)}\n"


class RawWriter:
    """Owns one warehouse connection and writes batches through it."""

    def __init__(self, conn: psycopg2.extensions.connection):
        self.conn = conn
        with conn.cursor() as cur:
            cur.execute(STAGE_DDL)
        conn.commit()

    def write(self, valid: list[Valid], rejected: list[Rejected], queue: str) -> BatchResult:
        """Write a batch in one transaction; returns counts. Raises only on connection loss."""
        try:
            result = self._write(valid, rejected)
            self.conn.commit()
            return result
        except ROW_ERRORS:
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
                    table = TABLE_OF[v.event_type]
                    result.inserted[table] = result.inserted.get(table, 0) + cur.rowcount
                    result.valid += 1
                    cur.execute("TRUNCATE _raw_stage")
                    cur.execute("RELEASE SAVEPOINT one_row")
                except ROW_ERRORS as exc:
                    cur.execute("ROLLBACK TO SAVEPOINT one_row")
                    reason = f"rejected by the warehouse: {str(exc).splitlines()[0]}"
                    late_rejects.append(
                        Rejected(queue, v.routing_key, reason, v.text.encode("utf-8"), v.message_id)
                    )
            all_rejects = rejected + late_rejects
            result.quarantined = len(all_rejects)
            if all_rejects:
                result.quarantine_new = _quarantine(cur, all_rejects)
        self.conn.commit()
        return result


def _quarantine(cur: psycopg2.extensions.cursor, rejected: list[Rejected]) -> int:
    rows = [
        (
            r.queue,
            r.routing_key,
            r.reason,
            r.message_id,
            psycopg2.Binary(r.body),
            psycopg2.Binary(hashlib.sha256(r.body).digest()),
            len(r.body),
        )
        for r in rejected
    ]
    return len(execute_values(cur, QUARANTINE_SQL, rows, page_size=1000, fetch=True))
