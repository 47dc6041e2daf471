"""The exporter counts identity rejections (quarantine reasons `identity: ...`) per source system
and queue, apart from the other quarantine reasons."""

from __future__ import annotations

from latam_dagster.db import connect
from latam_dagster.ingest.drain import IDENTITY_MISMATCH, IDENTITY_MISSING
from latam_dagster.ingest.writer import RawWriter, Rejected
from latam_dagster.observability.exporter import Exporter
from latam_dagster.observability.warehouse import WarehouseCollector
from tests.conftest import query
from tests.integration.observability_support import samples


def _quarantine(url: str, queue: str, key: str, reason: str, body: bytes) -> None:
    conn = connect(url)
    try:
        RawWriter(conn).write([], [Rejected(queue, key, reason, body)], queue)
    finally:
        conn.close()


def _identity(found: dict, name: str) -> dict[tuple[str, str], float]:
    return {
        (dict(k)["queue"], dict(k)["source_system"]): v for (n, k), v in found.items() if n == name
    }


def test_identity_rejections_are_counted_per_source_system(warehouse_url, topology):
    flights, positions = topology.queue("flights"), topology.queue("positions")
    _quarantine(warehouse_url, flights, "flight.ops_control_scl", IDENTITY_MISMATCH, b"1")
    _quarantine(warehouse_url, flights, "flight.ops_control_scl", IDENTITY_MISSING, b"2")
    _quarantine(warehouse_url, positions, "position.adsb_aireon", IDENTITY_MISMATCH, b"3")
    _quarantine(warehouse_url, flights, "flight.ops_control_scl", "$.payload: not an object", b"4")
    exporter = Exporter([WarehouseCollector(warehouse_url, topology)])
    assert exporter.collect_once() == {"postgres": True}
    found = samples(exporter)
    assert _identity(found, "latam_ingest_identity_rejected_messages_total") == {
        (flights, "ops_control_scl"): 2,
        (positions, "adsb_aireon"): 1,
    }
    assert _identity(found, "latam_quarantine_identity_open_messages") == {
        (flights, "ops_control_scl"): 2,
        (positions, "adsb_aireon"): 1,
    }
    # every quarantine reason still counts in the quarantine total
    assert (
        _identity(found, "latam_ingest_quarantined_messages_total")[(flights, "ops_control_scl")]
        == 3
    )

    query(warehouse_url, "UPDATE raw.quarantine SET replayed_at = now() WHERE body = '\\x33'")
    exporter.collect_once()
    found = samples(exporter)
    assert (
        _identity(found, "latam_quarantine_identity_open_messages")[(positions, "adsb_aireon")] == 0
    )
    assert (
        _identity(found, "latam_ingest_identity_rejected_messages_total")[
            (positions, "adsb_aireon")
        ]
        == 1
    )
