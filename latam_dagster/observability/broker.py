"""RabbitMQ metrics: depth, consumers, unacked messages and the age of the oldest message.

Depth and consumers come from a passive declare per queue (AMQP; exact and always available).
The age of the oldest message cannot be read from a quorum queue: RabbitMQ reports
`head_message_timestamp` only for classic queues, and peeking at the head would count as a
delivery against the queue's delivery limit. Instead the age is derived from what the management
API does report, with FIFO arithmetic: the queue has received `published` messages in total and
still holds `messages` (ready + unacked), so its head is message number
`published - messages + 1`; the exporter remembers when the publish counter passed each value, so
it knows when the head arrived. Accuracy is one collection interval plus the broker's statistics
interval (5 s by default). Without the management plugin the age is not reported.

The management API's `messages` and `publish` figures are refreshed by separate statistics
events, so one can lag the other by up to the statistics interval. The queue length therefore
comes from the passive declare (exact, current) plus the management API's unacked count, and
while the publish counter is still behind that length the estimate carries on from the last one
instead of dating the head at the start of the history.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass

import pika.exceptions

from latam_dagster.ingest.topology import Topology, open_connection
from latam_dagster.observability.families import Families

log = logging.getLogger(__name__)


class HeadAgeEstimator:
    """Dates the head of one FIFO queue from the history of its publish counter."""

    def __init__(self, window_seconds: float = 6 * 3600) -> None:
        self.window = window_seconds
        self.samples: deque[tuple[float, int]] = deque()
        self._last: tuple[float, float] | None = None  # (time, age) of the last estimate

    def observe(self, now: float, published: int, messages: int) -> float:
        """Record the counter at `now` and return the age in seconds of the oldest message.

        While the head arrived before the first sample kept, the result is a lower bound (the
        time since that sample); it becomes exact once history covers the head's arrival.
        """
        samples = self.samples
        if samples and published < samples[-1][1]:  # counter reset (broker restart, new queue)
            samples.clear()
            self._last = None
        if len(samples) >= 2 and samples[-1][1] == samples[-2][1] == published:
            samples[-1] = (now, published)  # keep only the two ends of a plateau
        else:
            samples.append((now, published))
        while len(samples) > 2 and now - samples[1][0] > self.window:
            samples.popleft()
        age = self._estimate(now, published, messages)
        self._last = (now, age)
        return age

    def _estimate(self, now: float, published: int, messages: int) -> float:
        if messages <= 0:
            return 0.0
        if published < messages:
            # the publish counter has not caught up with the queue length yet (statistics lag)
            # or the messages predate the counter (broker restart): carry the last estimate on
            if self._last is None:
                return 0.0
            last_time, last_age = self._last
            return last_age + max(0.0, now - last_time)
        head = published - messages + 1
        prev: tuple[float, int] | None = None
        for t, count in self.samples:
            if count >= head:
                if prev is None:  # arrived before the history kept: a lower bound
                    return max(0.0, now - t)
                t0, c0 = prev
                arrived = t0 + (head - c0) / (count - c0) * (t - t0)
                return max(0.0, now - arrived)
            prev = (t, count)
        return 0.0  # unreachable: the last sample holds `published` >= head


@dataclass
class QueueStats:
    """What the management API says about one queue."""

    messages: int
    unacked: int
    published: int | None


def management_endpoint(base_url: str) -> tuple[str, str | None]:
    """The base URL of a RabbitMQ management API without its credentials, and the Basic
    authorization value of those credentials (None without a user). Only http(s) URLs."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"the RabbitMQ management URL must be http(s), not {parts.scheme!r}")
    auth = None
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    netloc = parts.hostname or "localhost"
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")), auth


class ManagementClient:
    """The few calls of the RabbitMQ management HTTP API the exporter needs."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base, self._auth = management_endpoint(base_url)
        self.timeout = timeout

    def queues(self, vhost: str) -> dict[str, QueueStats]:
        """Stats of every queue of `vhost`, by name."""
        columns = "name,messages,messages_unacknowledged,message_stats.publish"
        path = f"/api/queues/{urllib.parse.quote(vhost, safe='')}?columns={columns}"
        request = urllib.request.Request(self.base + path)
        if self._auth:
            request.add_header("Authorization", f"Basic {self._auth}")
        # the scheme was checked to be http or https in __init__
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # nosec B310
            rows = json.load(response)
        return {
            row["name"]: QueueStats(
                messages=int(row.get("messages") or 0),
                unacked=int(row.get("messages_unacknowledged") or 0),
                published=(row.get("message_stats") or {}).get("publish"),
            )
            for row in rows
        }


class BrokerCollector:
    """Metrics of the topology's queues (label `queue`)."""

    name = "rabbitmq"

    def __init__(
        self,
        amqp_url: str,
        topology: Topology,
        vhost: str,
        management_url: str | None,
        age_window_seconds: float = 6 * 3600,
    ) -> None:
        self.amqp_url = amqp_url
        self.topology = topology
        self.vhost = vhost
        self.management = ManagementClient(management_url) if management_url else None
        self.window = age_window_seconds
        self._estimators: dict[str, HeadAgeEstimator] = {}
        self._warned_management = False

    @property
    def queues(self) -> list[str]:
        return [*self.topology.queues, self.topology.dead_queue]

    def _declared(self) -> dict[str, tuple[int, int]]:
        """(ready messages, consumers) per existing queue, by passive declare."""
        found: dict[str, tuple[int, int]] = {}
        conn = open_connection(self.amqp_url)
        try:
            channel = conn.channel()
            for queue in self.queues:
                try:
                    ok = channel.queue_declare(queue, passive=True).method
                    found[queue] = (ok.message_count, ok.consumer_count)
                except pika.exceptions.ChannelClosedByBroker:  # 404: not declared yet
                    channel = conn.channel()
        finally:
            if conn.is_open:
                conn.close()
        return found

    def collect(self, out: Families) -> None:
        declared = self._declared()
        for queue, (ready, consumers) in declared.items():
            out.gauge(
                "latam_queue_depth_messages",
                "Messages ready for delivery in the queue (passive declare).",
                ready,
                queue=queue,
            )
            out.gauge(
                "latam_queue_consumers", "Consumers attached to the queue.", consumers, queue=queue
            )
        self._collect_management(out, declared)

    def _collect_management(self, out: Families, declared: dict[str, tuple[int, int]]) -> None:
        if self.management is None:
            return
        try:
            stats = self.management.queues(self.vhost)
        except (OSError, ValueError) as exc:
            out.gauge("latam_rabbitmq_management_up", "Whether the management API answered.", 0)
            if not self._warned_management:
                log.warning(
                    "RabbitMQ management API not reachable at %s (%s): no unacked counts and no "
                    "oldest-message age. Enable it with `rabbitmq-plugins enable "
                    "rabbitmq_management` or set LATAM_RABBITMQ_MANAGEMENT_URL=off.",
                    self.management.base,
                    exc,
                )
                self._warned_management = True
            return
        self._warned_management = False
        out.gauge("latam_rabbitmq_management_up", "Whether the management API answered.", 1)
        now = time.time()
        drainable = set(self.topology.queues)
        for queue in self.queues:
            qs = stats.get(queue)
            if qs is None or queue not in declared:
                continue
            out.gauge(
                "latam_queue_unacked_messages",
                "Messages delivered to a consumer and not yet acknowledged.",
                qs.unacked,
                queue=queue,
            )
            published = qs.published or 0
            out.counter(
                "latam_queue_published_messages_total",
                "Messages routed into the queue since the broker started.",
                published,
                queue=queue,
            )
            if queue not in drainable:
                continue  # dead letters arrive without a publish: no FIFO arithmetic there
            estimator = self._estimators.setdefault(queue, HeadAgeEstimator(self.window))
            ready = declared[queue][0]  # exact; the management figure may lag the counter
            out.gauge(
                "latam_queue_oldest_message_age_seconds",
                "Age of the oldest message still in the queue (ready or unacked); 0 when empty.",
                estimator.observe(now, published, ready + qs.unacked),
                queue=queue,
            )
