"""List and replay the messages RabbitMQ dead-lettered into `<prefix>.dead`.

A message lands there when its queue returned it more times than the delivery limit allows (a
drain that kept failing on it). Listing takes each message without acknowledging it and hands it
back afterwards, so the dead queue keeps everything. Replaying republishes each message to the
events exchange under the routing key it was first published with, with publisher confirms, and
acknowledges it in the dead queue only once the broker has confirmed the copy: at least once, and
a duplicate is harmless because raw keeps one row per message_id.

Everything shown comes from the message's sender (body, routing key, headers), so it goes through
`safe_text` / `preview`, and headers the client library cannot decode are kept as raw bytes
instead of breaking the connection.
"""

from __future__ import annotations

import re
import struct
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson
import pika
import pika.data
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from latam_dagster.ingest.amqp_headers import tolerate_odd_headers
from latam_dagster.ingest.quarantine import LONG_PREVIEW, SHORT_PREVIEW
from latam_dagster.ingest.safe_text import preview, safe_text
from latam_dagster.ingest.topology import Topology, declare, open_connection

# a body larger than this is not parsed for its message_id
MAX_PARSE_BYTES = 1024 * 1024

# headers the broker owns: they describe the past life of the message, not the message
_BROKER_HEADERS = ("x-death", "x-delivery-count", "x-acquired-count")
_BROKER_HEADER_PREFIXES = ("x-first-death-", "x-last-death-")
# sender-selected routing would send the copy to every queue of the first publish again
_ROUTING_HEADERS = ("CC", "BCC")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass
class DeadLetter:
    """What a person needs to judge one dead letter; every text is safe to print."""

    position: int
    queue: str | None
    routing_key: str | None
    reason: str | None
    count: int | None
    dead_lettered_at: str | None
    message_id: str | None
    size: int
    delivery_count: int | None  # returns to the dead queue itself (listings count too)
    body_preview: str
    body: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DeadReplayResult:
    """What a replay did; a dry run counts as `replayed` what it would have republished."""

    examined: int = 0
    replayed: int = 0
    no_origin: int = 0  # no original routing key in x-death: left in the dead queue
    refused: int = 0  # the broker did not confirm the copy: left in the dead queue


class ReplayInterrupted(RuntimeError):
    """The broker connection dropped mid-replay; `result` says what was done before."""

    def __init__(self, message: str, result: DeadReplayResult):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class _Origin:
    queue: Any
    routing_key: Any  # str, or bytes when it is not UTF-8
    reason: Any
    count: Any
    time: Any


def list_dead(
    amqp_url: str, topo: Topology, limit: int = 50, show_body: bool = False
) -> list[DeadLetter]:
    """The first `limit` dead letters, oldest first. Nothing is removed: every message taken is
    handed back to the dead queue before this returns (or when the connection drops)."""
    tolerate_odd_headers()
    conn = open_connection(amqp_url)
    try:
        channel = conn.channel()
        declare(channel, topo)
        letters: list[DeadLetter] = []
        while len(letters) < limit:
            method, props, body = channel.basic_get(topo.dead_queue, auto_ack=False)
            if method is None:
                break
            letters.append(describe(len(letters) + 1, props, body, show_body))
        _hand_back(channel, bool(letters))
        return letters
    finally:
        if conn.is_open:
            conn.close()


def replay_dead(
    amqp_url: str, topo: Topology, limit: int | None = None, dry_run: bool = False
) -> DeadReplayResult:
    """Republish dead letters to the events exchange under their original routing keys, each
    acknowledged in the dead queue only after the broker confirmed its copy. Looks at most at the
    messages that were there when it started (and at most `limit`), so a message that dies again
    meanwhile is not replayed twice in one call. A dry run only counts."""
    tolerate_odd_headers()
    result = DeadReplayResult()
    conn = open_connection(amqp_url)
    try:
        channel = conn.channel()
        declare(channel, topo)
        budget = channel.queue_declare(topo.dead_queue, passive=True).method.message_count
        if limit is not None:
            budget = min(budget, limit)
        channel.confirm_delivery()
        held = 0
        for _ in range(budget):
            method, props, body = channel.basic_get(topo.dead_queue, auto_ack=False)
            if method is None:
                break
            result.examined += 1
            origin = _origin(props)
            if origin.routing_key is None:
                result.no_origin += 1
                held += 1
            elif dry_run:
                result.replayed += 1
                held += 1
            elif _republish(channel, topo, origin.routing_key, props, body):
                channel.basic_ack(method.delivery_tag)
                result.replayed += 1
            else:
                result.refused += 1
                held += 1
        _hand_back(channel, held > 0)
        return result
    except pika.exceptions.AMQPError as exc:
        raise ReplayInterrupted(
            f"broker connection lost during the replay ({exc!r}) after {result.replayed} of "
            f"{result.examined} dead letter(s) were republished and acknowledged; the rest are "
            "back in the dead queue, so running the replay again is safe",
            result,
        ) from exc
    finally:
        if conn.is_open:
            conn.close()


def _hand_back(channel: BlockingChannel, any_held: bool) -> None:
    # an explicit requeue rather than a channel close: from RabbitMQ 4.3 a nack does not count
    # against the delivery limit, while a closed channel does
    if any_held and channel.is_open:
        channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)


def _republish(
    channel: BlockingChannel,
    topo: Topology,
    routing_key: str | bytes,
    props: pika.BasicProperties,
    body: bytes,
) -> bool:
    """Publish the copy and wait for the broker's confirm; False when it refused it."""
    try:
        channel.basic_publish(
            topo.exchange, routing_key, body, replay_properties(props), mandatory=True
        )
    except (pika.exceptions.NackError, pika.exceptions.UnroutableError):
        return False
    return True


def replay_properties(props: pika.BasicProperties) -> pika.BasicProperties:
    """The message's properties minus what the broker added while it died (x-death and
    friends) and what would change its routing or be refused (CC/BCC, user_id)."""
    headers = None
    if props.headers:
        headers = {k: _encodable(v) for k, v in props.headers.items() if not _dropped_header(k)}
    return pika.BasicProperties(
        content_type=props.content_type,
        content_encoding=props.content_encoding,
        headers=headers or None,
        delivery_mode=props.delivery_mode,
        priority=props.priority,
        correlation_id=props.correlation_id,
        reply_to=props.reply_to,
        message_id=props.message_id,
        timestamp=props.timestamp,
        type=props.type,
        app_id=props.app_id,
        cluster_id=props.cluster_id,
        # user_id is checked against the publishing user; expiration was already removed
    )


def _dropped_header(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    return (
        name in _BROKER_HEADERS
        or name.startswith(_BROKER_HEADER_PREFIXES)
        or name in _ROUTING_HEADERS
    )


def _encodable(value: Any) -> Any:
    """`value` if pika can encode it again, else its safe text."""
    try:
        pika.data.encode_value([], value)
    except (pika.exceptions.UnsupportedAMQPFieldException, struct.error, ValueError, TypeError):
        return safe_text(repr(value))
    return value


def describe(
    position: int, props: pika.BasicProperties, body: bytes, show_body: bool
) -> DeadLetter:
    """A dead letter as it is shown: origin from x-death, message_id only when it is a UUID."""
    origin = _origin(props)
    count = origin.count if isinstance(origin.count, int) else None
    delivery_count = (props.headers or {}).get("x-delivery-count")
    return DeadLetter(
        position=position,
        queue=safe_text(origin.queue, 255),
        routing_key=safe_text(origin.routing_key, 255),
        reason=safe_text(origin.reason, 100),
        count=count,
        dead_lettered_at=origin.time.isoformat() if isinstance(origin.time, datetime) else None,
        message_id=message_id_of(props, body),
        size=len(body),
        delivery_count=delivery_count if isinstance(delivery_count, int) else None,
        body_preview=preview(body, SHORT_PREVIEW),
        body=preview(body, LONG_PREVIEW) if show_body else None,
    )


def _origin(props: pika.BasicProperties) -> _Origin:
    """Where the message died, from the newest x-death entry (missing fields are None)."""
    deaths = (props.headers or {}).get("x-death")
    death = deaths[0] if isinstance(deaths, list) and deaths else None
    if not isinstance(death, dict):
        return _Origin(None, None, None, None, None)
    keys = death.get("routing-keys")
    key = keys[0] if isinstance(keys, list) and keys else None
    return _Origin(
        queue=death.get("queue"),
        routing_key=key if isinstance(key, str | bytes) else None,
        reason=death.get("reason"),
        count=death.get("count"),
        time=death.get("time"),
    )


def message_id_of(props: pika.BasicProperties, body: bytes) -> str | None:
    """The message_id property, else the body's `message_id` field, when it is a UUID."""
    if _is_uuid(props.message_id):
        return props.message_id.lower()
    if len(body) > MAX_PARSE_BYTES:
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    mid = doc.get("message_id") if isinstance(doc, dict) else None
    return mid.lower() if _is_uuid(mid) else None


def _is_uuid(value: Any) -> bool:
    return isinstance(value, str) and _UUID.fullmatch(value) is not None
