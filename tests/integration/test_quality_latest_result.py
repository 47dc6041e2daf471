"""quality.latest_check_result: a table that follows the history (migration 0034).

It used to be a view, `SELECT DISTINCT ON (asset_key, check_name) * FROM quality.check_evaluation
ORDER BY asset_key, check_name, evaluated_at DESC, evaluation_id DESC`, which sorted the whole
history on every request. That definition is the oracle here: after every change to the history,
by the pipeline's own write path (`latam_dagster.quality.history.record`, as the pipeline's role)
or by hand, the table holds exactly what the view would have shown.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import psycopg2
import pytest

from api_service import queries
from api_service.config import READ_ONLY_ROLE
from latam_dagster import db
from latam_dagster.quality import history
from latam_dagster.quality.outcome import ExpectationOutcome, RuleOutcome, SuiteOutcome
from latam_dagster.settings import EXPORTER_ROLE, PIPELINE_ROLE, role_url
from latam_dagster.tables.rules import Rule, Scope, TableSuite
from tests.conftest import query
from tests.integration.ingest_helpers import wait_until

pytestmark = pytest.mark.integration

THE_VIEW = """SELECT DISTINCT ON (asset_key, check_name) * FROM quality.check_evaluation
              ORDER BY asset_key, check_name, evaluated_at DESC, evaluation_id DESC"""
TABLE = "SELECT * FROM quality.latest_check_result ORDER BY asset_key, check_name"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)

FLIGHTS = TableSuite(
    name="curated.fact_flight",
    asset_key=("curated", "fact_flight"),
    table="curated.fact_flight",
    key_columns=("flight_key",),
    rules=(
        Rule("flight_keys_unique", "one row per flight", ()),
        Rule("delays_plausible", "delays within a day", (), blocking=False),
    ),
)
AIRPORTS = TableSuite(
    name="curated.dim_airport",
    asset_key=("curated", "dim_airport"),
    table="curated.dim_airport",
    key_columns=("iata",),
    rules=(Rule("iata_unique", "one row per airport", ()),),
)


def outcome(suite: TableSuite, hours_ago: float, passed: bool = True) -> SuiteOutcome:
    """A validation of every rule of `suite`, `hours_ago` before now."""
    rules = [
        RuleOutcome(
            rule,
            [
                ExpectationOutcome(
                    rule=rule.name,
                    label=f"{rule.name}: expectation",
                    kind="ExpectColumnValuesToBeUnique",
                    kwargs={},
                    success=passed,
                    observed={"element_count": 10, "unexpected_count": 0 if passed else 2},
                )
            ],
        )
        for rule in suite.rules
    ]
    return SuiteOutcome(
        suite,
        Scope(),
        rules,
        run_id=f"run-{uuid.uuid4().hex[:8]}",
        evaluated_at=NOW - dt.timedelta(hours=hours_ago),
        seconds=0.5,
    )


def started(function, *args) -> tuple[threading.Thread, list[BaseException]]:
    """`function(*args)` running in a thread; what it raised is in the list once it ended."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            function(*args)
        except BaseException as exc:  # reported by the test, in its own thread
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, failed


@pytest.fixture
def pipeline(warehouse_url: str) -> str:
    """The warehouse as the pipeline's role, which records validations."""
    return role_url(warehouse_url, PIPELINE_ROLE)


def latest(url: str) -> dict[tuple[str, str], tuple]:
    return {(r[3], r[2]): r for r in query(url, TABLE)}  # (asset_key, check_name)


def assert_as_the_view(url: str) -> None:
    assert query(url, TABLE) == query(url, THE_VIEW)


def test_it_follows_every_recorded_validation(warehouse_url, pipeline):
    history.record(pipeline, outcome(FLIGHTS, hours_ago=3))
    history.record(pipeline, outcome(AIRPORTS, hours_ago=3))
    assert len(latest(warehouse_url)) == 3
    assert_as_the_view(warehouse_url)

    newer = outcome(FLIGHTS, hours_ago=1, passed=False)
    history.record(pipeline, newer)
    assert_as_the_view(warehouse_url)
    row = latest(warehouse_url)[("curated/fact_flight", "flight_keys_unique")]
    assert str(row[1]) == str(newer.validation_id) and row[8] is False  # validation, success


def test_an_older_evaluation_recorded_later_does_not_replace_a_newer_one(warehouse_url, pipeline):
    newer = outcome(FLIGHTS, hours_ago=1)
    history.record(pipeline, newer)
    history.record(pipeline, outcome(FLIGHTS, hours_ago=5, passed=False))  # a late validation
    assert_as_the_view(warehouse_url)
    assert {str(r[1]) for r in latest(warehouse_url).values()} == {str(newer.validation_id)}


def test_on_a_tie_in_time_the_later_evaluation_wins(warehouse_url, pipeline):
    first, second = outcome(FLIGHTS, hours_ago=2), outcome(FLIGHTS, hours_ago=2, passed=False)
    history.record(pipeline, first)
    history.record(pipeline, second)
    assert {str(r[1]) for r in latest(warehouse_url).values()} == {str(second.validation_id)}
    assert_as_the_view(warehouse_url)


def test_retention_leaves_the_newest_kept_evaluation_or_no_row(warehouse_url, pipeline):
    """Retention deletes expired validations (and their evaluations): a check whose latest
    evaluation expired shows the newest one kept, and none when every one expired."""
    history.record(pipeline, outcome(AIRPORTS, hours_ago=24 * 100))
    history.record(pipeline, outcome(FLIGHTS, hours_ago=24 * 95))
    kept = outcome(FLIGHTS, hours_ago=24 * 20)
    history.record(pipeline, kept)
    history.record(pipeline, outcome(FLIGHTS, hours_ago=24 * 80), keep_days=90)
    assert_as_the_view(warehouse_url)
    rows = latest(warehouse_url)
    assert set(rows) == {("curated/fact_flight", r.name) for r in FLIGHTS.rules}
    assert {str(r[1]) for r in rows.values()} == {str(kept.validation_id)}

    # the latest validation itself goes (by hand): the one before it becomes the latest
    gone = str(kept.validation_id)
    query(warehouse_url, "DELETE FROM quality.validation WHERE validation_id = %s", (gone,))
    assert_as_the_view(warehouse_url)
    assert {r[7] for r in latest(warehouse_url).values()} == {NOW - dt.timedelta(days=80)}

    history.record(pipeline, outcome(AIRPORTS, hours_ago=0), keep_days=1)  # the rest expires
    assert set(latest(warehouse_url)) == {("curated/dim_airport", "iata_unique")}
    assert_as_the_view(warehouse_url)


def test_updates_and_truncation_of_the_history(warehouse_url, pipeline):
    for hours in (1, 2, 3):
        history.record(pipeline, outcome(FLIGHTS, hours_ago=hours))
    history.record(pipeline, outcome(AIRPORTS, hours_ago=1))
    for change in (
        # the latest moves back in time, an older one forward, a check is renamed
        """UPDATE quality.check_evaluation SET evaluated_at = evaluated_at - interval '1 day'
           WHERE evaluated_at = (SELECT max(evaluated_at) FROM quality.check_evaluation
                                 WHERE check_name = 'flight_keys_unique')
             AND check_name = 'flight_keys_unique'""",
        """UPDATE quality.check_evaluation SET evaluated_at = now() + interval '1 hour'
           WHERE evaluation_id = (SELECT min(evaluation_id) FROM quality.check_evaluation
                                  WHERE check_name = 'delays_plausible')""",
        """UPDATE quality.check_evaluation SET check_name = 'iata_known'
           WHERE asset_key = 'curated/dim_airport'""",
    ):
        query(pipeline, change)
        assert_as_the_view(warehouse_url)
    query(pipeline, "TRUNCATE quality.validation, quality.check_evaluation")
    assert latest(warehouse_url) == {}


def test_two_writers_at_once_keep_the_newer_evaluation(warehouse_url, pipeline):
    """A validation recorded while another of the same checks is uncommitted waits for it (the
    row's lock) and then compares with what committed: the newer stays, whichever commits last."""
    for newer_first in (True, False):
        query(warehouse_url, "TRUNCATE quality.validation, quality.check_evaluation")
        newer, older = outcome(FLIGHTS, hours_ago=1), outcome(FLIGHTS, hours_ago=2)
        first, second = (newer, older) if newer_first else (older, newer)
        holder = psycopg2.connect(pipeline)
        try:
            with holder.cursor() as cur:  # `first` recorded, not committed
                cur.execute(
                    "INSERT INTO quality.validation (validation_id, suite_name, asset_key, "
                    "evaluated_at, success, checks_evaluated, checks_failed, duration_ms) "
                    "VALUES (%s, 'curated.fact_flight', 'curated/fact_flight', %s, true, 2, 0, 1)",
                    (str(first.validation_id), first.evaluated_at),
                )
                cur.execute(
                    """INSERT INTO quality.check_evaluation (validation_id, check_name,
                           asset_key, table_name, evaluated_at, success, severity, blocking,
                           description, expectations_evaluated, expectations_failed,
                           unexpected_count, statistics)
                       SELECT %s, name, 'curated/fact_flight', 'curated.fact_flight', %s, true,
                              'ERROR', true, 'd', 1, 0, 0, '{}'
                       FROM unnest(ARRAY['flight_keys_unique', 'delays_plausible']) AS name""",
                    (str(first.validation_id), first.evaluated_at),
                )
            writer, failed = started(history.record, pipeline, second)
            wait_until(
                lambda: (
                    query(
                        warehouse_url,
                        """SELECT count(*) FROM pg_locks AS l JOIN pg_stat_activity AS a USING (pid)
                       WHERE NOT l.granted AND a.datname = current_database()""",
                    )[0][0]
                    > 0
                ),
                what="the second writer waiting for the first",
            )
            holder.commit()
            writer.join(timeout=30)
            assert not writer.is_alive() and not failed, failed
        finally:
            holder.close()
        assert {str(r[1]) for r in latest(warehouse_url).values()} == {str(newer.validation_id)}
        assert_as_the_view(warehouse_url)


def test_the_endpoint_query_reads_the_table_by_its_key(warehouse_url, pipeline):
    """What /api/v1/quality runs, planned as the API's role: an index scan of the table, no sort
    and no read of the history."""
    for hours in range(48):
        history.record(pipeline, outcome(FLIGHTS, hours_ago=hours))
    conn = psycopg2.connect(role_url(warehouse_url, READ_ONLY_ROLE))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for args in ({}, {"asset": "curated/fact_flight"}):
                for after in (None, ("curated/fact_flight", "delays_plausible")):
                    sql, params = queries.quality_latest(args, after, 100)
                    cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
                    plan = cur.fetchone()[0][0]["Plan"]
                    nodes, todo = [], [plan]
                    while todo:
                        node = todo.pop()
                        nodes.append(node)
                        todo.extend(node.get("Plans", []))
                    assert {n["Node Type"] for n in nodes} == {"Limit", "Index Scan"}, plan
                    assert {n.get("Index Name") for n in nodes} - {None} == {
                        "latest_check_result_pkey"
                    }
    finally:
        conn.close()


def test_the_migration_copies_the_history_and_keeps_the_views_grants(empty_db_url):
    """A warehouse with history from before 0034: the table starts as the view was, readable by
    exactly the roles that read the view, writable by the pipeline as the view was."""
    every = db.load_migrations()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(db, "load_migrations", lambda: [m for m in every if m.version < 34])
        db.migrate(empty_db_url)
    for hours in (5, 1, 3):
        history.record(empty_db_url, outcome(FLIGHTS, hours_ago=hours))
    history.record(empty_db_url, outcome(AIRPORTS, hours_ago=2))
    before = query(empty_db_url, "SELECT * FROM quality.latest_check_result ORDER BY 4, 3")
    privileges = """SELECT r.rolname, p.privilege_type FROM pg_roles AS r
                    CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'])
                        AS p (privilege_type)
                    WHERE r.rolname = ANY(%s)
                      AND has_table_privilege(r.rolname, 'quality.latest_check_result',
                                              p.privilege_type)
                    ORDER BY 1, 2"""
    roles = ([READ_ONLY_ROLE, EXPORTER_ROLE, PIPELINE_ROLE],)
    granted = query(empty_db_url, privileges, roles)
    assert (READ_ONLY_ROLE, "SELECT") in granted and (EXPORTER_ROLE, "SELECT") in granted

    db.migrate(empty_db_url)
    kind = "SELECT relkind FROM pg_class WHERE oid = 'quality.latest_check_result'::regclass"
    assert query(empty_db_url, kind) == [("r",)]
    assert query(empty_db_url, TABLE) == before
    assert query(empty_db_url, privileges, roles) == granted
