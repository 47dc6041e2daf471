"""`latam quality rejects`: held-back rows as a table or JSON, filters, and refused input.

Rows are written to `quality.rejects` the way the audit writes them, or by the audit itself from
raw events, in a warehouse of the test's own.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
from click.testing import CliRunner

from latam_dagster.cli import main
from latam_dagster.quality.rejects import (
    UnknownTable,
    audited_tables,
    list_rejects,
    reject_counts,
    resolve_table,
)
from latam_dagster.transform.airports import load_dim_airport
from latam_dagster.transform.curated import update_all
from tests.conftest import LATAM, RUN_ID, _admin_exec, _db_url, drop_database, query
from tests.integration.ingest_helpers import make_flight_event
from tests.transform_helpers import write_raw

pytestmark = pytest.mark.integration

FACT = "curated.fact_flight"
LOAD = "curated.flight_passenger_load"


def reject(url: str, table: str, key: str, rule: str, observed: dict, minutes_ago: int) -> None:
    """One held-back row, last seen `minutes_ago` minutes ago (first seen an hour before)."""
    query(
        url,
        """INSERT INTO quality.rejects
               (table_name, row_key, rule, flight_date, observed, run_id, first_seen, last_seen)
           VALUES (%s, %s, %s, DATE '2026-11-27', %s, 'run-1',
                   now() - make_interval(mins => %s + 60), now() - make_interval(mins => %s))""",
        (table, key, rule, json.dumps(observed), minutes_ago, minutes_ago),
    )


@pytest.fixture
def held(warehouse_url: str) -> str:
    reject(
        warehouse_url,
        FACT,
        "LA800-2026-11-27-SCL",
        "flight_airports_known",
        {"origin": "SCL", "destination": "QQQ"},
        5,
    )
    reject(
        warehouse_url,
        FACT,
        "LA801-2026-11-27-LIM",
        "flight_schedule_ordered",
        {"scheduled_arrival": "2026-11-27T10:00:00+00:00"},
        1,
    )
    reject(
        warehouse_url,
        LOAD,
        "LA802-2026-11-27-SCL",
        "load_factor_plausible",
        {"load_factor": 3.5, "seat_capacity": 12},
        30,
    )
    return warehouse_url


def rejects(url: str, *args: str):
    """`latam quality rejects ARGS` in process, against `url`."""
    env = {"LATAM_WAREHOUSE_URL": url}
    return CliRunner().invoke(main, ["quality", "rejects", *args], env=env, catch_exceptions=False)


def test_no_rows_says_so_and_json_is_an_empty_list(warehouse_url):
    out = rejects(warehouse_url)
    assert out.exit_code == 0
    assert out.output.strip() == "no rows held back"
    out = rejects(warehouse_url, "--json")
    assert out.exit_code == 0 and json.loads(out.output) == []
    out = rejects(warehouse_url, "--table", "fact_flight", "--rule", "flight_airports_known")
    assert out.exit_code == 0 and out.output.strip() == "no rows held back"


def test_text_lists_newest_last_seen_first_in_aligned_columns(held):
    out = rejects(held)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split() == [
        "TABLE",
        "KEY",
        "RULE",
        "FLIGHT_DATE",
        "FIRST_SEEN",
        "LAST_SEEN",
        "OBSERVED",
    ]
    keys = [line.split()[1] for line in lines[1:4]]
    assert keys == ["LA801-2026-11-27-LIM", "LA800-2026-11-27-SCL", "LA802-2026-11-27-SCL"]
    # every column starts where its header does
    for header in ("KEY", "RULE", "FLIGHT_DATE", "OBSERVED"):
        at = lines[0].index(header)
        assert all(line[at - 2 : at] == "  " and line[at] != " " for line in lines[1:4]), header
    assert '{"origin":"SCL","destination":"QQQ"}' in lines[2]
    assert "2026-11-27" in lines[2]
    assert lines[-1] == "3 row(s) held back"


def test_json_objects_carry_table_key_rule_and_times(held):
    out = rejects(held, "--json")
    assert out.exit_code == 0
    rows = json.loads(out.output)
    assert [(r["table"], r["key"], r["rule"]) for r in rows] == [
        (FACT, "LA801-2026-11-27-LIM", "flight_schedule_ordered"),
        (FACT, "LA800-2026-11-27-SCL", "flight_airports_known"),
        (LOAD, "LA802-2026-11-27-SCL", "load_factor_plausible"),
    ]
    first = rows[1]
    assert first["observed"] == {"origin": "SCL", "destination": "QQQ"}
    assert first["flight_date"] == "2026-11-27" and first["run_id"] == "run-1"
    assert first["first_seen"] < first["last_seen"]  # ISO 8601, same offset: ordered as text


def test_filters_by_table_either_name_and_by_rule(held):
    for name in ("fact_flight", FACT):
        rows = json.loads(rejects(held, "--table", name, "--json").output)
        assert {r["table"] for r in rows} == {FACT} and len(rows) == 2
    out = rejects(held, "--rule", "load_factor_plausible", "--json")
    assert [r["key"] for r in json.loads(out.output)] == ["LA802-2026-11-27-SCL"]
    out = rejects(held, "--table", "flight_passenger_load", "--rule", "load_factor_plausible")
    assert out.output.splitlines()[-1] == "1 row(s) held back"


def test_limit_keeps_the_newest_and_says_how_many_there_are(held):
    out = rejects(held, "--limit", "1")
    assert out.exit_code == 0
    assert "LA801-2026-11-27-LIM" in out.output and "LA800" not in out.output
    assert out.output.splitlines()[-1] == (
        "1 of 3 row(s) held back (newest first; raise --limit to see more)"
    )
    assert len(json.loads(rejects(held, "--limit", "2", "--json").output)) == 2


@pytest.mark.parametrize("bad", ["0", "-3", "ten", "100001"])
def test_bad_limit_is_refused_with_status_2(warehouse_url, bad):
    out = CliRunner().invoke(
        main, ["quality", "rejects", "--limit", bad], env={"LATAM_WAREHOUSE_URL": warehouse_url}
    )
    assert out.exit_code == 2
    assert "Invalid value for '--limit'" in out.output


def test_unknown_table_and_rule_are_refused_naming_the_known_ones(held):
    out = CliRunner().invoke(
        main, ["quality", "rejects", "--table", "fact_flights"], env={"LATAM_WAREHOUSE_URL": held}
    )
    assert out.exit_code == 2
    assert "'fact_flights' is not an audited table" in out.output
    assert FACT in out.output and LOAD in out.output
    for table in ("raw.flight_events", "curated.dim_airport", "marts.route_daily_performance"):
        out = CliRunner().invoke(
            main, ["quality", "rejects", "--table", table], env={"LATAM_WAREHOUSE_URL": held}
        )
        assert out.exit_code == 2, table
    out = CliRunner().invoke(
        main,
        ["quality", "rejects", "--table", "fact_flight", "--rule", "load_factor_plausible"],
        env={"LATAM_WAREHOUSE_URL": held},
    )
    assert out.exit_code == 2
    assert "'load_factor_plausible' holds back no rows of curated.fact_flight" in out.output
    assert "flight_airports_known" in out.output


def test_a_rule_no_longer_declared_is_still_listed_while_rows_carry_it(held):
    reject(held, FACT, "LA803-2026-11-27-SCL", "flight_retired_rule", {"x": 1}, 2)
    out = rejects(held, "--rule", "flight_retired_rule", "--json")
    assert out.exit_code == 0
    assert [r["key"] for r in json.loads(out.output)] == ["LA803-2026-11-27-SCL"]


def test_text_a_source_controls_is_escaped(warehouse_url):
    reject(warehouse_url, FACT, "LA9-2026-11-27-\x1b[2JSCL", "flight_codes_valid", {"o": "\x07"}, 1)
    out = rejects(warehouse_url)
    assert "\x1b" not in out.output and "\x07" not in out.output
    assert "LA9-2026-11-27-\\x1b[2JSCL" in out.output


def test_a_warehouse_without_the_quality_tables_says_to_run_init():
    name = f"latam_bare_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    _admin_exec(f'CREATE DATABASE "{name}"')
    try:
        out = CliRunner().invoke(
            main, ["quality", "rejects"], env={"LATAM_WAREHOUSE_URL": _db_url(name)}
        )
        assert out.exit_code == 2
        assert "run `latam init` first" in out.output
    finally:
        drop_database(name)


def test_the_audit_output_lists_and_counts_through_the_module(warehouse_url):
    """Real rejects: raw events audited by the curated update, then read back."""
    load_dim_airport(warehouse_url)
    good = make_flight_event()
    unknown = make_flight_event(payload={"flight_number": 801, "destination": "QQQ"})
    early = make_flight_event(
        payload={"flight_number": 802, "scheduled_arrival": "2026-11-27T09:00:00-05:00"}
    )
    write_raw(warehouse_url, [good, unknown, early])
    update_all(warehouse_url)

    rows = list_rejects(warehouse_url)
    assert {(r["table"], r["key"], r["rule"]) for r in rows} == {
        (FACT, "LA801-2026-11-27-SCL", "flight_airports_known"),
        (FACT, "LA802-2026-11-27-SCL", "flight_schedule_ordered"),
    }
    known = next(r for r in rows if r["rule"] == "flight_airports_known")
    assert known["observed"] == {"origin": "SCL", "destination": "QQQ"}
    assert str(known["flight_date"]) == "2026-11-27" and known["first_seen"] is not None
    counts = reject_counts(warehouse_url)
    assert [(c["table"], c["rule"], c["rows"]) for c in counts] == [
        (FACT, "flight_airports_known", 1),
        (FACT, "flight_schedule_ordered", 1),
    ]
    assert reject_counts(warehouse_url, LOAD) == []
    assert list_rejects(warehouse_url, FACT, "flight_schedule_ordered", 5)[0]["key"] == (
        "LA802-2026-11-27-SCL"
    )


def test_audited_tables_and_names():
    tables = audited_tables()
    assert set(tables) == {FACT, LOAD, "curated.aircraft_position_latest"}
    assert "flight_airports_known" in tables[FACT]
    assert "flight_route_plausible" not in tables[FACT]  # it warns, it holds nothing back
    assert resolve_table("fact_flight") == resolve_table(FACT) == FACT
    with pytest.raises(UnknownTable):
        resolve_table("curated.flight_passenger")


def test_the_installed_command_exits_2_on_an_unknown_table(warehouse_url):
    proc = subprocess.run(
        [LATAM, "quality", "rejects", "--table", "nope", "--json"],
        env={"PATH": "/usr/bin:/bin", "LATAM_WAREHOUSE_URL": warehouse_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "'nope' is not an audited table" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
