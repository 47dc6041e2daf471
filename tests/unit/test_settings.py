"""Settings come from the environment, with local defaults, and accept plain Postgres URLs."""

from pathlib import Path

from latam_dagster.jobs import DRAIN_TAG
from latam_dagster.observability.dagster_state import DRAIN_TAG as COLLECTOR_DRAIN_TAG
from latam_dagster.settings import get_settings, libpq_url, normalize_pg_url


def test_plain_postgres_urls_map_to_the_installed_driver():
    assert normalize_pg_url("postgresql://u@h:5432/db") == "postgresql+psycopg2://u@h:5432/db"
    assert normalize_pg_url("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalize_pg_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"


def test_libpq_url_strips_the_driver():
    assert libpq_url("postgresql+psycopg2://u:p@h/db") == "postgresql://u:p@h/db"
    assert libpq_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_defaults_and_overrides(monkeypatch):
    for var in ("LATAM_WAREHOUSE_URL", "LATAM_DRAIN_BATCH_SIZE", "LATAM_TOPOLOGY_PREFIX"):
        monkeypatch.delenv(var, raising=False)
    s = get_settings()
    assert s.warehouse_url == "postgresql://postgres@localhost:5432/latam"
    assert s.topology_prefix == "latam"
    assert s.sensor_interval_seconds <= 15
    monkeypatch.setenv("LATAM_WAREHOUSE_URL", "postgresql://x@db:5432/w")
    monkeypatch.setenv("LATAM_DRAIN_BATCH_SIZE", "123")
    s = get_settings()
    assert s.sqlalchemy_url == "postgresql+psycopg2://x@db:5432/w"
    assert s.drain_batch_size == 123


def test_drain_runs_fit_the_instance_tag_limit(monkeypatch):
    """The sensor's limit must not exceed the run queue's, or requested runs would sit queued."""
    import yaml

    config = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "infra/dagster/dagster.yaml").read_text()
    )
    limits = {
        rule["key"]: rule["limit"]
        for rule in config["concurrency"]["runs"]["tag_concurrency_limits"]
    }
    monkeypatch.delenv("LATAM_DRAIN_RUNS", raising=False)
    assert 1 <= get_settings().drain_runs < limits[DRAIN_TAG]
    assert DRAIN_TAG == COLLECTOR_DRAIN_TAG  # the exporter counts drain runs by the same tag
    # no pools: a step waiting for a pool slot busy-polls in Dagster 1.13 (see dagster.yaml)
    assert "pools" not in config["concurrency"]
