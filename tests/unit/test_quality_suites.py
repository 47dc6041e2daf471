"""The suites and the Dagster checks built from them, without any service."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest

from latam_dagster.assets.curated import curated_assets
from latam_dagster.quality.gx_checks import asset_checks, run_scope
from latam_dagster.tables import REGISTRY
from latam_dagster.tables.rules import Expect, Scope, gxe
from latam_dagster.transform.curated import TABLES

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
    for suite in REGISTRY.suites():
        for rule in suite.rules:
            for expect in rule.expectations:
                cls = classes[expect.kind]
                cls(**expect.rendered(Scope(date(2026, 11, 27)).predicate(suite.date_column)))


def test_checks_cover_every_rule_with_the_promised_severity():
    gx_specs = {
        (s.asset_key.to_user_string(), s.name): s
        for checks in asset_checks
        for s in checks.check_specs
    }
    audit_specs = {
        (s.asset_key.to_user_string(), s.name): s for a in curated_assets for s in a.check_specs
    }
    audited = {t.audit.suite.name for t in TABLES.values() if t.audit}
    rules = {(s.asset_key_str, r.name): r for s in REGISTRY.suites() for r in s.rules}
    expected_gx = {k for s in REGISTRY.suites() if s.name not in audited for k in _keys(s)}
    expected_gx |= {(s.asset_key_str, "gx_suite") for s in REGISTRY.suites() if s.name in audited}
    expected_audit = {k for s in REGISTRY.suites() if s.name in audited for k in _keys(s)}
    expected_audit |= {
        (s.asset_key_str, "reject_share") for s in REGISTRY.suites() if s.name in audited
    }
    assert set(gx_specs) == expected_gx
    assert set(audit_specs) == expected_audit
    for key, spec in gx_specs.items():
        # GX on a whole table: a failing blocking rule (or suite) stops what is downstream
        assert spec.blocking == (rules[key].blocking if key in rules else True)
        assert spec.description
    for key, spec in audit_specs.items():
        # the audit: only table rules and the reject share stop the batch; row rules hold rows
        rule = rules.get(key)
        assert spec.blocking == (rule is None or (rule.blocking and rule.level == "table"))
        assert spec.description
    for asset, names in CRITICAL.items():
        for name in names:
            assert rules[(asset, name)].blocking, (asset, name)
    for asset in ("curated/fact_flight", "curated/flight_passenger_load"):
        keys = {n for a, n in rules if a == asset and n.endswith("_keys_unique")}
        assert keys and all(rules[(asset, n)].level == "table" for n in keys)
    quarantine = [k for k in gx_specs if k[1] == "quarantine_rate"]
    assert len(quarantine) == 3 and not any(gx_specs[k].blocking for k in quarantine)


def _keys(suite) -> set[tuple[str, str]]:
    return {(suite.asset_key_str, r.name) for r in suite.rules}


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
        "import sys; import latam_dagster.quality.gx_checks, latam_dagster.quality.gx_resource; "
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
    assert REGISTRY.suite("curated.fact_flight").rule("flight_keys_unique").blocking
    with pytest.raises(KeyError):
        REGISTRY.suite("curated.fact_flight").rule("nope")


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
    assert run_scope(tags, REGISTRY.suite("marts.route_daily_performance")).label == label
    assert (
        run_scope(tags, REGISTRY.suite("curated.fact_flight")).label is None
    )  # unpartitioned tables: whole table


def test_scope_round_trip_and_predicate():
    scope = Scope.parse("2026-11-01...2026-11-27")
    assert scope == Scope.parse("2026-11-01..2026-11-27")
    assert Scope.parse(scope.label) == scope
    assert scope.predicate("flight_date") == (
        "flight_date BETWEEN DATE '2026-11-01' AND DATE '2026-11-27'"
    )
    assert Scope().predicate("flight_date") == "TRUE"
    assert Scope.parse(None).is_whole_table
