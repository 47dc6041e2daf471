"""The monitoring configuration is valid and consistent: promtool checks the Prometheus config and
rules and runs the rule unit tests; every alert has a test and an entry in docs/slo.md; every
metric a dashboard or rule reads is one the platform exports or records."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "infra" / "prometheus"
DASHBOARDS = ROOT / "infra" / "grafana" / "dashboards"
METRIC = re.compile(r"\b((?:latam|route|queue|queue_source|route_status)[a-z_]*:?[a-z0-9_:]*|up)\b")


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is not installed: run infra/ci/install-tools.sh")
    return found


def _run(*args: str) -> str:
    proc = subprocess.run(args, cwd=PROM, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _alerts() -> list[dict]:
    doc = yaml.safe_load((PROM / "rules" / "alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def _recorded() -> set[str]:
    doc = yaml.safe_load((PROM / "rules" / "recording.yml").read_text())
    return {r["record"] for g in doc["groups"] for r in g["rules"]}


def test_promtool_checks_config_and_rules(promtool):
    out = _run(promtool, "check", "config", "prometheus.yml")
    assert "SUCCESS" in out
    out = _run(promtool, "check", "rules", *sorted(str(p) for p in (PROM / "rules").glob("*.yml")))
    assert out.count("SUCCESS") == 2


def test_promtool_rule_unit_tests(promtool):
    tests = sorted(str(p.relative_to(PROM)) for p in (PROM / "tests").glob("*.yml"))
    assert tests
    out = _run(promtool, "test", "rules", *tests)
    assert out.count("SUCCESS") == len(tests)


def test_every_alert_is_unit_tested_firing_and_quiet():
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in (PROM / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names - fired == set(), "alerts without a test that makes them fire"
    assert names - quiet == set(), "alerts without a test that keeps them quiet"


def test_every_alert_names_its_slo_and_is_documented():
    slo_doc = (ROOT / "docs" / "slo.md").read_text()
    for alert in _alerts():
        labels = alert["labels"]
        assert labels["severity"] in ("page", "ticket"), alert["alert"]
        assert labels["slo"] in ("event-freshness", "marts-freshness", "api-availability",
                                 "api-latency", "data-quality", "all"), alert["alert"]  # fmt: skip
        assert f"`{alert['alert']}`" in slo_doc, f"{alert['alert']} missing from docs/slo.md"
        assert alert["annotations"]["dashboard"].startswith("/d/latam-")


def _exported_names() -> set[str]:
    """Metric names the exporter and the API define (read from their sources)."""
    names: set[str] = set()
    for path in [*(ROOT / "latam_dagster" / "observability").glob("*.py"),
                 ROOT / "api_service" / "metrics.py"]:  # fmt: skip
        names |= set(re.findall(r'"(latam_[a-z_]+)"', path.read_text()))
    histograms = {n for n in names if n.endswith("_seconds") and "duration" in n}
    for h in histograms:
        names |= {f"{h}_bucket", f"{h}_count", f"{h}_sum"}
    return names | {"up", "ALERTS"}


def _exprs_of_dashboards() -> list[tuple[str, str]]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        doc = json.loads(path.read_text())
        for panel in doc["panels"]:
            for target in panel.get("targets", []):
                if panel["datasource"]["type"] == "prometheus":
                    found.append((path.name, target["expr"]))
        for var in doc["templating"]["list"]:
            if var["type"] == "query":
                found.append((path.name, var["query"]["query"]))
    return found


def test_dashboards_read_only_metrics_that_exist():
    known = _exported_names() | _recorded()
    alerts_exprs = [a["expr"] for a in _alerts()]
    for where, expr in [*_exprs_of_dashboards(), *(("alerts.yml", e) for e in alerts_exprs)]:
        for name in METRIC.findall(re.sub(r'"[^"]*"', '""', expr)):
            if (
                name.startswith(("latam", "route:", "queue:", "queue_source:", "route_status:"))
                or name == "up"
            ):
                assert name in known, f"{where}: {name} is neither exported nor recorded"


def test_dashboards_are_complete_and_provisioned():
    uids = set()
    for name in ("ingest", "freshness", "api", "quality"):
        doc = json.loads((DASHBOARDS / f"{name}.json").read_text())
        uids.add(doc["uid"])
        variables = {v["name"] for v in doc["templating"]["list"]}
        if name != "api":
            assert {"queue", "source_system"} <= variables, name
        ids = [p["id"] for p in doc["panels"]]
        assert len(ids) == len(set(ids)), name
    assert uids == {"latam-ingest", "latam-freshness", "latam-api", "latam-quality"}
    provisioning = yaml.safe_load(
        (ROOT / "infra" / "grafana" / "provisioning" / "dashboards" / "latam.yml").read_text()
    )
    assert provisioning["providers"][0]["type"] == "file"
    sources = yaml.safe_load(
        (ROOT / "infra" / "grafana" / "provisioning" / "datasources" / "latam.yml").read_text()
    )
    assert {d["uid"] for d in sources["datasources"]} == {"prometheus", "loki"}


def test_promtail_extracts_the_fields_our_logs_carry():
    from latam_dagster.observability.logging import CORRELATION_FIELDS

    doc = yaml.safe_load((ROOT / "infra" / "logging" / "promtail.yml").read_text())
    stages = doc["scrape_configs"][0]["pipeline_stages"][0]["match"]["stages"]
    expressions = next(s["json"]["expressions"] for s in stages if "json" in s)
    assert set(CORRELATION_FIELDS) <= set(expressions)
    assert {"ts", "level", "service", "message"} <= set(expressions.values())
