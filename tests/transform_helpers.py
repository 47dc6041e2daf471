"""Helpers of the transformation tests: adversarial events, loading raw, reading tables back.

`chaos_events` builds contract-valid events meant to break a naive implementation: partial events
(missing keys and explicit nulls), ties on event_time, corrections arriving later, cancellations
and diversions, passengers who cancel and rebook, aircraft reports with and without a flight, an
unknown airport, a zero seat capacity, uppercase message ids and dates years in the past.
`deliver` then duplicates and shuffles them the way a broker may.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pandas as pd

from latam_dagster.contracts import InvalidEvent, validate_event
from latam_dagster.db import connect
from latam_dagster.ingest.topology import routing_key_for
from latam_dagster.ingest.writer import RawWriter, Valid
from latam_dagster.transform.curated import StepResult, update_all
from latam_dagster.transform.marts import refresh_pending

AIRPORTS = ("SCL", "LIM", "GRU", "GIG", "BOG", "MDE", "EZE", "UIO", "CUZ", "MVD", "QQQ")
CARRIERS = ("LA", "JJ", "4M", "XL")
OFFSETS = (timezone(timedelta(hours=-3)), timezone(timedelta(hours=-5)), UTC)
FINAL = ("arrived",) * 6 + ("cancelled", "diverted", "departed", "boarding", "scheduled")
LIFECYCLE = ("scheduled", "boarding", "departed", "arrived")
OLD_DATES = (date(2021, 3, 4), date(2023, 7, 19))


def _rfc3339(ts: datetime, rng: random.Random) -> str:
    return ts.astimezone(rng.choice(OFFSETS)).isoformat()


def _message_id(rng: random.Random) -> str:
    mid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return mid.upper() if rng.random() < 0.05 else mid


def _event(rng: random.Random, etype: str, ts: datetime, source: str, payload: dict) -> dict:
    return {
        "message_id": _message_id(rng),
        "schema_version": 1,
        "event_type": etype,
        "event_time": _rfc3339(ts, rng),
        "source_system": source,
        "payload": payload,
    }


def _partial(rng: random.Random, fields: dict, keep: float) -> dict:
    """A random subset of `fields`; some dropped keys become explicit nulls instead."""
    out = {}
    for k, v in fields.items():
        if rng.random() < keep:
            out[k] = v
        elif rng.random() < 0.3:
            out[k] = None
    return out


def chaos_events(
    seed: int,
    flights: int = 40,
    today: date | None = None,
    unknown_airport: bool = True,
    implausible: bool = False,
) -> list[dict]:
    """Contract-valid events of `flights` flights over the last days (a few on old dates).

    `unknown_airport` sends a few flights to an airport missing from dim_airport: the transforms
    must cope, and the audit must hold them back (`flight_airports_known`) from curated and marts.
    `implausible` also gives a few flights a take-off two days late (held back once that event
    arrives) and a few a two-seat cabin (their passenger load is held back when three board); the
    random draws stay those of `implausible=False`, so a seed's other flights do not change.
    """
    rng = random.Random(seed)
    today = today or datetime.now(UTC).date()
    events: list[dict] = []
    used: set[tuple] = set()
    tails = [f"CC-B{c}{d}" for c in "ABCDEF" for d in "XYZ"]
    for i in range(flights):
        day = rng.choice(OLD_DATES) if i % 13 == 5 else today - timedelta(days=rng.randint(0, 4))
        origin, destination = rng.sample(AIRPORTS[:-1], 2)
        if unknown_airport and i % 17 == 3:
            destination = "QQQ"  # not in dim_airport: distance unknown
        carrier, number = rng.choice(CARRIERS), rng.randint(1, 9999)
        if (carrier, number, day, origin) in used:
            continue
        used.add((carrier, number, day, origin))
        key = {"carrier": carrier, "flight_number": number, "flight_date": day.isoformat()}
        key["origin"] = origin
        sched_dep = datetime(
            day.year, day.month, day.day, rng.randint(5, 22), 5 * rng.randint(0, 11), tzinfo=UTC
        )
        sched_arr = sched_dep + timedelta(minutes=rng.randint(45, 600))
        act_dep = sched_dep + timedelta(minutes=rng.randint(-10, 120), seconds=rng.randint(0, 59))
        act_arr = sched_arr + timedelta(
            minutes=rng.randint(-25, 90), seconds=rng.choice((0, 0, 30, 59))
        )
        act_arr = max(act_arr, act_dep + timedelta(minutes=30))  # a flight lands after take-off
        tail = rng.choice(tails)
        seats = rng.choice((174, 186, 220, 0, None))
        if implausible and i % 7 == 2:
            seats = 2
        if implausible and i % 11 == 4:
            act_dep, act_arr = act_dep + timedelta(hours=50), act_arr + timedelta(hours=50)
        final = rng.choice(FINAL)
        statuses = (
            list(LIFECYCLE[: LIFECYCLE.index(final) + 1])
            if final in LIFECYCLE
            else [
                "scheduled",
                final,
            ]
        )
        if final == "diverted":
            statuses = ["scheduled", "boarding", "departed", "diverted"]
        t = sched_dep - timedelta(hours=rng.randint(2, 48))
        fields = {
            "scheduled_departure": _rfc3339(sched_dep, rng),
            "scheduled_arrival": _rfc3339(sched_arr, rng),
            "tail_number": tail,
            "seat_capacity": seats,
        }
        last_time = t
        for n, status in enumerate(statuses):
            extra = dict(fields)
            if status in ("departed", "arrived", "diverted"):
                extra["actual_departure"] = _rfc3339(act_dep, rng)
            if status in ("arrived", "diverted"):
                extra["actual_arrival"] = _rfc3339(act_arr, rng)
            payload = {**key, "destination": destination, "status": status}
            payload.update(_partial(rng, extra, keep=0.9 if n == 0 else 0.5))
            t = t + timedelta(minutes=rng.randint(0, 90)) if rng.random() > 0.15 else t  # ties
            last_time = t
            events.append(_event(rng, "flight_status", t, "ops_control", payload))
        if rng.random() < 0.3:  # a correction of the schedule, published later
            fix = {**key, "destination": destination, "status": statuses[-1]}
            fix["scheduled_departure"] = _rfc3339(sched_dep + timedelta(minutes=15), rng)
            events.append(_event(rng, "flight_status", last_time, "ops_acars", fix))
        if rng.random() < 0.2:  # an older report arriving with stale values
            stale = {
                **key,
                "destination": destination,
                "status": "scheduled",
                "tail_number": "CC-OLD",
            }
            events.append(
                _event(rng, "flight_status", sched_dep - timedelta(days=3), "ops_acars", stale)
            )
        events.extend(_passengers(rng, key, sched_dep, rng.randint(0, 14)))
        events.extend(_positions(rng, key, tail, sched_dep, rng.randint(0, 6)))
    return events


def _passengers(rng: random.Random, key: dict, sched_dep: datetime, count: int) -> Iterator[dict]:
    for p in range(count):
        ref = f"PNR-{rng.getrandbits(32):08X}" if p % 5 else "PNR-FREQUENT-FLYER"
        actions = ["booked", "checked_in", "boarded"][: rng.randint(1, 3)]
        if rng.random() < 0.15:
            actions = ["booked", "cancelled"] + (["booked"] if rng.random() < 0.5 else [])
        t = sched_dep - timedelta(days=rng.randint(1, 30))
        for action in actions:
            t = t + timedelta(hours=rng.randint(0, 20)) if rng.random() > 0.1 else t
            extra = _partial(
                rng,
                {
                    "cabin": rng.choice(("economy", "business")),
                    "fare_amount": round(rng.uniform(40, 900), 2),
                    "currency": "USD",
                },
                keep=0.6,
            )
            payload = {"passenger_ref": ref, **key, "action": action, **extra}
            yield _event(rng, "passenger_event", t, "res_core", payload)


def _positions(
    rng: random.Random, key: dict, tail: str, sched_dep: datetime, count: int
) -> Iterator[dict]:
    for _ in range(count):
        t = sched_dep + timedelta(minutes=rng.randint(0, 300))
        payload = {
            "tail_number": tail,
            "latitude": round(rng.uniform(-40, 5), 5),
            "longitude": round(rng.uniform(-80, -40), 5),
            **_partial(
                rng,
                {
                    "altitude_ft": rng.randint(0, 41000),
                    "ground_speed_kt": rng.randint(0, 500),
                    "heading_deg": round(rng.uniform(0, 359), 1),
                },
                keep=0.7,
            ),
        }
        if rng.random() < 0.6:
            payload.update(key)
        yield _event(rng, "position_report", t, "adsb_feed_1", payload)


def create_database(name: str, template: str) -> str:
    """Clone `template` into a new database `name`; returns its URL."""
    from tests.conftest import _admin_exec, _db_url

    _admin_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return _db_url(name)


@contextmanager
def airports_template(template_db: str) -> Iterator[str]:
    """A template (its name) with curated.dim_airport loaded: the audit needs known airports."""
    from latam_dagster.transform.airports import load_dim_airport
    from tests.conftest import RUN_ID, drop_database

    name = f"latam_tpla_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    url = create_database(name, template_db)
    try:
        load_dim_airport(url)
        yield name
    finally:
        drop_database(name)


@contextmanager
def cloned_database(template: str) -> Iterator[str]:
    """A fresh database cloned from `template` (its URL), dropped afterwards."""
    from tests.conftest import RUN_ID, drop_database

    name = f"latam_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    try:
        yield create_database(name, template)
    finally:
        drop_database(name)


def deliver(events: list[dict], seed: int, duplicate_share: float = 0.1) -> list[dict]:
    """The events as a broker may deliver them: some twice, in random order."""
    rng = random.Random(seed)
    out = list(events) + [rng.choice(events) for _ in range(int(len(events) * duplicate_share))]
    rng.shuffle(out)
    return out


def assert_valid(events: Iterable[dict]) -> None:
    for e in events:
        outcome = validate_event(e)
        assert not isinstance(outcome, InvalidEvent), (outcome.reason, e)


def write_raw(url: str, events: list[dict]) -> None:
    """Insert events into raw the way the drain does (COPY, ON CONFLICT DO NOTHING)."""
    conn = connect(url)
    try:
        writer = RawWriter(conn)
        valid = [
            Valid(e["event_type"], routing_key_for(e), orjson.dumps(e).decode(), e["message_id"])
            for e in events
        ]
        for i in range(0, len(valid), 2000):
            writer.write(valid[i : i + 2000], [], "test")
    finally:
        conn.close()


def micro_batches(url: str, events: list[dict], batches: int) -> list[StepResult]:
    """Write the events in `batches` slices, updating curated and marts after each; returns
    every curated update (with its audit)."""
    size = max(1, -(-len(events) // batches))
    steps: list[StepResult] = []
    for i in range(0, len(events), size):
        write_raw(url, events[i : i + size])
        steps.extend(update_all(url))
        refresh_pending(url)
    return steps


def fetch_rows(url: str, sql: str) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of a query, values as psycopg2 returns them."""
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return [c.name for c in cur.description], cur.fetchall()
    finally:
        conn.close()


def read_rejects(url: str) -> set[tuple[str, str, str]]:
    """The rows the audit holds back, as (table, key, rule)."""
    _, rows = fetch_rows(url, "SELECT table_name, row_key, rule FROM quality.rejects")
    return {tuple(r) for r in rows}


def read_table(url: str, sql: str) -> pd.DataFrame:
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            cols = [c.name for c in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=cols)
    finally:
        conn.close()


def _same(a, b, tol: float) -> bool:
    a_missing = a is None or (not isinstance(a, str) and pd.isna(a))
    b_missing = b is None or (not isinstance(b, str) and pd.isna(b))
    if a_missing or b_missing:
        return a_missing and b_missing
    if isinstance(a, pd.Timestamp | datetime) or isinstance(b, pd.Timestamp | datetime):
        return pd.Timestamp(a) == pd.Timestamp(b)
    if isinstance(a, float | Decimal | int) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= tol
    return a == b


def assert_same_rows(
    actual: pd.DataFrame,
    expected: pd.DataFrame,
    key: list[str],
    columns: list[str],
    tolerances: dict[str, float] | None = None,
    label: str = "",
) -> None:
    """Every expected row exists in `actual` with equal values (numbers within tolerance)."""
    tolerances = tolerances or {}
    assert len(actual) == len(expected), f"{label}: {len(actual)} rows, expected {len(expected)}"
    got = {tuple(r[k] for k in key): r for r in actual.to_dict("records")}
    problems = []
    for want in expected.to_dict("records"):
        k = tuple(want[c] for c in key)
        row = got.get(k)
        if row is None:
            problems.append(f"missing row {k}")
            continue
        for col in columns:
            if not _same(row[col], want[col], tolerances.get(col, 0.0)):
                problems.append(f"{k} {col}: got {row[col]!r}, expected {want[col]!r}")
    assert not problems, f"{label}: {len(problems)} difference(s):\n" + "\n".join(problems[:25])
