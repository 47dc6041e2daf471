"""Failing-row SQL, rule statistics and the text report, from plain data."""

from __future__ import annotations

from datetime import UTC, datetime

from latam_dagster.cli.quality_report import render_text
from latam_dagster.quality.failing_rows import Relation, failing_rows_sql
from latam_dagster.quality.outcome import ExpectationOutcome, RuleOutcome, jsonable
from latam_dagster.tables.rules import Rule, gxe

KEYS = ("flight_key",)
TABLE = Relation("curated.fact_flight")


def sql(expect, rel=TABLE, keys=KEYS) -> str:
    return " ".join(failing_rows_sql(expect, rel, keys, "TRUE").split())


def test_failing_rows_sql_per_expectation_kind():
    assert sql(gxe.ExpectColumnValuesToBeBetween(column="seat_capacity", min_value=0)) == (
        "SELECT flight_key, seat_capacity FROM curated.fact_flight "
        "WHERE seat_capacity IS NOT NULL AND NOT (seat_capacity >= 0) ORDER BY flight_key"
    )
    strict = gxe.ExpectColumnValuesToBeBetween(
        column="heading_deg", min_value=0, max_value=360, strict_max=True
    )
    assert "NOT (heading_deg >= 0 AND heading_deg < 360)" in sql(strict)
    pair = gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="a", column_B="b")
    assert "a IS NOT NULL AND b IS NOT NULL AND NOT (a > b)" in sql(pair)
    in_set = gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["ok", "it's"])
    assert "status NOT IN ('ok', 'it''s')" in sql(in_set)
    ref = gxe.ExpectColumnValuesToBeInReferenceTable(
        column="origin", reference_table="curated.dim_airport", reference_column="iata"
    )
    assert "origin NOT IN (SELECT iata FROM curated.dim_airport)" in sql(ref)
    compound = gxe.ExpectCompoundColumnsToBeUnique(column_list=["carrier", "flight_number"])
    assert sql(compound) == (
        "SELECT flight_key, carrier, flight_number FROM curated.fact_flight "
        "WHERE (carrier, flight_number) IN (SELECT carrier, flight_number FROM "
        "curated.fact_flight GROUP BY carrier, flight_number HAVING count(*) > 1) "
        "ORDER BY flight_key"
    )
    assert failing_rows_sql(gxe.ExpectTableRowCountToBeBetween(), TABLE, KEYS, "TRUE") is None


def test_failing_rows_sql_stays_within_the_partition():
    rel = Relation("marts.m", "flight_date BETWEEN DATE '2026-11-27' AND DATE '2026-11-27'")
    unique = gxe.ExpectColumnValuesToBeUnique(column="airport")
    text = sql(unique, rel, ("flight_date", "airport"))
    assert text.count("flight_date BETWEEN") == 2  # outer rows and the duplicate search


def _outcome(label, success, count, sample=(), query=None, percent=None):
    return ExpectationOutcome(
        rule="r",
        label=label,
        kind="ExpectColumnValuesToBeBetween",
        kwargs={},
        success=success,
        observed={"element_count": 10, "unexpected_count": count, "unexpected_percent": percent},
        sample=list(sample),
        unexpected_index_query=query,
    )


def test_rule_statistics_sample_and_sql():
    rule = RuleOutcome(
        Rule("r", "d", (gxe.ExpectColumnValuesToNotBeNull(column="x"),)),
        [
            _outcome("A(x)", True, 0, query="SELECT 1"),
            _outcome("B(y)", False, 2, [{"k": 1}, {"k": 2}], "SELECT 2;", 20.0),
        ],
    )
    assert not rule.success and rule.unexpected_count == 2 and rule.unexpected_percent == 20.0
    assert rule.sample(1) == [{"expectation": "B(y)", "k": 1}]
    assert rule.failing_row_sql() == "-- B(y)\nSELECT 2;"
    stats = rule.statistics()
    assert (stats["expectations_evaluated"], stats["expectations_failed"]) == (2, 1)


def test_jsonable_values():
    from decimal import Decimal

    now = datetime(2026, 11, 27, tzinfo=UTC)
    assert jsonable({"a": Decimal("1.5"), "b": now, "c": (1, None)}) == {
        "a": 1.5,
        "b": "2026-11-27T00:00:00+00:00",
        "c": [1, None],
    }


def test_text_report_puts_failures_first_with_their_rows():
    check = {
        "check": "flight_seat_capacity_valid",
        "asset_key": "curated/fact_flight",
        "partition": None,
        "success": False,
        "blocking": True,
        "description": "Seat capacity between 0 and 1000.",
        "evaluated_at": "2026-11-27T22:00:00+00:00",
        "unexpected_count": 1,
        "unexpected_percent": 0.5,
        "failing_sample": [{"flight_key": "LA800-2026-11-27-SCL", "seat_capacity": -1}],
        "unexpected_index_query": "SELECT flight_key FROM curated.fact_flight",
        "data_docs_page": "validations/x.html",
        "expectations": [{"expectation": "Between(seat_capacity)", "unexpected_count": 1}],
    }
    ok = {**check, "check": "flight_keys_unique", "success": True, "unexpected_count": 0}
    report = {
        "generated_at": "2026-11-27T22:01:00+00:00",
        "summary": {"checks": 2, "passed": 1, "failed": 1, "blocking_failed": 1, "warnings": 0},
        "checks": [check, ok],
    }
    text = render_text(report)
    lines = text.splitlines()
    assert lines[0].startswith("Data quality: 2 check(s), 1 passed, 1 blocking failure(s)")
    assert lines[3].startswith("FAIL") and "1 (0.50%)" in lines[3]
    assert lines[4].startswith("ok")
    assert "row: flight_key=LA800-2026-11-27-SCL, seat_capacity=-1" in text
    assert "SELECT flight_key FROM curated.fact_flight" in text
