"""Raw layer assets: one drain asset per queue, each landing events in its raw table.

A drain run materializes the raw table of its queue and reports what it did (received,
inserted, duplicates, quarantined, rate) as materialization metadata. Each drain sits in its own
concurrency pool, so at most one drain per queue runs at a time across all runs.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Backoff,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)

from latam_dagster.ingest.drain import DrainConfig, drain_queue
from latam_dagster.ingest.topology import QUEUES
from latam_dagster.resources import RabbitMQResource, WarehouseResource
from latam_dagster.settings import get_settings

RAW_GROUP = "raw"


def raw_asset_key(family: str) -> AssetKey:
    """`raw/flight_events` for the flights queue, and so on; `raw/unrouted` for the catch-all."""
    table = QUEUES[family][1]
    return AssetKey(table.split(".") if table else ["raw", family])


def drain_pool(family: str) -> str:
    return f"drain_{family}"


def build_drain_asset(family: str) -> AssetsDefinition:
    """The asset that drains `<prefix>.<family>` into its raw table."""
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

    @asset(
        key=raw_asset_key(family),
        group_name=RAW_GROUP,
        pool=drain_pool(family),
        kinds={"postgres", "rabbitmq"},
        description=description,
        metadata={"table": table or "raw.*", "queue_family": family},
        # a dropped broker connection fails the step; retrying is safe (commit-then-ack)
        retry_policy=RetryPolicy(max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL),
    )
    def _drain(
        context: AssetExecutionContext,
        rabbitmq: RabbitMQResource,
        warehouse: WarehouseResource,
    ) -> MaterializeResult:
        warehouse.migrate()
        topo = rabbitmq.topology
        config = DrainConfig.from_settings(get_settings())

        def progress(stats) -> None:
            if stats.batches % 25 == 0:
                context.log.info(f"{stats.queue}: {stats.received} received so far")

        stats = drain_queue(rabbitmq.amqp_url, warehouse.url, topo, family, config, progress)
        context.log.info(
            f"{stats.queue}: received {stats.received}, inserted {stats.inserted}, "
            f"duplicates {stats.duplicates}, quarantined {stats.quarantined} "
            f"in {stats.seconds:.1f}s ({stats.stop_reason})"
        )
        return MaterializeResult(
            metadata={
                "queue": stats.queue,
                "received": stats.received,
                "inserted": stats.inserted,
                "duplicates": stats.duplicates,
                "quarantined": stats.quarantined,
                "quarantine_redeliveries": stats.quarantine_duplicates,
                "batches": stats.batches,
                "seconds": MetadataValue.float(round(stats.seconds, 3)),
                "msg_per_s": MetadataValue.float(round(stats.rate, 1)),
                "inserted_by_table": MetadataValue.json(stats.inserted_by_table),
                "stop_reason": stats.stop_reason,
            }
        )

    return _drain


raw_assets: list[AssetsDefinition] = [build_drain_asset(f) for f in QUEUES]
