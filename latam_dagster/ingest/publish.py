"""Publishing events with publisher confirms: a publish returns once the broker has them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO

import orjson
import pika

from latam_dagster.ingest.topology import Topology, declare, open_connection, routing_key_for

PERSISTENT = pika.BasicProperties(delivery_mode=2, content_type="application/json")


class Publisher:
    """A confirmed-delivery publisher bound to one topology."""

    def __init__(self, amqp_url: str, topo: Topology, declare_topology: bool = True):
        self.topo = topo
        self.connection = open_connection(amqp_url)
        self.channel = self.connection.channel()
        if declare_topology:
            declare(self.channel, topo)
        self.channel.confirm_delivery()

    def publish_body(self, body: bytes, routing_key: str) -> None:
        """Publish raw bytes (valid or not); raises if the broker does not confirm."""
        props = PERSISTENT
        self.channel.basic_publish(self.topo.exchange, routing_key, body, props, mandatory=False)

    def publish_event(self, event: dict) -> None:
        self.publish_body(orjson.dumps(event), routing_key_for(event))

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_jsonl(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, bytes) of the non-blank lines of a JSON Lines stream."""
    for lineno, line in enumerate(stream, start=1):
        line = line.strip()
        if line:
            yield lineno, line


def publish_lines(publisher: Publisher, lines: Iterable[tuple[int, bytes]]) -> tuple[int, int]:
    """Publish JSON Lines as they are. Lines that do not parse are still published (to the
    `unknown.unknown` routing key, so the broker keeps them for the quarantine) and counted.
    Returns (published, unparseable)."""
    published = bad = 0
    for _lineno, line in lines:
        try:
            event = orjson.loads(line)
            key = routing_key_for(event) if isinstance(event, dict) else "unknown.unknown"
        except orjson.JSONDecodeError:
            key, bad = "unknown.unknown", bad + 1
        publisher.publish_body(line, key)
        published += 1
    return published, bad
