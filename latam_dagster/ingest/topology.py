"""The RabbitMQ topology, declared idempotently by code (never by hand).

One topic exchange, one quorum queue per event family, a dead-letter exchange as the last line of
defence behind the delivery limit, and an alternate exchange so that a message with an unknown
routing key is kept instead of silently dropped by the broker. The drainable queues dead-letter at
least once: a message past the delivery limit stays in its queue until the dead-letter queue has
confirmed it, instead of being lost when that queue cannot take it.
"""

from __future__ import annotations

import logging
import re
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from latam_dagster import tls

log = logging.getLogger(__name__)

# queue suffix -> (routing-key pattern, raw table the queue feeds, event type). The `unrouted`
# queue takes what the alternate exchange catches (routing keys no binding matches); its drain
# sends valid events to their table by event type and quarantines the rest.
QUEUES: dict[str, tuple[str | None, str | None, str | None]] = {
    "flights": ("flight.#", "raw.flight_events", "flight_status"),
    "passengers": ("passenger.#", "raw.passenger_events", "passenger_event"),
    "positions": ("position.#", "raw.position_reports", "position_report"),
    "unrouted": (None, None, None),
}
# at-least-once dead-lettering (RabbitMQ 3.10+); the broker falls back to at-most-once unless the
# overflow behaviour is reject-publish, even without a length limit
AT_LEAST_ONCE_DEAD_LETTERING = {
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}
PRECONDITION_FAILED = 406
# event type -> the first word of its routing keys (`flight.sabre` for flight_status)
ROUTING_PREFIX = {
    etype: pattern.split(".")[0] for pattern, _table, etype in QUEUES.values() if etype and pattern
}
# event type -> the raw table that holds it; queue family -> raw table (derived from QUEUES)
RAW_TABLE_OF_EVENT = {etype: table for _p, table, etype in QUEUES.values() if etype and table}
RAW_TABLE_OF_QUEUE = {family: table for family, (_p, table, _e) in QUEUES.items() if table}


class BrokerUnavailable(RuntimeError):
    """RabbitMQ did not answer; the message says where we looked and how to start it."""


@dataclass(frozen=True)
class Topology:
    """Names of every exchange and queue, derived from one prefix so tests can isolate."""

    prefix: str = "latam"
    delivery_limit: int = 20

    @property
    def exchange(self) -> str:
        return f"{self.prefix}.events"

    @property
    def dlx(self) -> str:
        return f"{self.prefix}.dlx"

    @property
    def dead_queue(self) -> str:
        return f"{self.prefix}.dead"

    @property
    def unrouted_exchange(self) -> str:
        return f"{self.prefix}.unrouted"

    @property
    def unrouted_queue(self) -> str:
        return self.queue("unrouted")

    def queue(self, family: str) -> str:
        return f"{self.prefix}.{family}"

    @property
    def queues(self) -> list[str]:
        return [self.queue(f) for f in QUEUES]

    def family_of(self, queue: str) -> str:
        family = queue.removeprefix(f"{self.prefix}.")
        if family not in QUEUES:
            raise ValueError(f"{queue!r} is not a drainable queue of topology {self.prefix!r}")
        return family


def routing_key_for(event: dict) -> str:
    """`flight.<source_system>` and friends; unknown types go to `unknown.<source>`."""
    family = ROUTING_PREFIX.get(event.get("event_type"), "unknown")  # type: ignore[arg-type]
    source = event.get("source_system")
    return f"{family}.{source if isinstance(source, str) and source else 'unknown'}"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    return url.replace(f":{parts.password}@", ":***@") if parts.password else url


# where one URL of a comma-separated list ends: before the next `amqp://` or `amqps://`, so a
# comma inside a password does not split its URL
_NEXT_URL = re.compile(r",\s*(?=amqps?://)", re.IGNORECASE)


def amqp_urls(amqp_url: str) -> list[str]:
    """The node URLs of a setting that may list a cluster's nodes, comma-separated."""
    return [url.strip() for url in _NEXT_URL.split(amqp_url.strip())]


def open_connection(amqp_url: str, heartbeat: int = 30) -> pika.BlockingConnection:
    """Connect to RabbitMQ, turning a refused connection into advice.

    `amqp_url` may list the nodes of a cluster, comma-separated: they are tried in order and the
    first that answers is used, so a client reconnecting after its node died finds a live one.
    An amqps:// URL connects over TLS with the broker's certificate and host name checked
    (latam_dagster.tls); in production a plain amqp:// URL is refused before connecting.
    """
    urls = amqp_urls(amqp_url)
    try:
        candidates = [tls.amqp_parameters(url) for url in urls]
    except tls.TransportRefused as exc:
        raise BrokerUnavailable(str(exc)) from exc
    for params in candidates:
        params.heartbeat = heartbeat
        params.blocked_connection_timeout = 60
        params.connection_attempts = 1
        params.socket_timeout = 5
    try:
        return pika.BlockingConnection(candidates)
    except (pika.exceptions.AMQPConnectionError, ssl.SSLError) as exc:
        # pika reports the last candidate's failure
        if problem := tls.amqp_tls_problem(urls[-1], exc):
            raise BrokerUnavailable(problem) from exc
        raise BrokerUnavailable(
            f"RabbitMQ is not reachable at {', '.join(map(_redact, urls))} ({exc!r}). "
            "Start it (rabbitmq-server -detached) or set LATAM_AMQP_URL."
        ) from exc


def drainable_queue_arguments(topo: Topology) -> dict[str, object]:
    """Arguments of every drainable queue: quorum, delivery limit, at-least-once dead-lettering."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": topo.delivery_limit,
        "x-dead-letter-exchange": topo.dlx,
        **AT_LEAST_ONCE_DEAD_LETTERING,
    }


def declare(channel: BlockingChannel, topo: Topology) -> None:
    """Declare exchanges, queues and bindings; safe to call any number of times.

    A queue declared earlier with other arguments (an older version's) is kept as it is, with one
    warning, instead of failing every drain. The broker closes a channel on such a mismatch, so the
    queue declarations run on a channel of their own and `channel` stays usable.
    """
    channel.exchange_declare(topo.dlx, exchange_type="fanout", durable=True)
    channel.queue_declare(topo.dead_queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(topo.dead_queue, topo.dlx)
    channel.exchange_declare(topo.unrouted_exchange, exchange_type="fanout", durable=True)
    channel.exchange_declare(
        topo.exchange,
        exchange_type="topic",
        durable=True,
        arguments={"alternate-exchange": topo.unrouted_exchange},
    )
    scratch = channel.connection.channel()
    try:
        for family in QUEUES:
            scratch = _declare_drainable(scratch, topo.queue(family), topo)
    finally:
        if scratch.is_open:
            scratch.close()
    for family, (pattern, _table, _etype) in QUEUES.items():
        name = topo.queue(family)
        if pattern is None:
            channel.queue_bind(name, topo.unrouted_exchange)
        else:
            channel.queue_bind(name, topo.exchange, routing_key=pattern)


_warned: set[str] = set()


def _declare_drainable(scratch: BlockingChannel, name: str, topo: Topology) -> BlockingChannel:
    """Declare one drainable queue on `scratch`; returns the channel to go on with (a new one
    when the broker closed `scratch` over an existing queue's other arguments)."""
    try:
        scratch.queue_declare(name, durable=True, arguments=drainable_queue_arguments(topo))
        return scratch
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != PRECONDITION_FAILED:
            raise
        reply = exc.reply_text
    scratch = scratch.connection.channel()
    scratch.queue_declare(name, passive=True)  # it exists; anything else still fails here
    if name not in _warned:
        _warned.add(name)
        log.warning(
            "queue %s exists with arguments of an older version (%s). It is used as it is and "
            "keeps at-most-once dead-lettering (a message past the delivery limit is lost if %s "
            "cannot take it) unless a policy sets dead-letter-strategy=at-least-once and "
            "overflow=reject-publish. To move it: delete it when it is empty (rabbitmqctl "
            "delete_queue --if-empty %s; the next run declares it anew), or apply such a policy "
            "(see docs/ingestion.md).",
            name,
            reply,
            topo.dead_queue,
            name,
            extra={"queue": name},
        )
    return scratch


def declare_topology(amqp_url: str, topo: Topology) -> None:
    """Open a connection, declare everything, close."""
    conn = open_connection(amqp_url)
    try:
        declare(conn.channel(), topo)
    finally:
        conn.close()


def queue_depths(amqp_url: str, topo: Topology) -> dict[str, int]:
    """Ready-message count per drainable queue (passive declare: creates nothing)."""
    conn = open_connection(amqp_url)
    try:
        ch = conn.channel()
        return {q: ch.queue_declare(q, passive=True).method.message_count for q in topo.queues}
    finally:
        conn.close()


def delete_topology(amqp_url: str, topo: Topology) -> None:
    """Remove every queue and exchange of a topology (tests and teardown)."""
    conn = open_connection(amqp_url)
    try:
        ch = conn.channel()
        for q in [*topo.queues, topo.dead_queue]:
            ch.queue_delete(q)
        for x in (topo.exchange, topo.dlx, topo.unrouted_exchange):
            ch.exchange_delete(x)
    finally:
        conn.close()
