"""Curated layer assets: one asset per table, each running its SQL file incrementally.

A run applies only what changed in the asset's sources since its watermarks; with
`full_refresh: true` in the run config it rebuilds the table from raw instead (same SQL, same
result). The table's SQL lives in `assets/sql/curated/<table>.sql`; its header comment becomes the
asset description and a hash of it the code version, so a logic change shows in the UI.
"""

import hashlib
from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from latam_dagster.assets.raw import raw_asset_key
from latam_dagster.db import connection
from latam_dagster.ingest.topology import RAW_TABLE_OF_QUEUE
from latam_dagster.quality.audit import AuditBlocked, held_back_counts
from latam_dagster.quality.audit_checks import audit_check_results, audit_check_specs
from latam_dagster.resources import WarehouseResource
from latam_dagster.tables import REGISTRY, Registry, Table
from latam_dagster.transform.curated import update_table
from latam_dagster.transform.session import transform_transaction
from latam_dagster.transform.sqlfiles import load_sql

CURATED_GROUP = "curated"
FAMILY_OF_RAW_TABLE = {table: family for family, table in RAW_TABLE_OF_QUEUE.items()}


def curated_key(table: str) -> AssetKey:
    return AssetKey(["curated", table])


FLIGHT_EVENT_HISTORY_KEY = curated_key("flight_event_history")


class CuratedConfig(Config):
    """Run config of the curated assets."""

    full_refresh: bool = Field(
        default=False,
        description="Rebuild the table from raw instead of applying only the new events.",
    )


def sql_header(sql: str) -> str:
    """The leading comment of a SQL file, as prose."""
    lines = []
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line.removeprefix("--").removeprefix(" "))
    return "\n".join(lines).strip()


def sql_version(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()[:12]


def input_key(table: str) -> AssetKey:
    """The asset of an input table: a queue's raw asset, or the table's own asset."""
    family = FAMILY_OF_RAW_TABLE.get(table)
    return raw_asset_key(family) if family else AssetKey(table.split("."))


def build_curated_asset(declared: Table) -> AssetsDefinition:
    """The asset that keeps a curated table up to date (written, audited and published when
    the table is audited: its rules' checks are then evaluated by every materialization)."""
    sql = declared.sql()
    key = AssetKey(list(declared.asset_key))
    audited = declared.audit

    @asset(
        key=key,
        deps=[input_key(t) for t in declared.inputs],
        group_name=CURATED_GROUP,
        kinds={"postgres", "sql"},
        description=sql_header(sql),
        code_version=sql_version(sql),
        metadata={"table": declared.qualified, "sql_file": declared.sql_path},
        check_specs=audit_check_specs(audited, key) if audited else None,
    )
    def _update(
        context: AssetExecutionContext, config: CuratedConfig, warehouse: WarehouseResource
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        selected = set(context.selected_asset_check_keys)
        try:
            result = update_table(
                warehouse.url,
                declared,
                full_refresh=config.full_refresh,
                run_id=context.run.run_id,
            )
        except AuditBlocked as blocked:
            # the evaluations say why; the failure skips everything downstream
            yield from audit_check_results(key, blocked.result, selected)
            raise Failure(
                description=str(blocked),
                metadata={
                    **blocked.result.as_metadata(),
                    "rule_counts": MetadataValue.json(blocked.result.rule_counts()),
                },
            ) from None
        context.log.info(
            f"{declared.qualified}: {result.changed_rows} row(s) changed"
            + (f" of {result.in_scope} in scope" if result.in_scope is not None else "")
            + f", {result.dates_touched} date(s) touched in {result.seconds:.2f}s"
            + (
                f"; audit: {result.audit.published} published, {result.audit.held} held back"
                if result.audit
                else ""
            )
        )
        checks: list[AssetCheckResult] = []
        if result.audit is not None and audited is not None:
            with connection(warehouse.url) as conn, conn.cursor() as cur:
                held_now = held_back_counts(cur, audited)
            checks = audit_check_results(key, result.audit, selected, held_now)
        yield MaterializeResult(metadata=result.as_metadata(), check_results=checks)

    return _update


def apply_flight_event_history(url: str) -> None:
    """(Re)create the curated.flight_event_history view; idempotent."""
    with transform_transaction(url, "curated.flight_event_history") as cur:
        cur.execute(load_sql("curated", "flight_event_history"))


_HISTORY_SQL = load_sql("curated", "flight_event_history")


@asset(
    key=FLIGHT_EVENT_HISTORY_KEY,
    deps=[raw_asset_key("flights")],
    group_name=CURATED_GROUP,
    kinds={"postgres", "sql"},
    description=sql_header(_HISTORY_SQL),
    code_version=sql_version(_HISTORY_SQL),
    metadata={
        "table": "curated.flight_event_history",
        "sql_file": "assets/sql/curated/flight_event_history.sql",
    },
)
def flight_event_history(warehouse: WarehouseResource) -> MaterializeResult:
    """A view: materializing it (re)creates the definition; its rows are always current."""
    apply_flight_event_history(warehouse.url)
    return MaterializeResult(metadata={"kind": "view"})


def build_curated_assets(registry: Registry = REGISTRY) -> list[AssetsDefinition]:
    """One asset per curated table of the registry, plus the event history view."""
    return [*(build_curated_asset(t) for t in registry.curated()), flight_event_history]


curated_assets: list[AssetsDefinition] = build_curated_assets()
