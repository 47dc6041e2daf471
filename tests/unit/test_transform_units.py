"""Pure parts of the transformation layer: date ranges, SQL files, run requests, definitions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from dagster import AssetKey, BackfillPolicy, build_schedule_context

from latam_dagster.assets.curated import sql_header
from latam_dagster.sensors.mart_sensors import pending_run_requests
from latam_dagster.transform.curated import TABLES
from latam_dagster.transform.marts import MARTS, date_ranges, split_in_bounds
from latam_dagster.transform.sqlfiles import SCOPE_MARKER, load_sql, scoped, without_upsert

START = "dagster/asset_partition_range_start"
END = "dagster/asset_partition_range_end"


def d(day: int, month: int = 11, year: int = 2026) -> date:
    return date(year, month, day)


def test_date_ranges_merge_short_gaps_only():
    assert date_ranges([]) == []
    assert date_ranges([d(3), d(1), d(2), d(2)]) == [(d(1), d(3))]
    assert date_ranges([d(1), d(9)], max_gap_days=7) == [(d(1), d(9))]
    assert date_ranges([d(1), d(10)], max_gap_days=7) == [(d(1), d(1)), (d(10), d(10))]
    assert date_ranges([d(4, 3, 2021), d(26), d(27)]) == [
        (d(4, 3, 2021), d(4, 3, 2021)),
        (d(26), d(27)),
    ]


def test_split_in_bounds():
    inside, outside = split_in_bounds([d(1, 1, 2019), d(5), d(30)], d(1, 1, 2020), d(27))
    assert inside == [d(5)]
    assert outside == [d(1, 1, 2019), d(30)]


@pytest.mark.parametrize("table", list(TABLES))
def test_curated_sql_runs_whole_or_scoped(table):
    sql = load_sql("curated", table)
    assert SCOPE_MARKER in sql
    restricted = scoped(sql, "flight_key = 'X'")
    assert SCOPE_MARKER not in restricted and "(flight_key = 'X')" in restricted
    assert scoped(sql, None) == sql
    assert sql_header(sql).startswith(f"curated.{table}")


@pytest.mark.parametrize("table", list(TABLES))
def test_a_full_refresh_inserts_without_looking_for_conflicts(table):
    sql = load_sql("curated", table)
    plain = without_upsert(sql)
    assert "ON CONFLICT" in sql and "ON CONFLICT" not in plain
    assert sql.startswith(plain) and len(plain) > len(sql) // 2


def test_an_upsert_clause_must_be_there_once():
    with pytest.raises(ValueError):
        without_upsert("INSERT INTO t SELECT 1")
    with pytest.raises(ValueError):
        without_upsert("INSERT INTO t SELECT 1\nON CONFLICT DO NOTHING\nON CONFLICT DO NOTHING")


def test_scoping_sql_without_a_marker_is_refused():
    with pytest.raises(ValueError):
        scoped("SELECT 1", "TRUE")


@pytest.mark.parametrize("mart", MARTS)
def test_mart_sql_reads_its_dates_from_scope_dates(mart):
    sql = load_sql("marts", mart)
    assert sql.count("scope_dates") >= 2
    assert sql_header(sql).startswith(f"marts.{mart}")


def test_pending_dates_become_one_request_per_range_with_only_pending_config():
    pending = {d(4, 3, 2021): 5, d(25): 9, d(26): 12, d(27): 11, d(1, 1, 2019): 3, d(29): 4}
    requests, outside = pending_run_requests(pending, (d(1, 1, 2020), d(27)))
    assert sorted(outside) == [d(1, 1, 2019), d(29)]
    assert [(r.tags[START], r.tags[END]) for r in requests] == [
        ("2021-03-04", "2021-03-04"),
        ("2026-11-25", "2026-11-27"),
    ]
    assert ":12:" in requests[1].run_key
    for r in requests:
        ops = r.run_config["ops"]
        assert {op["config"]["only_pending"] for op in ops.values()} == {True}
        assert set(ops) == {f"marts__{m}" for m in MARTS}


def test_schedule_refreshes_yesterday_and_today_in_one_run():
    from latam_dagster.schedules import marts_recent_days_schedule

    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 27, 10, 5, tzinfo=UTC)
    )
    request = marts_recent_days_schedule(context)
    assert (request.tags[START], request.tags[END]) == ("2026-11-26", "2026-11-27")
    assert request.tags["latam/trigger"] == "schedule"


def test_definitions_show_raw_curated_marts_lineage():
    from latam_dagster.definitions import defs

    graph = defs.resolve_asset_graph()

    def parents(key: list[str]) -> set[str]:
        return {p.to_user_string() for p in graph.get(AssetKey(key)).parent_keys}

    assert parents(["curated", "fact_flight"]) == {"raw/flight_events", "curated/dim_airport"}
    assert parents(["curated", "flight_passenger"]) == {"raw/passenger_events"}
    assert parents(["curated", "flight_passenger_load"]) == {
        "curated/fact_flight",
        "curated/flight_passenger",
    }
    assert parents(["curated", "aircraft_position_latest"]) == {"raw/position_reports"}
    for mart in MARTS:
        node = graph.get(AssetKey(["marts", mart]))
        assert node.partitions_def is not None
        assert node.backfill_policy == BackfillPolicy.single_run()
        assert parents(["marts", mart]) == {"curated/fact_flight", "curated/flight_passenger_load"}


def test_the_drain_job_updates_the_curated_tables_the_queues_feed():
    from latam_dagster.definitions import defs

    def selected(job: str) -> set[str]:
        return {
            k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.selected_asset_keys
        }

    assert selected("drain_job") == {
        "raw/flight_events",
        "raw/passenger_events",
        "raw/position_reports",
        "raw/unrouted",
        "curated/fact_flight",
        "curated/flight_passenger",
        "curated/flight_passenger_load",
        "curated/aircraft_position_latest",
    }
    assert all("marts" not in k for k in selected("pipeline_job"))
