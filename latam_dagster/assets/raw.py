"""Raw layer assets: one asset per queue, each landing events in its raw table.

All of them come from one multi-asset step, `drain_queues`, which drains the selected queues at
the same time (a thread and a broker connection per queue) and reports per queue what it did
(received, inserted, duplicates, quarantined, rate) as that asset's materialization metadata.
One step for every queue means one Dagster run per micro-batch instead of one per queue: on two
cores a run's start-up (process, code, resources) costs more CPU than draining the events of a
few seconds does. The step waits for its turn and then drains all its queues (see
`ingest.drain_locks`: a lock in Postgres per queue and one for the turn), so one drain per queue
runs at a time across all runs and machines, and the next run, already started up, takes every
queue over the moment the current drain ends, waiting without using CPU. (A Dagster concurrency
pool would not do here: a step waiting for a pool slot polls in a busy loop in Dagster 1.13, a
whole core per waiting run.) A subset (one raw asset from the UI) drains only its own queue.
"""

from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Backoff,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    multi_asset,
)

from latam_dagster.ingest.drain import DrainConfig, DrainStats
from latam_dagster.ingest.drain_together import drain_together
from latam_dagster.ingest.topology import QUEUES
from latam_dagster.resources import RabbitMQResource, WarehouseResource
from latam_dagster.settings import get_settings

RAW_GROUP = "raw"
# seconds between progress lines while the queues drain
PROGRESS_EVERY = 5.0


def raw_asset_key(family: str) -> AssetKey:
    """`raw/flight_events` for the flights queue, and so on; `raw/unrouted` for the catch-all."""
    table = QUEUES[family][1]
    return AssetKey(table.split(".") if table else ["raw", family])


def _raw_spec(family: str) -> AssetSpec:
    _pattern, table, event_type = QUEUES[family]
    if table:
        description = (
            f"`{table}`: append-only {event_type} events, one row per message_id, drained from "
            f"the `{family}` queue. Invalid messages go to `raw.quarantine`."
        )
    else:
        description = (
            "Messages whose routing key matched no queue (caught by the alternate exchange): "
            "valid events land in their raw table by event type, the rest in `raw.quarantine`."
        )
    return AssetSpec(
        key=raw_asset_key(family),
        group_name=RAW_GROUP,
        kinds={"postgres", "rabbitmq"},
        description=description,
        metadata={"table": table or "raw.*", "queue_family": family},
    )


def drain_metadata(stats: DrainStats) -> dict:
    """What one queue's drain did, as the metadata of its raw asset's materialization."""
    return {
        "queue": stats.queue,
        "received": stats.received,
        "inserted": stats.inserted,
        "duplicates": stats.duplicates,
        "quarantined": stats.quarantined,
        "quarantine_redeliveries": stats.quarantine_duplicates,
        "message_id_conflicts": stats.conflicts,
        "bytes_received": stats.bytes_received,
        "batches": stats.batches,
        "seconds": MetadataValue.float(round(stats.seconds, 3)),
        "msg_per_s": MetadataValue.float(round(stats.rate, 1)),
        "inserted_by_table": MetadataValue.json(stats.inserted_by_table),
        "stop_reason": stats.stop_reason,
        "lock_wait_seconds": MetadataValue.float(stats.lock_wait_seconds),
    }


@multi_asset(
    name="drain_queues",
    specs=[_raw_spec(f) for f in QUEUES],
    can_subset=True,
    description="Drains the selected queues into their raw tables, all at once.",
    # a dropped broker connection fails the step; retrying is safe (commit-then-ack)
    retry_policy=RetryPolicy(max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL),
)
def drain_queues(
    context: AssetExecutionContext,
    rabbitmq: RabbitMQResource,
    warehouse: WarehouseResource,
) -> Iterator[MaterializeResult]:
    topo = rabbitmq.topology
    config = DrainConfig.from_settings(get_settings())
    families = [f for f in QUEUES if raw_asset_key(f) in context.selected_asset_keys]

    def progress(seconds: float, live: dict[str, DrainStats]) -> None:
        received = ", ".join(f"{s.queue} {s.received}" for s in live.values())
        context.log.info(f"draining for {seconds:.0f}s: {received or 'nothing yet'}")

    results = drain_together(
        rabbitmq.amqp_url, warehouse.url, topo, families, config, progress, PROGRESS_EVERY
    )
    failures: list[str] = []
    first_error: BaseException | None = None
    for family, stats in results.items():
        if isinstance(stats, BaseException):
            failures.append(f"{family}: {stats}")
            first_error = first_error or stats
            continue
        context.log.info(
            f"{stats.queue}: received {stats.received}, inserted {stats.inserted}, "
            f"duplicates {stats.duplicates}, quarantined {stats.quarantined} "
            f"in {stats.seconds:.1f}s ({stats.stop_reason})"
        )
        yield MaterializeResult(asset_key=raw_asset_key(family), metadata=drain_metadata(stats))
    if first_error is not None:
        # the queues that drained are recorded above; the failed ones redeliver to the retry
        raise RuntimeError("drain failed for " + "; ".join(failures)) from first_error


raw_assets: list[AssetsDefinition] = [drain_queues]
