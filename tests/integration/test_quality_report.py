"""History, Data Docs and the `latam quality` commands on a real warehouse.

Great Expectations validates the whole published tables. For a curated table published by the
audit, its Dagster check is one `gx_suite` per table, but the history keeps one row per rule, under
the rule's name: that is what the report and `latam quality validate` show.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from latam_dagster.cli.quality import quality
from latam_dagster.quality import history
from latam_dagster.tables import REGISTRY
from tests.conftest import query
from tests.integration.test_quality_checks import gx_resource, load_clean

pytestmark = pytest.mark.integration


@pytest.fixture
def quality_env(report_env):
    """A loaded warehouse, and the environment the CLI reads, pointing at it."""
    load_clean(report_env)
    return report_env


def _break_seat_capacity(url: str) -> str:
    """A bad value in the published table, written past the audit (a manual edit): only the
    validation of the whole table finds it, the audit of the micro-batches never sees it."""
    (key,) = query(url, "SELECT flight_key FROM curated.fact_flight ORDER BY 1 LIMIT 1")[0]
    query(url, "UPDATE curated.fact_flight SET seat_capacity = -1 WHERE flight_key = %s", (key,))
    assert query(url, "SELECT count(*) FROM quality.rejects") == [(0,)]
    return key


def test_report_lists_latest_results_failures_first(quality_env, tmp_path):
    url = quality_env
    gx = gx_resource(url, tmp_path)
    gx.validate(REGISTRY.suite("curated.fact_flight"), run_id="run-clean")
    key = _break_seat_capacity(url)
    # the whole suite, as the `gx_suite` check of curated/fact_flight validates it
    gx.validate(REGISTRY.suite("curated.fact_flight"), run_id="run-bad")

    runner = CliRunner()
    text = runner.invoke(quality, ["report"])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert "1 blocking failure(s)" in lines[0]
    table = [line for line in lines if "curated/fact_flight" in line]
    assert table[0].startswith("FAIL") and "flight_seat_capacity_valid" in table[0]
    assert f"flight_key={key}, seat_capacity=-1" in text.output
    assert "seat_capacity IS NOT NULL AND NOT (seat_capacity >= 0" in text.output

    data = json.loads(runner.invoke(quality, ["report", "--json"]).output)
    assert data["summary"] == {
        "checks": 7,
        "passed": 6,
        "failed": 1,
        "blocking_failed": 1,
        "warnings": 0,
    }
    failing = data["checks"][0]
    assert (failing["check"], failing["run_id"], failing["success"]) == (
        "flight_seat_capacity_valid",
        "run-bad",
        False,
    )
    assert failing["failing_sample"][0]["flight_key"] == key
    assert data["data_docs_index"].endswith("index.html")
    assert runner.invoke(quality, ["report", "--strict"]).exit_code == 1

    # the history keeps both evaluations of the check, newest first
    rows = history.check_history(url, "flight_seat_capacity_valid", limit=10)
    assert [(r["run_id"], r["success"]) for r in rows] == [("run-bad", False), ("run-clean", True)]


def test_validate_command_records_results_and_builds_data_docs(quality_env, tmp_path):
    _break_seat_capacity(quality_env)
    result = CliRunner().invoke(quality, ["validate", "--suite", "curated.fact_flight"])
    assert result.exit_code == 1  # a blocking check failed
    assert "FAIL  curated/fact_flight  flight_seat_capacity_valid  1" in result.output
    (pages,) = query(quality_env, "SELECT count(*) FROM quality.validation")[0]
    assert pages == 1
    assert (tmp_path / "data_docs" / "index.html").exists()
    unknown = CliRunner().invoke(quality, ["validate", "--suite", "curated.nope"])
    assert unknown.exit_code == 2 and "unknown suite" in unknown.output


def test_data_docs_keep_the_newest_results_per_suite(warehouse_url, tmp_path):
    load_clean(warehouse_url)
    gx = gx_resource(warehouse_url, tmp_path, docs_retention=2)
    outcomes = [
        gx.validate(REGISTRY.suite("curated.dim_airport"), run_id=f"run-{i}") for i in range(4)
    ]
    docs = tmp_path / "data_docs"
    kept = [o.data_docs_page for o in outcomes[-2:]]
    dropped = [o.data_docs_page for o in outcomes[:2]]
    assert all((docs / p).exists() for p in kept)
    assert not any((docs / p).exists() for p in dropped)
    stored = list((tmp_path / "quality" / "gx_validations").rglob("*.json"))
    assert len(stored) == 2
    index = (docs / "index.html").read_text()
    assert "run-3" in index and "run-0" not in index


def test_report_without_history_says_so(quality_env):
    result = CliRunner().invoke(quality, ["report"])
    assert result.exit_code == 0
    assert "No validation recorded yet" in result.output


def test_history_older_than_the_retention_is_dropped(warehouse_url, tmp_path):
    load_clean(warehouse_url)
    gx = gx_resource(warehouse_url, tmp_path, history_days=30, build_data_docs=False)
    gx.validate(REGISTRY.suite("curated.dim_airport"), run_id="old")
    query(warehouse_url, "UPDATE quality.validation SET evaluated_at = now() - interval '31 days'")
    gx.validate(REGISTRY.suite("curated.dim_airport"), run_id="new")
    runs = query(warehouse_url, "SELECT DISTINCT run_id FROM quality.check_evaluation")
    assert runs == [("new",)]
    assert query(warehouse_url, "SELECT run_id FROM quality.validation") == [("new",)]
