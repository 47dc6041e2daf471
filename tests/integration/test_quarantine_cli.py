"""`latam quarantine list/replay` on hostile rows: bodies that are not UTF-8, control characters
and terminal escapes in bodies and in text columns, and rows kept truncated."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid

import orjson
import pytest

from tests.conftest import LATAM, query
from tests.integration.ingest_helpers import make_flight_event

pytestmark = pytest.mark.integration

UNSAFE_BYTES = (b"\x00", b"\x07", b"\x1b", b"\x9b", b"\xc2\x9b")


@pytest.fixture
def env(warehouse_url: str, amqp_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "LATAM_WAREHOUSE_URL": warehouse_url,
        "LATAM_AMQP_URL": amqp_url,
        "LATAM_TOPOLOGY_PREFIX": f"q{uuid.uuid4().hex[:8]}",
    }


def latam(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LATAM, *args], env=env, capture_output=True, timeout=120, check=False)


def ok(proc: subprocess.CompletedProcess) -> bytes:
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    assert b"Traceback" not in proc.stderr
    return proc.stdout


def insert(
    url: str,
    body: bytes,
    reason: str = "body is not JSON",
    routing_key: str = "flight.bad",
    whole: bytes | None = None,
    error_class: str | None = None,
) -> int:
    """One quarantine row as the drain writes it; `whole` makes it a truncated row whose stored
    body is `body`, the head of `whole`."""
    described = whole if whole is not None else body
    rows = query(
        url,
        """INSERT INTO raw.quarantine (queue, routing_key, reason, body, body_sha256,
                                       body_bytes, body_truncated, error_class)
           VALUES ('t.flights', %s, %s, %s, %s, %s, %s, %s) RETURNING quarantine_id""",
        (
            routing_key,
            reason,
            body,
            hashlib.sha256(described).digest(),
            len(described),
            whole is not None,
            error_class,
        ),
    )
    return rows[0][0]


def test_list_shows_a_body_that_is_not_utf8_as_hex(env):
    qid = insert(env["LATAM_WAREHOUSE_URL"], b"\xff\xfe\x00{", "body is not UTF-8")
    out = ok(latam(env, "quarantine", "list"))
    assert f"#{qid} ".encode() in out
    assert b"hex:fffe007b" in out
    assert b"1 row(s)" in out
    listed = json.loads(ok(latam(env, "quarantine", "list", "--json")))
    assert [r["body_preview"] for r in listed] == ["hex:fffe007b"]
    assert listed[0]["body_bytes"] == 4 and listed[0]["body_truncated"] is False


def test_list_escapes_nul_and_terminal_escapes_in_bodies_and_text_columns(env):
    body = b'{"note": "\x00\x1b[2J\x1b]0;pwned\x07 \xc2\x9b31m"}'
    insert(
        env["LATAM_WAREHOUSE_URL"],
        body,
        reason="old reason \x1b[31mred\x1b[0m",
        routing_key="flight.\x1b[1mbold",
        error_class="Value\x1bError",
    )
    for args in ((), ("--show-body",), ("--json",), ("--json", "--show-body")):
        out = ok(latam(env, "quarantine", "list", *args))
        for raw in UNSAFE_BYTES:
            assert raw not in out, (args, raw, out)
    out = ok(latam(env, "quarantine", "list"))
    assert b"\\x00\\x1b[2J\\x1b]0;pwned\\x07 \\x9b31m" in out
    assert b"old reason \\x1b[31mred" in out
    assert b"[error: Value\\x1bError]" in out
    (row,) = json.loads(ok(latam(env, "quarantine", "list", "--json")))
    assert row["routing_key"] == "flight.\\x1b[1mbold"
    assert row["error_class"] == "Value\\x1bError"
    assert row["body_preview"].startswith('{"note": "\\x00\\x1b[2J')


def test_list_marks_truncated_rows_and_shows_more_with_show_body(env):
    url = env["LATAM_WAREHOUSE_URL"]
    whole = orjson.dumps(make_flight_event(payload={"padding": "x" * 5000}))
    head = whole[:1024]
    qid = insert(url, head, "body too large", whole=whole, error_class="BodyTooLarge")
    out = ok(latam(env, "quarantine", "list"))
    line = next(x for x in out.splitlines() if x.startswith(f"#{qid} ".encode()))
    assert f"[truncated: 1024 of {len(whole)} B kept, no replay]".encode() in line
    assert b"[error: BodyTooLarge]" in line
    (row,) = json.loads(ok(latam(env, "quarantine", "list", "--json")))
    assert row["body_truncated"] is True and row["error_class"] == "BodyTooLarge"
    assert row["body_bytes"] == len(whole) and row["stored_bytes"] == 1024
    assert row["body_sha256"] == hashlib.sha256(whole).hexdigest()
    assert len(row["body_preview"]) <= 81 and row["body_preview"].endswith("…")
    assert "body" not in row
    (shown,) = json.loads(ok(latam(env, "quarantine", "list", "--json", "--show-body")))
    # the whole stored head, marked as cut because the body went on
    assert shown["body"] == head.decode() + "…"


def test_list_without_rows_and_with_replayed_rows(env):
    url = env["LATAM_WAREHOUSE_URL"]
    assert ok(latam(env, "quarantine", "list")).endswith(b"0 row(s)\n")
    qid = insert(url, b"LA800 departed")
    query(
        url,
        "UPDATE raw.quarantine SET replayed_at = now(), replay_result = 'inserted'"
        " WHERE quarantine_id = %s",
        (qid,),
    )
    assert ok(latam(env, "quarantine", "list")).endswith(b"0 row(s)\n")
    assert b"[replayed: inserted]" in ok(latam(env, "quarantine", "list", "--all"))


def test_replay_skips_truncated_rows_and_leaves_them_open(env):
    url = env["LATAM_WAREHOUSE_URL"]
    event = make_flight_event()
    body = orjson.dumps(event)
    # a truncated row whose stored head happens to be a whole valid event: still not replayed
    truncated = insert(url, body, "body too large", whole=body + b" " * 10_000)
    fixable = make_flight_event()
    fixable_id = insert(url, orjson.dumps(fixable), "rejected by an older contract")
    broken_id = insert(url, b"\xff\xfe\x00{", "body is not UTF-8")
    out = ok(latam(env, "quarantine", "replay", "--dry-run"))
    assert b"dry run: examined 3, inserted 1, already in raw 0, still invalid 1" in out
    assert b"truncated (not replayable) 1" in out
    assert query(url, "SELECT count(*) FROM raw.flight_events") == [(0,)]
    out = ok(latam(env, "quarantine", "replay"))
    assert b"examined 3, inserted 1, already in raw 0, still invalid 1" in out
    assert b"truncated (not replayable) 1" in out
    assert query(url, "SELECT message_id::text FROM raw.flight_events") == [
        (fixable["message_id"],)
    ]
    state = dict(
        query(url, "SELECT quarantine_id, replayed_at IS NOT NULL FROM raw.quarantine", ())
    )
    assert state == {truncated: False, fixable_id: True, broken_id: False}
    # the open rows are examined again, and the truncated one is still left alone
    out = ok(latam(env, "quarantine", "replay"))
    assert b"examined 2, inserted 0, already in raw 0, still invalid 1" in out
    assert b"truncated (not replayable) 1" in out
    assert query(url, "SELECT count(*) FROM raw.flight_events") == [(1,)]


def test_replay_stores_a_safe_reason(env):
    url = env["LATAM_WAREHOUSE_URL"]
    qid = insert(url, b"\xff\xfe\x00{", reason="stale \x1b[31m reason")
    ok(latam(env, "quarantine", "replay"))
    ((reason,),) = query(url, "SELECT reason FROM raw.quarantine WHERE quarantine_id = %s", (qid,))
    assert reason.startswith("body is not UTF-8")
    assert not any(ch in reason for ch in "\x00\x1b\x07")
