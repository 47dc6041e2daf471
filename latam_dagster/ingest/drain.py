"""Drain one queue into raw Postgres: consume, validate, write a batch, commit, then ack.

Effectively-once: a batch is committed before its messages are acked (one `basic_ack` with
`multiple=True`), so a crash before the ack only causes a redelivery, which `ON CONFLICT DO NOTHING`
and the quarantine's body-hash key make harmless.

No message can stop a drain: every delivered message gets exactly one outcome (a raw row, a
duplicate, or a quarantine row). Whatever goes wrong while one message is handled (its body, its
routing key, its properties) quarantines that message with the exception's class, and the batch
goes on; a row Postgres refuses is quarantined by the writer. Only a failure of the broker or the
database themselves fails the drain, and then nothing unwritten is acked.

Memory is bounded in messages (the prefetch window) and in bytes: a batch is written once it holds
`batch_size` messages or a third of `max_bytes_in_flight`, and the consumer stops reading while the
writer is a batch behind, so at most three batches' bytes are held at once. A body over the size
limit is hashed and cut to its first `QUARANTINE_HEAD_BYTES` before it is kept.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from queue import Queue

import pika
import pika.exceptions
import psycopg2.extensions

from latam_dagster.contracts import InvalidEvent, validate_body
from latam_dagster.db import connect
from latam_dagster.ingest.amqp_headers import tolerate_odd_headers
from latam_dagster.ingest.drain_locks import take_queue
from latam_dagster.ingest.safe_text import safe_text
from latam_dagster.ingest.topology import Topology, declare, open_connection
from latam_dagster.ingest.writer import BatchResult, RawWriter, Rejected, Valid
from latam_dagster.settings import Settings

log = logging.getLogger(__name__)

# wait this long after the last delivery before writing a partial batch
PARTIAL_BATCH_PAUSE = 0.05
# how much of a body over the size limit the quarantine keeps (with the whole body's hash and size)
QUARANTINE_HEAD_BYTES = 64 * 1024

# why a drain stopped (DrainStats.stop_reason, shown as materialization metadata)
STOP_MESSAGE_BUDGET = "message budget spent"
STOP_TIME_BUDGET = "time budget spent"
STOP_QUEUE_EMPTY = "queue empty"
STOP_QUEUE_BUSY = "queue held by another drain"
BUDGET_STOPS = (STOP_MESSAGE_BUDGET, STOP_TIME_BUDGET)

# quarantine reasons of the identity check (docs/sources.md); the exporter counts reasons that
# start with IDENTITY_REASON_PREFIX per source system
IDENTITY_REASON_PREFIX = "identity:"
IDENTITY_MISMATCH = (
    "identity: $.source_system is not the publishing user (the message's user_id property)"
)
IDENTITY_MISSING = (
    "identity: no user_id property, required while LATAM_SOURCES_ENFORCE_IDENTITY is on"
)
IDENTITY_ERROR_CLASS = "SourceIdentity"


class DrainInterrupted(RuntimeError):
    """The broker connection dropped mid-drain; `stats` says what was done before."""

    def __init__(self, message: str, stats: DrainStats):
        super().__init__(message)
        self.stats = stats


@dataclass
class DrainStats:
    """What the drain of one queue did; becomes its raw asset's materialization metadata."""

    queue: str
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    quarantine_duplicates: int = 0
    batches: int = 0
    seconds: float = 0.0
    inserted_by_table: dict[str, int] = field(default_factory=dict)
    stop_reason: str = ""
    lock_wait_seconds: float = 0.0
    bytes_received: int = 0
    conflicts: int = 0

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.inserted += result.inserted_total
        self.duplicates += result.duplicates
        self.quarantined += result.quarantined
        self.quarantine_duplicates += result.quarantined - result.quarantine_new
        self.conflicts += result.conflicts
        for table, n in result.inserted.items():
            self.inserted_by_table[table] = self.inserted_by_table.get(table, 0) + n

    def as_dict(self) -> dict:
        return {**asdict(self), "rate_per_s": round(self.rate, 1)}


@dataclass(frozen=True)
class DrainConfig:
    batch_size: int = 4000
    # four batches: one written, one queued, one filling, and one already delivered while the
    # broker takes its ~20 ms to resume after an ack (bench/README.md, the --variants figures)
    prefetch: int = 16000
    max_messages: int = 500_000
    max_seconds: float = 120.0
    idle_seconds: float = 1.0
    max_message_bytes: int = 1024 * 1024
    max_bytes_in_flight: int = 48 * 1024 * 1024  # received and not yet acked, held in memory
    lock_timeout: float = 60.0  # wait this long for the drain that holds the queue
    enforce_identity: bool = False  # quarantine events without a user_id property (identity)

    @property
    def batch_bytes(self) -> int:
        """A batch is written at this many bytes: three batches are in flight at most (one
        being read, one queued, one being written)."""
        return max(self.max_bytes_in_flight // 3, 1)

    @classmethod
    def from_settings(cls, s: Settings) -> DrainConfig:
        return cls(
            batch_size=s.drain_batch_size,
            prefetch=max(s.drain_prefetch, s.drain_batch_size),
            max_messages=s.drain_max_messages,
            max_seconds=s.drain_max_seconds,
            idle_seconds=s.drain_idle_seconds,
            max_message_bytes=s.max_message_bytes,
            max_bytes_in_flight=s.drain_max_bytes_in_flight,
            # the runs queued ahead may each drain a whole budget first
            lock_timeout=max(120.0, 8 * s.drain_max_seconds),
            enforce_identity=s.sources_enforce_identity,
        )


def identity_problem(source_system: object, user_id: object, enforce: bool) -> str | None:
    """Why an event's `source_system` is not vouched for by its publisher, or None.

    RabbitMQ refuses a publish whose `user_id` property is not the connection's user, so a
    `user_id` names the publisher. An event claiming another system's name is refused whenever
    it carries one; one without `user_id` only when identity is enforced. The reason names the
    rule and the path, never a value."""
    if user_id is None:
        return IDENTITY_MISSING if enforce else None
    if not isinstance(user_id, str) or source_system != user_id:
        return IDENTITY_MISMATCH
    return None


def classify(
    body: bytes,
    routing_key: str | bytes,
    queue: str,
    max_bytes: int,
    user_id: object = None,
    enforce_identity: bool = False,
) -> Valid | Rejected:
    """Validate one body (the contract, then the publisher's identity: `identity_problem`) and
    shape it for the writer. Never raises: a failure while handling the message quarantines it
    with the exception's class (and no exception text, which may quote the message)."""
    try:
        if len(body) > max_bytes:  # before anything reads it
            reason = f"body too large: {len(body)} bytes > limit {max_bytes}"
            return Rejected.head_of(queue, routing_key, reason, body, QUARANTINE_HEAD_BYTES)
        key = _safe_key(routing_key)
        outcome = validate_body(body, max_bytes)
        sha = hashlib.sha256(body).digest()
        if isinstance(outcome, InvalidEvent):
            return Rejected(queue, key, outcome.reason, body, outcome.message_id, body_sha256=sha)
        doc = outcome.doc
        if (user_id is not None or enforce_identity) and (
            problem := identity_problem(doc.get("source_system"), user_id, enforce_identity)
        ):
            rejected = Rejected(queue, key, problem, body, doc["message_id"], body_sha256=sha)
            rejected.error_class = IDENTITY_ERROR_CLASS
            return rejected
        return Valid(doc["event_type"], key, outcome.text, doc["message_id"], sha)
    except Exception as exc:  # noqa: BLE001 - the contract: one message never stops a drain
        reason = f"could not handle the message: {type(exc).__name__}"
        rejected = Rejected.head_of(queue, routing_key, reason, bytes(body), max_bytes)
        rejected.error_class = type(exc).__name__
        return rejected


@functools.lru_cache(maxsize=1024)
def _safe_key(routing_key: str | bytes) -> str:
    # a handful of routing keys carry every message: escape each once
    return safe_text(routing_key, 255) or ""


def _socket_bytes(amqp: pika.BlockingConnection) -> int:
    """Bytes read from the broker so far (pika's own counter)."""
    return getattr(getattr(amqp, "_impl", None), "bytes_received", 0) or 0


def _held_bytes(item: Valid | Rejected) -> int:
    return len(item.text) if isinstance(item, Valid) else len(item.body)


class _WriterThread(threading.Thread):
    """Writes batches on its own thread, so Postgres works on one core while the consumer keeps
    reading frames and validating on the other (the writer mostly waits on Postgres, without the
    GIL). Acks go back to the connection's thread through `add_callback_threadsafe`, only after
    the commit; one writer keeps commits in delivery order, which is what makes
    `basic_ack(multiple=True)` correct."""

    def __init__(
        self,
        writer: RawWriter,
        amqp: pika.BlockingConnection,
        queue: str,
        config: DrainConfig,
        on_done: Callable,
    ):
        super().__init__(name=f"drain-writer-{queue}", daemon=True)
        self.writer, self.amqp, self.queue, self.config = writer, amqp, queue, config
        self.on_done = on_done
        self.work: Queue[list[tuple[int, Valid | Rejected]] | None] = Queue(maxsize=1)
        self.error: BaseException | None = None

    def run(self) -> None:
        while (batch := self.work.get()) is not None:
            if self.error is not None:
                continue  # drop: nothing after a failed batch may be acked
            try:
                valid: list[Valid] = []
                rejected: list[Rejected] = []
                for _tag, item in batch:
                    (valid if isinstance(item, Valid) else rejected).append(item)
                result = self.writer.write(valid, rejected, self.queue)  # commits
                done = (batch[-1][0], len(batch), result, rejected)
            except BaseException as exc:  # handed to the consumer thread, which raises it
                self.error, done = exc, None
            # when the connection is gone the consumer thread is already failing
            with contextlib.suppress(pika.exceptions.AMQPError):
                self.amqp.add_callback_threadsafe(lambda d=done: self.on_done(d))


class PrefetchWindow:
    """The drain's consumers, with a prefetch window kept within the byte budget.

    RabbitMQ counts prefetch in messages only (it does not implement a byte prefetch), a quorum
    queue reads every message of the window it checks out, and in RabbitMQ 3.x a quorum queue
    takes a consumer's prefetch when the consumer registers (a later Basic.Qos changes nothing).
    So the drain starts with one consumer whose window the budget allows for bodies of the size
    limit, and once a window's worth of messages has shown the real sizes it widens the window
    by registering another consumer on the same channel for the difference (per-consumer
    prefetch; each step at most 8 times the window), up to the configured count for ordinary
    events. After a large body it narrows the window: while the whole window is outstanding (no
    consumer has credit, so nothing is in transit that a cancel would return) it cancels every
    consumer and registers one with the window the budget allows for that size, for the rest of
    this drain. At most `MAX_CHANGES` registrations per drain.
    """

    MAX_CHANGES = 8
    GROWTH = 8

    def __init__(self, channel, queue: str, on_message: Callable, config: DrainConfig) -> None:
        self.channel, self.queue, self.on_message = channel, queue, on_message
        self.limit = config.prefetch
        self.budget = config.max_bytes_in_flight
        self.largest = 0  # the largest body this drain has received
        self.tags: list[str] = []
        self.count = self.changes = self.changed_at = 0
        # until a window has shown the real sizes, assume bodies of the size limit
        self._register(self._target(config.max_message_bytes))

    def _target(self, largest: int) -> int:
        return max(1, min(self.limit, self.budget // max(largest, 1)))

    def _register(self, window: int) -> None:
        self.channel.basic_qos(prefetch_count=window)  # for the consumer registered next
        self.tags.append(self.channel.basic_consume(self.queue, self.on_message, auto_ack=False))
        self.count += window
        self.changes += 1

    def adjust(self, delivered: int, acked: int) -> None:
        """Widen or narrow the window by what the bodies received so far allow."""
        if self.changes >= self.MAX_CHANGES:
            return
        target = min(self._target(self.largest), self.count * self.GROWTH)
        wider = target >= 2 * self.count or self.count < target == self.limit
        if wider and delivered - self.changed_at >= self.count:
            self._register(target - self.count)
            self.changed_at = delivered
        elif 2 * target <= self.count and delivered - acked >= self.count:
            self.cancel()
            self.count = 0
            self._register(target)
            self.changed_at = delivered

    def cancel(self) -> None:
        for tag in self.tags:
            self.channel.basic_cancel(tag)
        self.tags.clear()


class IdleGroup:
    """The queues one step drains together: each stops on idle only once all of them are idle.

    Traffic differs a lot between queues (a few flight status events a second beside hundreds
    of position reports). Alone, a sparse queue's drain would stop at its first quiet second and
    leave that queue undrained until the next run; in a group it keeps consuming for as long as
    the step drains anything, which is what keeps its events fresh.
    """

    def __init__(self, queues: list[str]) -> None:
        self._idle = dict.fromkeys(queues, False)
        self._lock = threading.Lock()

    def mark(self, queue: str, idle: bool) -> bool:
        """Record whether `queue` is idle (or done); returns whether every queue is."""
        with self._lock:
            self._idle[queue] = idle
            return all(self._idle.values())


# While drains run, the cyclic garbage collector looks at young objects less often and never at
# the objects that existed before (the code, Dagster's definitions): a drain allocates several
# containers per message, nearly none of them in cycles, and the default threshold (700) had the
# collector run every ~50 messages (about 1.5 us of ~21 per message, bench/README.md).
_GC_YOUNG_THRESHOLD = 20_000
_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] = gc.get_threshold()


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect less while at least one drain of this process runs (drains run in threads)."""
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(_GC_YOUNG_THRESHOLD, _gc_saved[0]), *_gc_saved[1:])
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.set_threshold(*_gc_saved)
                gc.unfreeze()


def drain_queue(
    amqp_url: str,
    warehouse_url: str,
    topo: Topology,
    family: str,
    config: DrainConfig,
    on_batch: Callable[[DrainStats], None] | None = None,
    group: IdleGroup | None = None,
) -> DrainStats:
    """Drain `topo.queue(family)` until it is empty (and, with a `group`, every queue of the
    group is idle too) or a budget is spent."""
    queue = topo.queue(family)
    stats = DrainStats(queue=queue)
    tolerate_odd_headers()  # a header pika cannot decode must not drop the connection
    try:
        conn = connect(warehouse_url)
        with _fewer_collections():
            return _drain(amqp_url, topo, queue, conn, config, on_batch, group, stats)
    finally:
        if group is not None:
            group.mark(queue, True)  # done: the others stop on idle without waiting for it


def _drain(
    amqp_url: str,
    topo: Topology,
    queue: str,
    conn: psycopg2.extensions.connection,
    config: DrainConfig,
    on_batch: Callable[[DrainStats], None] | None,
    group: IdleGroup | None,
    stats: DrainStats,
) -> DrainStats:
    waited = take_queue(conn, queue, config.lock_timeout)
    if waited is None:
        conn.close()
        log.warning(
            "%s: another drain held the queue for %.0f s; this one drains nothing",
            queue,
            config.lock_timeout,
            extra={"queue": queue},
        )
        stats.stop_reason = STOP_QUEUE_BUSY
        stats.lock_wait_seconds = config.lock_timeout
        return stats
    stats.lock_wait_seconds = round(waited, 3)
    try:
        amqp = open_connection(amqp_url)
    except BaseException:
        conn.close()
        raise
    started = time.monotonic()
    worker: _WriterThread | None = None
    try:
        channel = amqp.channel()
        declare(channel, topo)
        pending: list[tuple[int, Valid | Rejected]] = []
        in_flight = 0

        def on_done(done) -> None:  # runs on the connection's thread
            nonlocal in_flight
            in_flight -= 1
            if done is None:
                return
            last_tag, count, result, rejected = done
            channel.basic_ack(delivery_tag=last_tag, multiple=True)
            stats.received += count
            stats.add(result)
            for r in rejected:
                # the reason names a JSON path and a rule, never a value; the routing key is
                # escaped (a source chooses its bytes)
                log.warning(
                    "message quarantined: %s",
                    r.reason,
                    extra={
                        "message_id": r.message_id,
                        "queue": queue,
                        "routing_key": safe_text(r.routing_key, 255),
                        "error_class": r.error_class,
                    },
                )
            if result.conflicts:
                log.warning(
                    "%d message_id(s) arrived again with another body; the first body is kept "
                    "(raw.message_id_conflicts)",
                    result.conflicts,
                    extra={"queue": queue},
                )
            if on_batch:
                on_batch(stats)

        worker = _WriterThread(RawWriter(conn), amqp, queue, config, on_done)
        worker.start()

        max_bytes = config.max_message_bytes
        enforce = config.enforce_identity
        pending_bytes = delivered = 0

        def on_message(_ch, method, props, body: bytes) -> None:
            # validated here, while the writer thread waits on Postgres for the previous batch;
            # of the properties only user_id is read (the identity check); headers are not
            nonlocal pending_bytes, delivered
            delivered += 1
            size = len(body)
            user_id = getattr(props, "user_id", None)
            item = classify(body, method.routing_key, queue, max_bytes, user_id, enforce)
            pending.append((method.delivery_tag, item))
            pending_bytes += _held_bytes(item)
            stats.bytes_received += size
            if size > window.largest:
                window.largest = size

        def batch_full() -> bool:
            return len(pending) >= config.batch_size or pending_bytes >= config.batch_bytes

        def window_full() -> bool:
            # the whole window waits here and no batch is being written: nothing more can
            # arrive before an ack, so waiting for a pause would only lose time (a window of a
            # few large messages). With batches in flight, their acks open the window again.
            return not in_flight and delivered - stats.received >= window.count

        def flush() -> None:
            # at most batch_size messages and batch_bytes bytes (or one message) per transaction;
            # the rest waits for the next flush
            nonlocal pending, pending_bytes, in_flight
            size = count = 0
            for _tag, item in pending:
                if count and (count >= config.batch_size or size >= config.batch_bytes):
                    break
                size += _held_bytes(item)
                count += 1
            batch, pending = pending[:count], pending[count:]
            pending_bytes -= size
            in_flight += 1
            worker.work.put(batch)  # blocks while the writer is one batch behind

        def check_writer() -> None:
            if worker.error is not None:
                raise worker.error

        window = PrefetchWindow(channel, queue, on_message, config)
        last_message_at = last_traffic_at = time.monotonic()
        socket_bytes = _socket_bytes(amqp)
        idle = False
        while True:
            before = len(pending)
            amqp.process_data_events(time_limit=min(0.25, config.idle_seconds))
            window.adjust(delivered, stats.received)
            check_writer()
            now = time.monotonic()
            if (seen := _socket_bytes(amqp)) != socket_bytes:
                # part of a large message is arriving: the queue is not idle
                socket_bytes, last_traffic_at = seen, now
            if len(pending) > before:
                last_message_at = now
                if idle and group is not None:
                    group.mark(queue, False)
                idle = False
                while pending and batch_full():
                    flush()
                if pending and window_full():
                    flush()
            elif pending and (now - last_message_at >= PARTIAL_BATCH_PAUSE or window_full()):
                flush()  # a real pause, not just an ack callback waking the loop
            if stats.received + in_flight * config.batch_size >= config.max_messages:
                stats.stop_reason = STOP_MESSAGE_BUDGET
                break
            if now - started >= config.max_seconds:
                stats.stop_reason = STOP_TIME_BUDGET
                break
            quiet = now - max(last_message_at, last_traffic_at)
            if not pending and not in_flight and quiet >= config.idle_seconds:
                # deliveries of a deep queue can be slow to start: empty means empty
                if channel.queue_declare(queue, passive=True).method.message_count == 0:
                    idle = True
                    if group is None or group.mark(queue, True):
                        stats.stop_reason = STOP_QUEUE_EMPTY
                        break
                last_message_at = now
        window.cancel()
        while pending:
            flush()
        while in_flight:
            amqp.process_data_events(time_limit=0.1)
            check_writer()
    except pika.exceptions.AMQPError as exc:
        # unacked messages go back to the queue; the next drain dedups what was committed
        raise DrainInterrupted(
            f"{queue}: broker connection lost after {stats.received} message(s) "
            f"({stats.inserted} inserted, {stats.quarantined} quarantined): {exc!r}; "
            "unacknowledged messages are redelivered to the next drain",
            stats,
        ) from exc
    finally:
        stats.seconds = time.monotonic() - started
        if worker is not None and worker.is_alive():
            worker.work.put(None)
            worker.join()
        try:
            if amqp.is_open:
                amqp.close()
        except pika.exceptions.AMQPError:
            log.warning("broker connection did not close cleanly", exc_info=True)
        conn.close()
    return stats
