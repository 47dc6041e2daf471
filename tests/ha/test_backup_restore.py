"""Point-in-time restore drill: a base backup and the WAL archive bring the warehouse back to a
named restore point, and the API answers there exactly what it answered when the point was made.

The base backup is taken of the empty, migrated warehouse, so everything the API serves comes
back by replaying archived WAL, not from the backup's files. After the restore point the
warehouse gets new rows and loses others (what a bad deploy or a wrong DELETE does); that WAL
is archived too, and the restore must stop before it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from latam_dagster.db import connection, migrate
from tests.ha.pg_cluster import PgCluster, PgNode, pg_cluster
from tests.integration.api_data import ApiDataset, build_dataset, insert_dataset, write_data_docs
from tests.integration.api_expect import walk
from tests.integration.api_fixtures import (
    ApiWarehouse,
    AuthedClient,
    new_api_key,
    reader_config,
    running_app,
)

pytestmark = [pytest.mark.ha, pytest.mark.integration]

DATABASE = "latam"
RESTORE_POINT = "before_damage"
PAGE = 25  # small pages: the cursors are part of what must come back the same
NEW_AIRPORT = "ZZZ"  # an airport written after the restore point


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    with pg_cluster() as found:
        yield found


def list_paths(data: ApiDataset) -> list[str]:
    """The list endpoints to compare, with arguments taken from the dataset."""
    flight = data.flights[-1]["flight_key"]  # a flight the damage keeps
    airport = data.airports[0]["iata"]
    return [
        "/api/v1/flights",
        f"/api/v1/flights?flight_date={data.flights[-1]['flight_date'].isoformat()}",
        f"/api/v1/flights/{flight}/events",
        "/api/v1/routes/performance",
        f"/api/v1/airports/{airport}/traffic",
        "/api/v1/quality",
        "/api/v1/quality/history",
    ]


def item_paths(data: ApiDataset) -> list[str]:
    """The single-row endpoints to compare: every flight of one day, every airport, and one
    that is written only after the restore point."""
    day = data.flights[0]["flight_date"]
    flights = [
        f"/api/v1/flights/{f['flight_key']}" for f in data.flights if f["flight_date"] == day
    ]
    airports = [f"/api/v1/airports/{a['iata']}" for a in data.airports]
    return [*flights, *airports, f"/api/v1/airports/{NEW_AIRPORT}"]


def answers(client: AuthedClient, data: ApiDataset) -> dict[str, object]:
    """What the API answers on each compared endpoint: every page's rows of a list, and the
    status and body of an item."""
    found: dict[str, object] = {path: walk(client, path, limit=PAGE) for path in list_paths(data)}
    for path in item_paths(data):
        response = client.get(path)
        found[path] = (response.status_code, response.get_json())
    return found


def api_answers(node: PgNode, docs: Path, key: str, data: ApiDataset) -> dict[str, object]:
    """`answers` of a new API reading `node` as the read-only role."""
    config = reader_config(
        ApiWarehouse(node.url(DATABASE), docs), cursor_secret="ha-cursor-secret", testing=True
    )
    with running_app(config) as app:
        client: FlaskClient = app.test_client()
        return answers(AuthedClient(client, key), data)


def damage(url: str, data: ApiDataset) -> None:
    """What must not survive the restore: a new flight and a new airport, the first day's
    flights and loads deleted, a mart day deleted, and the quality results emptied."""
    late = dict(data.flights[-1])
    late["flight_number"] += 1000
    late["flight_key"] = f"{late['carrier']}{late['flight_number']}-{late['flight_date']}-X"
    airport = {**data.airports[0], "iata": NEW_AIRPORT, "icao": "ZZZZ", "name": "Written late"}
    insert_dataset(url, ApiDataset(flights=[late], airports=[airport]))
    first_day: dt.date = data.flights[0]["flight_date"]
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "DELETE FROM curated.flight_passenger_load WHERE flight_date = %s", (first_day,)
        )
        cur.execute("DELETE FROM curated.fact_flight WHERE flight_date = %s", (first_day,))
        cur.execute(
            "DELETE FROM marts.route_daily_performance WHERE flight_date = %s", (first_day,)
        )
        cur.execute("DELETE FROM quality.check_evaluation")


def archive_current_segment(primary: PgNode) -> str:
    """Switch to a new WAL segment and wait until the one holding everything written so far is
    in the archive (a restore can replay only archived WAL). Returns its name."""
    (segment,) = primary.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")[0]
    primary.sql("SELECT pg_switch_wal()")
    primary.wait_for(
        lambda: primary.sql("SELECT last_archived_wal >= %s FROM pg_stat_archiver", (segment,))[0][
            0
        ],
        f"{segment} archived",
    )
    return segment


def size_mb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths if p.is_file()) / 1e6


def test_restore_to_a_named_point_gives_back_the_same_answers(
    cluster: PgCluster, tmp_path: Path
) -> None:
    data = build_dataset()
    docs = write_data_docs(tmp_path / "docs", data)
    primary = cluster.primary()
    url = primary.url(DATABASE)
    migrate(url)
    backup = cluster.base_backup(primary)

    # everything the API serves is written after the base backup: it comes back from the WAL
    insert_dataset(url, data)
    key = new_api_key(url)
    recorded = api_answers(primary, docs, key, data)
    assert recorded[f"/api/v1/airports/{NEW_AIRPORT}"][0] == 404
    assert all(recorded[path] for path in list_paths(data))
    primary.sql("SELECT pg_create_restore_point(%s)", (RESTORE_POINT,))

    damage(url, data)
    damaged = api_answers(primary, docs, key, data)
    changed = [path for path in recorded if damaged[path] != recorded[path]]
    assert f"/api/v1/airports/{NEW_AIRPORT}" in changed
    assert len(changed) > len(data.airports)  # deleted flights, the mart, quality, the new rows
    segment = archive_current_segment(primary)
    primary.stop()  # the damaged server is out of service; the restore gets its own port

    began = time.monotonic()
    restored = cluster.restore(backup, RESTORE_POINT)
    restore_seconds = time.monotonic() - began
    got = api_answers(restored, docs, key, data)

    assert {p: got[p] for p in changed} == {p: recorded[p] for p in changed}
    assert got == recorded
    wal = sorted(cluster.archive.iterdir())
    print(
        f"\nHA restore: base backup {size_mb(list(backup.iterdir())):.2f} MB (tar.gz, no WAL) "
        f"+ WAL archive {len(wal)} files {size_mb(wal):.1f} MB (up to {segment}); restore to "
        f"{RESTORE_POINT!r} took {restore_seconds:.2f} s; {len(got)} API answers identical, "
        f"{len(changed)} of them had changed after the restore point"
    )
