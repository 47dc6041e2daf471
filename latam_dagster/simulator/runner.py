"""Publishing simulated messages at a steady rate."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from latam_dagster.simulator.generator import SimMessage


class BodyPublisher(Protocol):
    """What `run` needs of a publisher (`latam_dagster.ingest.publish.Publisher` fits)."""

    def publish_body(self, body: bytes, routing_key: str) -> None: ...


def run(
    publisher: BodyPublisher,
    messages: Iterable[SimMessage],
    rate: float | None,
    on_published: Callable[[SimMessage], None] | None = None,
) -> int:
    """Publish every message with its routing key, `rate` per second (None: as fast as possible).

    Pacing aims at the i-th message leaving at `i / rate` seconds, so a slow publish is caught up
    rather than stretching the run. `on_published` sees each message once the broker has it,
    which lets a caller report exact counts even when interrupted. Returns the number published.
    """
    interval = 1.0 / rate if rate else 0.0
    clock, sleep = time.perf_counter, time.sleep
    began = clock()
    published = 0
    for msg in messages:
        if interval:
            ahead = began + published * interval - clock()
            if ahead > 0:
                sleep(ahead)
        publisher.publish_body(msg.body, msg.routing_key)
        published += 1
        if on_published is not None:
            on_published(msg)
    return published
