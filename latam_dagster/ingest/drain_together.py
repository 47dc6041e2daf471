"""Drain several queues at once, as one micro-batch: a thread and a broker connection per queue.

The run's drain waits for its turn (`drain_locks.drain_turn`) and then drains all its queues
side by side; they stop on idle only together (`IdleGroup`), and each stops on its own budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

from latam_dagster.ingest.drain import (
    STOP_QUEUE_BUSY,
    DrainConfig,
    DrainStats,
    IdleGroup,
    drain_queue,
)
from latam_dagster.ingest.drain_locks import drain_turn
from latam_dagster.ingest.topology import Topology


def drain_together(
    amqp_url: str,
    warehouse_url: str,
    topo: Topology,
    families: Sequence[str],
    config: DrainConfig,
    progress: Callable[[float, dict[str, DrainStats]], None] | None = None,
    progress_every: float = 5.0,
) -> dict[str, DrainStats | BaseException]:
    """Drain `families` at once; returns each queue's stats, or the error its drain raised.

    `progress(seconds, stats so far)` is called every `progress_every` seconds meanwhile. A
    drain that did not get its turn within `config.lock_timeout` drains nothing (stop reason
    STOP_QUEUE_BUSY), and its messages wait for the next one.
    """
    with drain_turn(warehouse_url, topo.prefix, config.lock_timeout) as waited:
        if waited is None:
            return {
                f: DrainStats(
                    queue=topo.queue(f),
                    stop_reason=STOP_QUEUE_BUSY,
                    lock_wait_seconds=config.lock_timeout,
                )
                for f in families
            }
        group = IdleGroup([topo.queue(f) for f in families])
        live: dict[str, DrainStats] = {}

        def run(family: str) -> DrainStats:
            def seen(stats: DrainStats) -> None:
                live[family] = stats

            return drain_queue(amqp_url, warehouse_url, topo, family, config, seen, group)

        with ThreadPoolExecutor(max_workers=len(families), thread_name_prefix="drain") as pool:
            futures: dict[str, Future[DrainStats]] = {f: pool.submit(run, f) for f in families}
            started = time.monotonic()
            while wait(list(futures.values()), timeout=progress_every).not_done:
                if progress is not None:
                    progress(time.monotonic() - started, dict(live))

    results: dict[str, DrainStats | BaseException] = {}
    for family, future in futures.items():
        error = future.exception()
        if error is not None:
            results[family] = error
            continue
        stats = future.result()
        stats.lock_wait_seconds = round(stats.lock_wait_seconds + waited, 3)
        results[family] = stats
    return results
