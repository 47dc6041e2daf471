"""Helpers of the observability tests: publishing simulated traffic, reading metric samples,
free ports, and the RabbitMQ management API."""

from __future__ import annotations

import socket
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

from latam_dagster.ingest.publish import PERSISTENT
from latam_dagster.ingest.topology import Topology, open_connection, queue_depths
from latam_dagster.observability.config import management_url_from_amqp
from latam_dagster.observability.exporter import Exporter
from latam_dagster.observability.warehouse import WarehouseCollector
from latam_dagster.simulator import generate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def management_available(amqp_url: str) -> bool:
    """Whether the RabbitMQ management API answers (infra/ci/install-tools.sh enables it)."""
    try:
        base = management_url_from_amqp(amqp_url)
        host = base.split("@", 1)[1]
        with urllib.request.urlopen(f"http://{host}/api/overview", timeout=2):
            return True
    except urllib.error.HTTPError as exc:  # 401 still means it is there
        return exc.code == 401
    except OSError:
        return False


def publish(amqp_url: str, topo: Topology, bodies: Iterable[tuple[bytes, str]]) -> int:
    """Publish (body, routing key) pairs with confirms on the channel; returns the count."""
    conn = open_connection(amqp_url)
    count = 0
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        for body, key in bodies:
            channel.basic_publish(topo.exchange, key, body, PERSISTENT)
            count += 1
    finally:
        conn.close()
    return count


def simulated(seed: int, events: int, systems: int = 4, invalid: float = 0.0):
    """(body, routing key) of simulated messages."""
    for msg in generate(seed, systems=systems, events=events, invalid_share=invalid):
        yield msg.body, msg.routing_key


def wait_for_depth(amqp_url: str, topo: Topology, total: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(queue_depths(amqp_url, topo).values()) < total:
        if time.monotonic() > deadline:
            raise AssertionError(f"the broker did not report {total} messages in time")
        time.sleep(0.1)


def samples(exporter: Exporter) -> dict[tuple[str, frozenset], float]:
    """Every sample the exporter serves now, keyed by (name, labels)."""
    text = exporter.exposition().decode()
    found: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def warehouse_samples(url: str, **options) -> dict[tuple[str, frozenset], float]:
    """The samples of one successful collection of the warehouse metrics of `url` (`options` go
    to the collector), on a topology of their own."""
    collector = WarehouseCollector(url, Topology(prefix=f"t{uuid.uuid4().hex[:10]}"), **options)
    exporter = Exporter([collector])
    try:
        assert exporter.collect_once() == {"postgres": True}
        return samples(exporter)
    finally:
        collector.close()


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def by_label(found: dict, name: str, label: str) -> dict[str, float]:
    """{label value: sample value} of every sample of `name`."""
    return {
        dict(key)[label]: v for (n, key), v in found.items() if n == name and label in dict(key)
    }


T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 60.0, every: float = 0.5) -> T:
    """Call `check` until it returns without an AssertionError (or the time is up).

    Counters stop at the oldest transaction still running on the server, and other work on a
    shared server may hold that back for a moment; the values converge once it ends.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(every)
