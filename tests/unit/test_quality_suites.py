"""The suites and the Dagster checks built from them, without any service."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest

from latam_dagster.checks.asset_checks import asset_checks, run_scope
from latam_dagster.checks.spec import Expect, Scope, gxe
from latam_dagster.checks.suites import all_suites, fact_flight, route_daily_performance

CRITICAL = {
    # the rules the platform promises are blocking, by table
    "curated/fact_flight": {
        "flight_keys_unique",
        "flight_codes_valid",
        "flight_airports_known",
        "flight_schedule_ordered",
        "flight_delays_plausible",
        "flight_seat_capacity_valid",
    },
    "curated/aircraft_position_latest": {"position_keys_unique", "position_coordinates_in_range"},
    "curated/flight_passenger_load": {
        "load_keys_unique",
        "load_counts_valid",
        "load_factor_plausible",
    },
    "marts/route_daily_performance": {"route_keys_unique", "route_counts_match_fact_flight"},
    "marts/airport_daily_traffic": {
        "airport_traffic_keys_unique",
        "airport_traffic_counts_match_fact_flight",
    },
}


def test_every_expectation_is_a_valid_gx_expectation():
    import great_expectations.expectations as gx_expectations

    from latam_dagster.quality.gx_expectations import CUSTOM_EXPECTATIONS

    classes = {**vars(gx_expectations), **CUSTOM_EXPECTATIONS}
    for suite in all_suites():
        for rule in suite.rules:
            for expect in rule.expectations:
                cls = classes[expect.kind]
                cls(**expect.rendered(Scope(date(2026, 11, 27)).predicate(suite.date_column)))


def test_checks_cover_every_rule_with_the_promised_severity():
    specs = {
        (s.asset_key.to_user_string(), s.name): s
        for checks in asset_checks
        for s in checks.check_specs
    }
    expected = {(s.asset_key_str, r.name): r for s in all_suites() for r in s.rules}
    assert set(specs) == set(expected)
    for key, spec in specs.items():
        assert spec.blocking == expected[key].blocking
        assert spec.description
    blocking = {}
    for (asset, name), spec in specs.items():
        if spec.blocking:
            blocking.setdefault(asset, set()).add(name)
    for asset, names in CRITICAL.items():
        assert names <= blocking[asset], asset
    quarantine = [k for k in specs if k[1] == "quarantine_rate"]
    assert len(quarantine) == 3 and not any(specs[k].blocking for k in quarantine)


def test_checks_wait_for_the_tables_they_compare_with():
    deps = {
        next(iter(checks.check_specs)).asset_key.to_user_string(): {
            d.asset_key.to_user_string() for s in checks.check_specs for d in s.additional_deps
        }
        for checks in asset_checks
    }
    assert deps["curated/fact_flight"] == {"curated/dim_airport"}
    assert deps["marts/route_daily_performance"] == {
        "curated/fact_flight",
        "curated/flight_passenger_load",
    }


def test_definitions_load_without_importing_great_expectations():
    code = (
        "import sys; import latam_dagster.checks.asset_checks, latam_dagster.resources.gx; "
        "print('great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_gxe_builds_plain_specs():
    spec = gxe.ExpectColumnValuesToBeBetween(column="seat_capacity", min_value=0)
    assert spec == Expect(
        "ExpectColumnValuesToBeBetween", {"column": "seat_capacity", "min_value": 0}
    )
    assert spec.label() == "ExpectColumnValuesToBeBetween(seat_capacity)"
    with pytest.raises(AttributeError):
        gxe.not_an_expectation  # noqa: B018


def test_suite_lookup_and_rule_lookup():
    assert fact_flight.rule("flight_keys_unique").blocking
    with pytest.raises(KeyError):
        fact_flight.rule("nope")


@pytest.mark.parametrize(
    ("tags", "label"),
    [
        ({"dagster/partition": "2026-11-27"}, "2026-11-27"),
        (
            {
                "dagster/asset_partition_range_start": "2026-11-01",
                "dagster/asset_partition_range_end": "2026-11-27",
            },
            "2026-11-01...2026-11-27",
        ),
        ({}, None),
        ({"dagster/partition": "not-a-date"}, None),
    ],
)
def test_mart_checks_follow_the_run_partitions(tags, label):
    assert run_scope(tags, route_daily_performance).label == label
    assert run_scope(tags, fact_flight).label is None  # unpartitioned tables: whole table


def test_scope_round_trip_and_predicate():
    scope = Scope.parse("2026-11-01...2026-11-27")
    assert scope == Scope.parse("2026-11-01..2026-11-27")
    assert Scope.parse(scope.label) == scope
    assert scope.predicate("flight_date") == (
        "flight_date BETWEEN DATE '2026-11-01' AND DATE '2026-11-27'"
    )
    assert Scope().predicate("flight_date") == "TRUE"
    assert Scope.parse(None).is_whole_table
