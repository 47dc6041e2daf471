"""A throwaway broker topology and warehouse database for one benchmark run.

Every run gets its own topology prefix and database name, so a benchmark never touches the real
queues or tables, and everything it created is removed when it ends, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import secrets
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pika
import pika.exceptions
import pika.frame
import pika.spec

from latam_dagster.db import connect, migrate
from latam_dagster.ingest.topology import Topology, declare, open_connection
from latam_dagster.settings import DEFAULT_AMQP_URL

log = logging.getLogger(__name__)


def add_service_options(parser: argparse.ArgumentParser, amqp: bool = True) -> None:
    """The services a bench runs against: `--pg-url` (its database name is replaced by the
    throwaway databases' names) and, with `amqp`, `--amqp-url`."""
    if amqp:
        parser.add_argument(
            "--amqp-url", default=os.environ.get("LATAM_AMQP_URL", DEFAULT_AMQP_URL)
        )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "LATAM_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="server to create the throwaway databases on (its database name is replaced)",
    )


PERSISTENT = pika.BasicProperties(delivery_mode=2, content_type="application/json")
RAW_TABLES = ("raw.flight_events", "raw.passenger_events", "raw.position_reports", "raw.quarantine")


@dataclass(frozen=True)
class BenchEnv:
    """Names and URLs of one run's private topology and database."""

    amqp_url: str
    admin_url: str
    warehouse_url: str
    database: str
    topo: Topology
    family: str

    @property
    def queue(self) -> str:
        return self.topo.queue(self.family)

    @property
    def bench_exchange(self) -> str:
        """Topic exchange bound with `#` to the measured queue only.

        Events keep their real routing keys (`flight.<source>`, ...), yet all of them land in one
        queue, which is what one drain run consumes.
        """
        return f"{self.topo.prefix}.bench"


def with_database(url: str, database: str) -> str:
    """`url` pointing at another database of the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def admin_exec(admin_url: str, sql: str) -> None:
    """Run one statement outside a transaction (CREATE DATABASE, DROP DATABASE, ...)."""
    conn = connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def drop_database(admin_url: str, database: str) -> None:
    """Drop `database` if it exists, ending the sessions still connected to it."""
    admin_exec(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _delete_broker_objects(env: BenchEnv) -> None:
    conn = open_connection(env.amqp_url)
    try:
        ch = conn.channel()
        ch.exchange_delete(env.bench_exchange)
        for q in [*env.topo.queues, env.topo.dead_queue, env.topo.unrouted_queue]:
            ch.queue_delete(q)
        for x in (env.topo.exchange, env.topo.dlx, env.topo.unrouted_exchange):
            ch.exchange_delete(x)
    finally:
        conn.close()


@contextmanager
def bench_environment(amqp_url: str, pg_url: str, family: str = "positions") -> Iterator[BenchEnv]:
    """Create a private topology and migrated database; remove both on the way out."""
    token = secrets.token_hex(4)
    database = f"latam_bench_{token}"
    env = BenchEnv(
        amqp_url=amqp_url,
        admin_url=with_database(pg_url, "postgres"),
        warehouse_url=with_database(pg_url, database),
        database=database,
        topo=Topology(prefix=f"bench{token}"),
        family=family,
    )
    # SIGTERM (a CI timeout, `kill`) takes the same cleanup path as Ctrl-C
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        migrate(env.warehouse_url)
        conn = open_connection(amqp_url)
        try:
            ch = conn.channel()
            declare(ch, env.topo)
            ch.exchange_declare(env.bench_exchange, exchange_type="topic", durable=False)
            ch.queue_bind(env.queue, env.bench_exchange, routing_key="#")
        finally:
            conn.close()
        yield env
    finally:
        # a second Ctrl-C or SIGTERM must not leave queues or databases behind
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            _cleanup(env)
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous)


def stop_process_group(
    proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 30.0
) -> None:
    """Stop a process started in a session of its own, with every process of its group: `sig`,
    then SIGKILL when it has not exited within `timeout` seconds. Nothing when it has exited."""
    if proc is None or proc.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _cleanup(env: BenchEnv) -> None:
    try:
        _delete_broker_objects(env)
    except Exception:
        log.exception("could not delete the bench topology %s.*", env.topo.prefix)
    try:
        drop_database(env.admin_url, env.database)
    except Exception:
        log.exception("could not drop the bench database %s", env.database)


def publish(
    env: BenchEnv, messages: Iterable[tuple[str, bytes]], window: int = 20_000, chunk: int = 500
) -> int:
    """Publish (routing key, body) pairs to the measured queue as fast as the broker takes them.

    Publisher confirms are pipelined: up to `window` messages may be unconfirmed, and a nacked
    message is published again, so the queue ends up with exactly the messages given (unconfirmed
    messages were seen lost under load, and the run would then wait for them forever).
    Frames go through the channel's asynchronous layer, flushed every `chunk` messages, because a
    blocking `basic_publish` waits for the socket after every message and publishes ~3x slower.
    """
    conn = open_connection(env.amqp_url)
    unconfirmed: dict[int, tuple[str, bytes]] = {}
    nacked: list[tuple[str, bytes]] = []
    next_tag = 0
    published = 0

    def on_confirm(frame: pika.frame.Method) -> None:
        method = frame.method
        # tags were inserted in increasing order, so a multiple confirm covers a prefix
        tags = (
            list(takewhile(lambda t: t <= method.delivery_tag, unconfirmed))
            if method.multiple
            else [method.delivery_tag]
        )
        for tag in tags:
            message = unconfirmed.pop(tag, None)
            if message is not None and isinstance(method, pika.spec.Basic.Nack):
                nacked.append(message)

    try:
        channel = conn.channel()
        frames = channel._impl  # the asynchronous channel under the blocking one
        selected: list[bool] = []
        frames.confirm_delivery(on_confirm, callback=lambda _frame: selected.append(True))
        while not selected:
            conn.process_data_events(0.1)

        def send(routing_key: str, body: bytes) -> None:
            nonlocal next_tag
            frames.basic_publish(env.bench_exchange, routing_key, body, PERSISTENT)
            next_tag += 1
            unconfirmed[next_tag] = (routing_key, body)
            if next_tag % chunk == 0:
                conn.process_data_events(0)  # writes the buffered frames, reads confirms
                while len(unconfirmed) > window:
                    conn.process_data_events(0.05)

        for routing_key, body in messages:
            send(routing_key, body)
            published += 1
        while unconfirmed or nacked:
            while nacked:
                send(*nacked.pop())
            conn.process_data_events(0.05)
    finally:
        conn.close()
    return published


def wait_for_depth(env: BenchEnv, expected: int, stall_seconds: float = 30.0) -> float:
    """Block until the measured queue holds `expected` ready messages; returns the seconds waited."""
    started = last_change = time.monotonic()
    conn = open_connection(env.amqp_url)
    try:
        ch = conn.channel()
        last = -1
        while True:
            depth = ch.queue_declare(env.queue, passive=True).method.message_count
            now = time.monotonic()
            if depth == expected:
                return now - started
            if depth > expected:
                raise RuntimeError(f"{env.queue} holds {depth} messages, expected {expected}")
            if depth != last:
                last, last_change = depth, now
            elif now - last_change > stall_seconds:
                raise RuntimeError(
                    f"{env.queue} stuck at {depth} of {expected} messages for {stall_seconds}s"
                )
            time.sleep(0.1)
    finally:
        conn.close()


def reset_raw_tables(env: BenchEnv) -> None:
    """Empty the raw tables so each drain run inserts into the same empty state."""
    conn = connect(env.warehouse_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f"TRUNCATE {', '.join(RAW_TABLES)}")
    finally:
        conn.close()


def raw_row_counts(env: BenchEnv) -> dict[str, int]:
    conn = connect(env.warehouse_url)
    try:
        with conn, conn.cursor() as cur:
            counts = {}
            for table in RAW_TABLES:
                cur.execute(f"SELECT count(*) FROM {table}")
                counts[table] = cur.fetchone()[0]
            return counts
    finally:
        conn.close()


def bare_consume(env: BenchEnv, expected: int, prefetch: int = 2000, ack_every: int = 2000) -> dict:
    """The ceiling: a pika consumer that only acks.

    Returns the seconds from `basic_consume` to the last ack, and the CPU spent per message by this
    process and by the broker meanwhile.
    """
    conn = open_connection(env.amqp_url)
    try:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=prefetch)
        received = 0
        last_tag = 0

        def on_message(channel, method, _props, _body: bytes) -> None:
            nonlocal received, last_tag
            received += 1
            last_tag = method.delivery_tag
            if received % ack_every == 0:
                channel.basic_ack(delivery_tag=last_tag, multiple=True)
            if received >= expected:
                channel.stop_consuming()

        broker = broker_pid()
        broker_before = process_cpu_seconds(broker) if broker else None
        own_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        ch.basic_consume(env.queue, on_message, auto_ack=False)
        ch.start_consuming()
        if received % ack_every:
            ch.basic_ack(delivery_tag=last_tag, multiple=True)
        seconds = time.monotonic() - started
        own_after = resource.getrusage(resource.RUSAGE_SELF)
        broker_after = process_cpu_seconds(broker) if broker else None
    finally:
        try:
            conn.close()
        except pika.exceptions.AMQPError:
            log.warning("bare consumer connection did not close cleanly")
    own = (own_after.ru_utime - own_before.ru_utime) + (own_after.ru_stime - own_before.ru_stime)
    per_msg = 1e6 / max(received, 1)
    return {
        "received": received,
        "seconds": round(seconds, 3),
        "rate": received / seconds,
        "cpu_us_per_msg": {
            "consumer_process": round(own * per_msg, 1),
            "broker": round((broker_after - broker_before) * per_msg, 1)
            if broker_before is not None and broker_after is not None
            else None,
        },
    }


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, or None once it is gone or unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


def _pids_whose_cmdline_has(*needles: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if all(n in cmdline for n in needles):
            found.append(int(entry.name))
    return found


def broker_pid() -> int | None:
    """The local RabbitMQ node's Erlang VM, when it runs on this machine."""
    pids = _pids_whose_cmdline_has(b"beam.smp", b"rabbit")
    return pids[0] if pids else None


def backend_pids(database: str) -> list[int]:
    """Postgres backends serving `database` (its process title names the database)."""
    return _pids_whose_cmdline_has(b"postgres: ", f" {database} ".encode())
