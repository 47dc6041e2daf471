"""Huge messages cannot exhaust a drain's memory.

A few hundred 20 MB bodies among good events go through one drain, in a process of its own so that
its peak resident set (VmHWM) is the drain's alone. Each oversized body is hashed and cut to its
head as it arrives, and batches are written by bytes as well as by count, so the peak stays near
the process's start-up size whatever the queue holds: the bound checked here,
`PEAK_RSS_BOUND_MB`, is the figure documented in the README. Memory is not time: a bound on a
resident set is as stable on a busy machine as on an idle one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pika
import pytest

from latam_dagster.ingest.drain import QUARANTINE_HEAD_BYTES
from latam_dagster.ingest.topology import open_connection
from tests.conftest import query
from tests.integration.ingest_helpers import (
    assert_queues_empty,
    dumps,
    make_flight_event,
    queue_count,
    wait_until,
)

pytestmark = pytest.mark.integration

HUGE_MESSAGES = int(os.environ.get("LATAM_TEST_HUGE_MESSAGES", "200"))
HUGE_BYTES = 20 * 1024 * 1024
GOOD_PER_HUGE = 5
PEAK_RSS_BOUND_MB = 150

DRAIN_SCRIPT = """
import json, re, sys
from pathlib import Path
from latam_dagster.ingest.drain import DrainConfig, drain_queue
from latam_dagster.ingest.topology import Topology

amqp_url, warehouse_url, prefix = sys.argv[1:4]
base = int(re.search(r"VmRSS:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))
stats = drain_queue(amqp_url, warehouse_url, Topology(prefix=prefix), "flights",
                    DrainConfig(idle_seconds=1.0, max_seconds=600))
peak = int(re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))
print(json.dumps({"received": stats.received, "inserted": stats.inserted,
                  "quarantined": stats.quarantined, "seconds": stats.seconds,
                  "stop_reason": stats.stop_reason, "batches": stats.batches,
                  "rss_before_mb": base / 1024, "peak_rss_mb": peak / 1024}))
"""


def test_hundreds_of_20mb_messages_keep_the_drain_small(amqp_url, warehouse_url, topology):
    huge = dumps(make_flight_event(payload={"padding": "x" * HUGE_BYTES}))
    conn = open_connection(amqp_url)
    goods = []
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2)
        for i in range(HUGE_MESSAGES):
            for _ in range(GOOD_PER_HUGE):
                event = make_flight_event()
                goods.append(event["message_id"])
                ch.basic_publish(topology.exchange, "flight.sabre", dumps(event), props)
            # each body distinct, so each is a quarantine row of its own
            body = huge[:-8] + f"{i:06d}".encode() + huge[-2:]
            ch.basic_publish(topology.exchange, "flight.sabre", body, props)
    finally:
        conn.close()
    total = HUGE_MESSAGES * (GOOD_PER_HUGE + 1)
    queue = topology.queue("flights")
    wait_until(lambda: queue_count(amqp_url, queue) == total, timeout=120, what="all published")

    proc = subprocess.run(
        [sys.executable, "-c", DRAIN_SCRIPT, amqp_url, warehouse_url, topology.prefix],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"\n{HUGE_MESSAGES} x 20 MB among {len(goods)} good events: peak RSS "
        f"{result['peak_rss_mb']:.0f} MB (before the drain {result['rss_before_mb']:.0f} MB), "
        f"{result['seconds']:.1f} s"
    )
    assert result["received"] == total, result
    assert result["inserted"] == len(goods)
    assert result["quarantined"] == HUGE_MESSAGES
    assert result["peak_rss_mb"] < PEAK_RSS_BOUND_MB, result

    [(rows, kept_bytes, truncated)] = query(
        warehouse_url,
        "SELECT count(*), max(octet_length(body)), bool_and(body_truncated) FROM raw.quarantine",
    )
    assert (rows, kept_bytes, truncated) == (HUGE_MESSAGES, QUARANTINE_HEAD_BYTES, True)
    assert query(warehouse_url, "SELECT count(*) FROM raw.flight_events")[0][0] == len(goods)
    assert_queues_empty(amqp_url, topology)
