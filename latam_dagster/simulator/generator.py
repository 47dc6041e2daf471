"""The public generator: a deterministic, endless stream of airline events as message bodies.

`world` runs the network: flights enter 72 h before departure and their status, passenger and
position streams are merged by event time with a heap, so memory holds only the flights in the
booking horizon, however many events are drawn. `generate` then applies delivery faults (late
delivery, duplicates, broken messages) with a second RNG, so the same seed yields the same world
whatever the fault shares are, and the same arguments always yield byte-identical messages.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count, islice
from typing import Any

import orjson

from latam_dagster.simulator.encoding import to_ms
from latam_dagster.simulator.faults import DEFECTS
from latam_dagster.simulator.network import load_network
from latam_dagster.simulator.operations import Operations
from latam_dagster.simulator.streams import Streams
from latam_dagster.simulator.systems import source_systems

DEFAULT_START = datetime(2026, 11, 27, tzinfo=UTC)
RECENT = 2048  # how far back a duplicate may reach (messages)
LATE_WINDOW = 1000  # a late message arrives up to this many messages after its turn
DEFECT_NAMES = tuple(DEFECTS)


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One message as a source publishes it.

    `kind` is "event", "duplicate" (a byte-identical re-send of an earlier message) or, for an
    invalid message, the name of its defect (see `faults.DEFECTS`).
    """

    routing_key: str
    body: bytes
    valid: bool
    event: dict[str, Any] | None
    kind: str = "event"


def world(
    seed: int, systems: int = 10, start: datetime | None = None
) -> Iterator[tuple[str, dict]]:
    """(routing key, event) of the simulated network, in event-time order, forever."""
    start_ms = to_ms(_aware(start or DEFAULT_START))
    rng = random.Random(seed)
    streams = Streams(rng, source_systems(systems), start_ms)
    spawner = Operations(load_network(), rng, start_ms).flights()
    seq = count()
    first = next(spawner)
    heap: list[tuple[int, int, Iterator, tuple]] = [(first[0], next(seq), spawner, first)]
    push, replace, pop = heapq.heappush, heapq.heapreplace, heapq.heappop
    while True:
        _, _, gen, item = heap[0]
        nxt = next(gen, None)
        if nxt is None:
            pop(heap)
        else:
            replace(heap, (nxt[0], next(seq), gen, nxt))
        if gen is spawner:
            for stream in streams.of(item[1]):
                head = next(stream, None)
                if head is not None:
                    push(heap, (head[0], next(seq), stream, head))
        else:
            yield item[1], item[2]


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _share(name: str, value: float, upper: float = 1.0) -> float:
    if not 0.0 <= value <= upper:
        raise ValueError(f"{name} must be between 0 and {upper} (got {value})")
    return float(value)


def generate(
    seed: int,
    systems: int = 10,
    events: int | None = None,
    duration_s: float | None = None,
    rate: float = 100.0,
    start: datetime | None = None,
    duplicate_share: float = 0.0,
    out_of_order_share: float = 0.0,
    invalid_share: float = 0.0,
) -> Iterator[SimMessage]:
    """Lazily yield simulated messages.

    The count is `events` if given, else `int(rate * duration_s)`; with neither, the stream never
    ends (continuous mode). Shares are fractions of all messages yielded (out-of-order: of the
    valid events). Same arguments, same bytes.
    """
    if systems < 1:
        raise ValueError("systems must be >= 1")
    dup = _share("duplicate_share", duplicate_share)
    late = _share("out_of_order_share", out_of_order_share, 0.99)
    bad = _share("invalid_share", invalid_share)
    if dup + bad > 1.0:
        raise ValueError("duplicate_share + invalid_share must not exceed 1")
    if events is not None:
        total: int | None = max(0, int(events))
    elif duration_s is not None:
        total = max(0, int(rate * duration_s))
    else:
        total = None
    stream = _deliver(world(seed, systems, start), seed, dup, late, bad)
    return stream if total is None else islice(stream, total)


def _deliver(
    events: Iterator[tuple[str, dict]], seed: int, dup: float, late: float, bad: float
) -> Iterator[SimMessage]:
    """Turn events into messages, adding the delivery faults."""
    frng = random.Random(f"delivery-faults:{seed}")
    rand = frng.random
    dumps = orjson.dumps
    recent: list[SimMessage] = []
    cursor = 0
    last_position: SimMessage | None = None
    delayed: list[tuple[int, int, SimMessage]] = []
    seq = count()
    keep_recent = dup > 0 or bad > 0
    for slot in count():
        if delayed and delayed[0][0] <= slot:
            msg = heapq.heappop(delayed)[2]
        else:
            r = rand() if keep_recent else 1.0
            if r < bad and recent:
                msg = _invalid(frng, recent[frng.randrange(len(recent))], last_position)
            elif r < bad + dup and recent:
                orig = recent[frng.randrange(len(recent))]
                msg = SimMessage(orig.routing_key, orig.body, True, orig.event, "duplicate")
            else:
                while True:
                    key, event = next(events)
                    msg = SimMessage(key, dumps(event), True, event)
                    if late and len(delayed) < LATE_WINDOW and rand() < late:
                        heapq.heappush(
                            delayed, (slot + 1 + frng.randrange(LATE_WINDOW), next(seq), msg)
                        )
                        continue
                    break
        yield msg
        if keep_recent and msg.kind == "event":
            if len(recent) < RECENT:
                recent.append(msg)
            else:
                recent[cursor] = msg
                cursor = (cursor + 1) % RECENT
            if msg.routing_key.startswith("position."):
                last_position = msg


def _invalid(frng: random.Random, base: SimMessage, position: SimMessage | None) -> SimMessage:
    name = frng.choice(DEFECT_NAMES)
    if name == "latitude_out_of_range" and position is not None:
        base = position
    assert base.event is not None
    body = DEFECTS[name](frng, base.event, position.event if position else None)
    return SimMessage(base.routing_key, body, False, None, name)
