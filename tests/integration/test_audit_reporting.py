"""What the audit holds back is visible outside Dagster: exporter gauges per table and rule, the
share over the last 15 min next to its threshold, refused batches, and `latam quality report`.

Real events go through the real curated SQL and audit; two flights come from an airport that
curated.dim_airport does not know, so `flight_airports_known` holds them back.
"""

from __future__ import annotations

import copy
import uuid

import pytest
from click.testing import CliRunner

from latam_dagster.cli.quality import quality
from latam_dagster.cli.quality_report import build_report
from latam_dagster.quality.audit import AuditBlocked
from latam_dagster.simulator.generator import generate
from latam_dagster.transform.airports import load_dim_airport
from latam_dagster.transform.curated import update_all, update_table
from tests.conftest import query
from tests.integration.observability_support import by_label, warehouse_samples
from tests.transform_helpers import write_raw

pytestmark = pytest.mark.integration
FACT = "curated.fact_flight"


def _events_with_unknown_airports(count: int) -> tuple[list[dict], list[str]]:
    """Simulated events plus `count` flights departing from QQQ, an airport nobody knows."""
    events = [m.event for m in generate(seed=5, events=1200) if m.valid and m.event]
    template = next(e for e in events if e["event_type"] == "flight_status")
    keys = []
    for number in range(count):
        event = copy.deepcopy(template)
        event["message_id"] = str(uuid.uuid4())
        event["payload"]["origin"] = "QQQ"
        event["payload"]["flight_number"] = 9100 + number
        p = event["payload"]
        keys.append(f"{p['carrier']}{p['flight_number']}-{p['flight_date']}-QQQ")
        events.append(event)
    return events, keys


def test_held_back_rows_show_in_the_gauges_and_the_report(report_env):
    url = report_env
    load_dim_airport(url)
    events, keys = _events_with_unknown_airports(2)
    write_raw(url, events)
    update_all(url)

    held = query(url, "SELECT row_key, rule FROM quality.rejects WHERE table_name = %s", (FACT,))
    assert sorted(held) == sorted((k, "flight_airports_known") for k in keys)
    ((audited, held_rows),) = query(
        url,
        "SELECT audited_rows, held_rows FROM quality.audit_batch WHERE table_name = %s",
        (FACT,),
    )
    assert held_rows == 2 and audited > 2

    found = warehouse_samples(url)
    rules = {
        (dict(k)["table"], dict(k)["rule"]): v
        for (name, k), v in found.items()
        if name == "latam_quality_rows_held_back"
    }
    assert rules == {(FACT, "flight_airports_known"): 2}
    share = by_label(found, "latam_quality_audit_reject_pct", "table")
    assert share[FACT] == pytest.approx(100.0 * 2 / audited)
    assert share["curated.flight_passenger_load"] == 0
    assert by_label(found, "latam_quality_audit_blocked_batches", "table")[FACT] == 0
    assert found[("latam_quality_reject_max_pct", frozenset())] == 1.0

    report = build_report(url)
    assert report["held_back"]["rows"] == 2
    assert [(r["table"], r["rule"], r["rows"]) for r in report["held_back"]["by_rule"]] == [
        (FACT, "flight_airports_known", 2)
    ]
    text = CliRunner().invoke(quality, ["report"]).output
    assert "Held back by the audit: 2 row(s)" in text
    assert f"{FACT}  flight_airports_known  2" in text


def test_a_refused_batch_is_counted_and_reported(report_env, monkeypatch):
    url = report_env
    load_dim_airport(url)
    events, _keys = _events_with_unknown_airports(12)
    write_raw(url, events)
    update_table(url, "flight_passenger")
    monkeypatch.setenv("LATAM_QUALITY_REJECT_MAX_PCT", "0.5")
    with pytest.raises(AuditBlocked, match="LATAM_QUALITY_REJECT_MAX_PCT=0.5%"):
        update_table(url, "fact_flight")
    # rolled back: nothing published, nothing held, only the trace of the refusal
    assert query(url, f"SELECT count(*) FROM {FACT}")[0][0] == 0
    assert query(url, "SELECT count(*) FROM quality.rejects")[0][0] == 0

    found = warehouse_samples(url)
    assert by_label(found, "latam_quality_audit_blocked_batches", "table")[FACT] == 1
    assert found[("latam_quality_reject_max_pct", frozenset())] == 0.5
    batches = {b["table"]: b for b in build_report(url)["held_back"]["batches_24h"]}
    assert batches[FACT]["blocked"] == 1
    assert "LATAM_QUALITY_REJECT_MAX_PCT" in batches[FACT]["last_blocked_reason"]
    assert "REFUSED" in CliRunner().invoke(quality, ["report"]).output
