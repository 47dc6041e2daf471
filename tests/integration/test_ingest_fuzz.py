"""Property-based fuzzing of the drain on the real broker and warehouse.

The contract: every delivered message has exactly one outcome, a raw row, a duplicate count or a
quarantine row; nothing raised while handling one message escapes the drain; the dead-letter
queue and every queue end empty. Each hypothesis example publishes a whole list of messages
(`fuzz_strategies.message_lists`: good events, hostile bodies, routing keys, properties and
headers, exact re-sends, same-`message_id` conflicts) on a topology of its own, drains every
queue, and checks the outcome of each message against a model:

- a body the validator rejects is in `raw.quarantine` (one row per queue and body hash);
- a body the validator accepts, under a clean envelope (a printable UTF-8 routing key, the
  standard properties, no headers), is in its raw table, or counts as a duplicate when its
  `message_id` was already kept (in drain order: queue by queue, in publish order); the first
  body wins;
- a valid body under a hostile envelope, or one that makes the validator itself raise, may take
  either outcome, but exactly one, and a quarantine row for it must name the exception class;
- the conflicts table holds one row per message_id and losing body (times_seen counting it);
- every queue ends empty, nothing is dead-lettered, and the drain's counts add up.

Bounded mode (`make test`): a fixed seed, LATAM_FUZZ_DEFAULT_EXAMPLES examples, no shrinking.
Long mode (`make fuzz`): LATAM_FUZZ_EXAMPLES examples from a random seed (LATAM_FUZZ_SEED fixes
it), with shrinking, so each distinct failure is reported as a minimal example. Minimal examples
go to `fuzz_regressions.py`, which `test_fuzz_regression` replays between good events.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import struct
import uuid
from collections import Counter
from collections.abc import Iterator

import orjson
import pika
import pika.data
import psycopg2
import pytest
from hypothesis import HealthCheck, Phase, given, note, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from latam_dagster.contracts import validate_body
from latam_dagster.contracts.validator import ValidEvent
from latam_dagster.ingest.drain import DrainConfig, DrainStats
from latam_dagster.ingest.safe_text import safe_text
from latam_dagster.ingest.topology import (
    QUEUES,
    Topology,
    declare_topology,
    delete_topology,
    open_connection,
)
from latam_dagster.ingest.writer import TABLE_OF
from tests.integration.fuzz_regressions import REGRESSIONS
from tests.integration.fuzz_strategies import STANDARD_PROPERTIES, Msg, RawHeader, message_lists
from tests.integration.ingest_helpers import (
    RAW_TABLES,
    assert_queues_empty,
    drain,
    dumps,
    make_flight_event,
    make_passenger_event,
    make_position_event,
    queue_counts,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

LATAM_FUZZ_DEFAULT_EXAMPLES = 60
_LONG_EXAMPLES = os.environ.get("LATAM_FUZZ_EXAMPLES")
LONG_MODE = bool(_LONG_EXAMPLES)
EXAMPLES = int(_LONG_EXAMPLES or LATAM_FUZZ_DEFAULT_EXAMPLES)
MAX_BYTES = DrainConfig().max_message_bytes
FAMILIES = list(QUEUES)  # drain order
FAMILY_OF_WORD = {b"flight": "flights", b"passenger": "passengers", b"position": "positions"}

# the drain records same-message_id conflicts in raw.message_id_conflicts (first body kept)
CONFLICT_ROWS_WRITTEN = True


# --- publishing -----------------------------------------------------------------------------------


@contextlib.contextmanager
def other_clients_encoding() -> Iterator[None]:
    """Let pika encode header values as other clients do: floats as AMQP doubles ('d'; pika's
    own encoder refuses floats, its decoder delivers doubles as ints) and `RawHeader` values
    verbatim."""
    original = pika.data.encode_value

    def encode_value(pieces: list, value) -> int:
        if isinstance(value, RawHeader):
            pieces.append(bytes(value))
            return len(value)
        if isinstance(value, float):
            pieces.append(struct.pack(">cd", b"d", value))
            return 9
        return original(pieces, value)

    pika.data.encode_value = encode_value
    try:
        yield
    finally:
        pika.data.encode_value = original


def destination(routing_key: bytes) -> str:
    """The family whose queue a routing key reaches: bindings are `<word>.#`, everything else
    goes through the alternate exchange to the unrouted queue."""
    return FAMILY_OF_WORD.get(routing_key.split(b".", 1)[0], "unrouted")


def publish(amqp_url: str, topo: Topology, msgs: list[Msg]) -> None:
    """Publish every message as it is, with publisher confirms, then wait until the queues hold
    them all."""
    conn = open_connection(amqp_url)
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        with other_clients_encoding():
            for m in msgs:
                props = STANDARD_PROPERTIES if m.properties is None else m.properties
                channel.basic_publish(
                    topo.exchange,
                    m.routing_key,
                    m.body,
                    pika.BasicProperties(**props, headers=m.headers),
                )
    finally:
        conn.close()
    expected = Counter(topo.queue(destination(m.routing_key)) for m in msgs)
    want = {q: expected.get(q, 0) for q in topo.queues}
    wait_until(
        lambda: queue_counts(amqp_url, topo.queues) == want, timeout=30, what=f"queues {want}"
    )


# --- the model ------------------------------------------------------------------------------------

VALID, INVALID, CRASH = "valid", "invalid", "validator raised"
UUID_TEXT = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def verdict(body: bytes) -> str:
    try:
        outcome = validate_body(body, MAX_BYTES)
    except Exception:  # the drain must quarantine it, or accept it when its validator copes
        return CRASH
    return VALID if isinstance(outcome, ValidEvent) else INVALID


def clean_envelope(m: Msg) -> bool:
    """A printable UTF-8 routing key, the standard properties and no headers."""
    try:
        key = m.routing_key.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return m.properties is None and m.headers is None and safe_text(key, 256) == key


def sha(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def reset_warehouse(url: str) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                f"TRUNCATE {', '.join(RAW_TABLES)}, raw.quarantine, raw.message_id_conflicts"
            )
    finally:
        conn.close()


def fetch(url: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def check_outcomes(url: str, topo: Topology, msgs: list[Msg], stats: dict[str, DrainStats]) -> None:
    """Compare the warehouse and the drain's counts with the model (see the module docstring)."""
    quarantine = {
        (queue, bytes(h)): {
            "reason": reason,
            "body": bytes(body),
            "truncated": truncated,
            "error_class": error_class,
            "message_id": mid,
        }
        for queue, h, reason, body, truncated, error_class, mid in fetch(
            url,
            "SELECT queue, body_sha256, reason, body, body_truncated, error_class, message_id "
            "FROM raw.quarantine",
        )
    }
    raw: dict[tuple[str, uuid.UUID], tuple] = {}
    for table in RAW_TABLES:
        for mid, body_hash, key in fetch(
            url, f"SELECT message_id, body_sha256, routing_key FROM {table}"
        ):
            raw[(table, uuid.UUID(mid))] = (body_hash, key)

    problems: list[str] = []
    expected_q: set[tuple[str, bytes]] = set()
    handled: set[tuple[str, bytes]] = set()  # quarantined only because handling it raised
    kept: dict[tuple[str, uuid.UUID], Msg] = {}
    conflicts: Counter[tuple[uuid.UUID, bytes]] = Counter()
    duplicates = 0
    order = sorted(
        enumerate(msgs), key=lambda im: (FAMILIES.index(destination(im[1].routing_key)), im[0])
    )
    for i, m in order:
        queue = topo.queue(destination(m.routing_key))
        key = (queue, sha(m.body))
        v = verdict(m.body)
        if v == INVALID:
            expected_q.add(key)
            continue
        if key in quarantine and (v == CRASH or not clean_envelope(m)):
            expected_q.add(key)
            handled.add(key)
            continue
        try:
            doc = orjson.loads(m.body)
            ident = (TABLE_OF[doc["event_type"]], uuid.UUID(doc["message_id"]))
        except Exception as exc:
            problems.append(f"#{i} ({v}) has no outcome and is no event ({exc!r}): {m.short()}")
            continue
        if ident not in kept:
            kept[ident] = m
            continue
        duplicates += 1
        if sha(kept[ident].body) != sha(m.body):
            conflicts[(ident[1], sha(m.body))] += 1

    # quarantine: one row per queue and body hash of every rejected message, and no other
    for key in sorted(expected_q - set(quarantine)):
        problems.append(f"not quarantined: {describe(msgs, topo, key)}")
    for key in sorted(set(quarantine) - expected_q):
        row = quarantine[key]
        problems.append(
            f"quarantined but valid ({row['reason']!r}, {row['error_class']}): "
            f"{describe(msgs, topo, key)}"
        )
    for key, row in quarantine.items():
        if not row["reason"]:
            problems.append(f"empty quarantine reason: {describe(msgs, topo, key)}")
        if key in handled and not row["error_class"]:
            problems.append(
                f"a valid body quarantined without an error class ({row['reason']!r}): "
                f"{describe(msgs, topo, key)}"
            )
        if not row["truncated"] and sha(row["body"]) != key[1]:
            problems.append(f"the quarantined body is not the one received: {row['body'][:60]!r}")
        if row["message_id"] is not None and not UUID_TEXT.match(row["message_id"]):
            problems.append(f"quarantine message_id is not a uuid: {row['message_id']!r}")

    # raw: the first body of every message_id, once
    for ident in sorted(set(kept) - set(raw)):
        problems.append(f"not in {ident[0]}: {kept[ident].short()}")
    for ident in sorted(set(raw) - set(kept)):
        problems.append(f"unexpected row in {ident[0]}: message_id {ident[1]}")
    both = sorted(set(kept) & set(raw))
    for ident in first_body_differs(url, [(ident, kept[ident].body) for ident in both]):
        problems.append(f"{ident}: the raw payload is not the first body's: {kept[ident].short()}")
    for ident in both:
        body_hash, key = raw[ident]
        m = kept[ident]
        if body_hash is not None and bytes(body_hash) != sha(m.body):
            problems.append(f"{ident}: raw body_sha256 is not the first body's hash")
        if clean_envelope(m) and key != m.routing_key.decode():
            problems.append(f"{ident}: raw routing_key {key!r} != {m.routing_key!r}")

    if CONFLICT_ROWS_WRITTEN:
        rows = fetch(
            url,
            "SELECT message_id, conflicting_sha256, kept_sha256, raw_table, times_seen "
            "FROM raw.message_id_conflicts",
        )
        seen = {(uuid.UUID(mid), bytes(c)): n for mid, c, _k, _t, n in rows}
        if seen != dict(conflicts):
            problems.append(f"message_id_conflicts {seen} != expected {dict(conflicts)}")
        firsts = {ident[1]: (ident[0], sha(m.body)) for ident, m in kept.items()}
        for mid, _c, kept_sha, table, _n in rows:
            if firsts.get(uuid.UUID(mid)) != (table, bytes(kept_sha)):
                problems.append(f"conflict on {mid}: kept {table} {bytes(kept_sha).hex()[:12]}")

    # the drain's counts: every delivery counted once, as inserted, duplicate or quarantined
    routed = Counter(destination(m.routing_key) for m in msgs)
    for family, s in stats.items():
        if s.received != routed.get(family, 0):
            problems.append(f"{family}: received {s.received}, published {routed.get(family, 0)}")
        if s.inserted + s.duplicates + s.quarantined != s.received:
            problems.append(
                f"{family}: inserted {s.inserted} + duplicates {s.duplicates} + quarantined "
                f"{s.quarantined} != received {s.received}"
            )
    totals = {
        "inserted": (sum(s.inserted for s in stats.values()), len(raw)),
        "duplicates": (sum(s.duplicates for s in stats.values()), duplicates),
        "new quarantine rows": (
            sum(s.quarantined - s.quarantine_duplicates for s in stats.values()),
            len(quarantine),
        ),
    }
    for what, (counted, expected) in totals.items():
        if counted != expected:
            problems.append(f"the drains counted {counted} {what}, expected {expected}")
    if problems:
        raise AssertionError("\n".join(problems))


def first_body_differs(url: str, rows: list[tuple[tuple[str, uuid.UUID], bytes]]) -> list:
    """The raw rows whose payload is not that of the given body, compared by Postgres itself
    (jsonb keeps a number's decimal text, which a float in Python cannot always tell)."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            differ = []
            for (table, mid), body in rows:
                cur.execute(
                    f"SELECT payload = (%s::jsonb -> 'payload') FROM {table} WHERE message_id = %s",
                    (body.decode("utf-8"), str(mid)),
                )
                if not cur.fetchone()[0]:
                    differ.append((table, mid))
            return differ
    finally:
        conn.close()


def describe(msgs: list[Msg], topo: Topology, key: tuple[str, bytes]) -> str:
    queue, body_hash = key
    for i, m in enumerate(msgs):
        if topo.queue(destination(m.routing_key)) == queue and sha(m.body) == body_hash:
            return f"#{i} in {queue}: {m.short()}"
    return f"{queue} {body_hash.hex()[:12]} (no such message)"


# --- one run: publish a list, drain every queue, check --------------------------------------------


def run_messages(amqp_url: str, warehouse_url: str, msgs: list[Msg], **config) -> None:
    """Publish `msgs` on a topology of their own, drain every queue (`fast_config(**config)`),
    check every outcome."""
    tell(f"drain config {config}")
    for i, m in enumerate(msgs):
        tell(f"#{i} -> {destination(m.routing_key)}, {verdict(m.body)}: {m.short()}")
    topo = Topology(prefix=f"fz{uuid.uuid4().hex[:10]}")
    declare_topology(amqp_url, topo)
    try:
        reset_warehouse(warehouse_url)
        publish(amqp_url, topo, msgs)
        stats: dict[str, DrainStats] = {}
        for family in FAMILIES:
            try:
                stats[family] = drain(
                    amqp_url, warehouse_url, topo, family, **{"idle_seconds": 0.05, **config}
                )
            except Exception as exc:
                tell(f"the drain of {topo.queue(family)} raised {exc!r}")
                raise  # as it is, so hypothesis tells distinct failures apart
        check_outcomes(warehouse_url, topo, msgs, stats)
        assert_queues_empty(amqp_url, topo)
    finally:
        delete_topology(amqp_url, topo)


def tell(text: str) -> None:
    """A hypothesis note inside the property test, printed (shown on failure) in the others."""
    try:
        note(text)
    except InvalidArgument:
        print(text)


# small batches mix good and bad messages across several transactions; a small byte budget
# makes batches by size (a body near the size limit then is a batch of its own)
drain_configs = st.fixed_dictionaries(
    {
        "batch_size": st.sampled_from([50, 3, 1]),
        "max_bytes_in_flight": st.sampled_from(
            [DrainConfig().max_bytes_in_flight, 3 * MAX_BYTES, 30 * 1024]
        ),
    }
)


def _maybe_seed(test):
    fixed = os.environ.get("LATAM_FUZZ_SEED")
    return seed(int(fixed))(test) if fixed else test


@_maybe_seed
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not LONG_MODE,
    database=None,
    phases=(
        (Phase.explicit, Phase.generate, Phase.shrink)
        if LONG_MODE
        else (Phase.explicit, Phase.generate)
    ),
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
@given(msgs=message_lists(min_size=1 if LONG_MODE else 4), config=drain_configs)
def test_every_message_gets_exactly_one_outcome(amqp_url, warehouse_url, msgs, config):
    run_messages(amqp_url, warehouse_url, msgs, **config)


# --- the corpus -----------------------------------------------------------------------------------

GOOD_AROUND = {
    "flights": (make_flight_event, b"flight.sabre"),
    "passengers": (make_passenger_event, b"passenger.amadeus"),
    "positions": (make_position_event, b"position.adsb-feed"),
    "unrouted": (make_flight_event, b"unknown.sabre"),
}


@pytest.mark.parametrize("case", REGRESSIONS, ids=[c["id"] for c in REGRESSIONS])
def test_fuzz_regression(case, amqp_url, warehouse_url):
    """Each minimal failing example, between two good events of the same queue (one batch)."""
    make, good_key = GOOD_AROUND[destination(case["routing_key"])]
    msg = Msg(case["body"], case["routing_key"], case["properties"], case["headers"], case["id"])
    before, after = (Msg(dumps(make()), good_key, note="good event") for _ in range(2))
    run_messages(amqp_url, warehouse_url, [before, msg, after])
