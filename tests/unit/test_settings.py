"""Settings come from the environment, with local defaults, and accept plain Postgres URLs."""

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from latam_dagster.jobs import DRAIN_TAG
from latam_dagster.observability.config import get_exporter_config
from latam_dagster.observability.dagster_state import DRAIN_TAG as COLLECTOR_DRAIN_TAG
from latam_dagster.settings import (
    ApiConfig,
    ExporterConfig,
    QualitySettings,
    Settings,
    get_quality_settings,
    get_settings,
    libpq_url,
    normalize_pg_url,
)


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


SECRETS = {
    "LATAM_PII_HASH_KEY": "pii-key-not-to-be-shown",
    "LATAM_API_CURSOR_SECRET": "cursor-secret-not-to-be-shown",
    "LATAM_API_SESSION_SECRET": "session-secret-not-to-be-shown",
    "LATAM_API_DATABASE_PASSWORD": "db-password-not-to-be-shown",
}


def test_secrets_are_secret_str_and_never_shown(monkeypatch):
    """A settings object may be logged or shown in a traceback: no secret may show with it."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LATAM_API_DATABASE_URL", raising=False)
    settings = get_settings()
    api = ApiConfig()
    assert isinstance(settings.pii_hash_key, SecretStr)
    for field in ("cursor_secret", "session_secret", "database_password"):
        assert isinstance(getattr(api, field), SecretStr)
    assert settings.pii_hash_key.get_secret_value() == SECRETS["LATAM_PII_HASH_KEY"]
    assert api.cursor_secret.get_secret_value() == SECRETS["LATAM_API_CURSOR_SECRET"]
    shown = " ".join(
        text
        for obj in (settings, api, get_exporter_config(), get_quality_settings())
        for text in (repr(obj), str(obj))
    )
    for value in SECRETS.values():
        assert value not in shown


def test_an_empty_variable_means_the_default(monkeypatch):
    """Deployment templates often set a variable to "" to leave it unset."""
    for name in ("LATAM_DRAIN_BATCH_SIZE", "LATAM_PII_HASH_KEY", "LATAM_QUALITY_BUILD_DOCS"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("LATAM_API_CURSOR_SECRET", "")
    monkeypatch.setenv("LATAM_API_SESSION_SECRET", "")
    monkeypatch.setenv("LATAM_QUALITY_DIR", "")
    monkeypatch.setenv("LATAM_QUALITY_DOCS_DIR", "")
    settings = get_settings()
    assert settings.drain_batch_size == 2000
    assert settings.pii_hash_key.get_secret_value() == "local-dev-only-change-me"
    quality = get_quality_settings()
    assert quality.build_data_docs is True
    assert quality.data_docs_dir == str(Path.cwd() / ".latam_quality" / "data_docs")
    api = ApiConfig()
    assert api.cursor_secret.get_secret_value() == "local-dev-only-change-me"
    assert api.session_secret.get_secret_value() == ""


def test_a_bad_number_names_its_variable(monkeypatch):
    monkeypatch.setenv("LATAM_DRAIN_BATCH_SIZE", "2k")
    with pytest.raises(ValidationError, match="LATAM_DRAIN_BATCH_SIZE"):
        get_settings()
    monkeypatch.setenv("LATAM_API_PORT", "eighty")
    with pytest.raises(ValidationError, match="LATAM_API_PORT"):
        ApiConfig()


def test_read_at_call_time_and_overridden_by_keyword(monkeypatch):
    monkeypatch.setenv("LATAM_QUALITY_DIR", "/tmp/q")
    monkeypatch.delenv("LATAM_QUALITY_DOCS_DIR", raising=False)
    monkeypatch.setenv("LATAM_QUALITY_BUILD_DOCS", "off")
    quality = get_quality_settings()
    assert quality.data_docs_dir == "/tmp/q/data_docs" and quality.build_data_docs is False
    monkeypatch.setenv("LATAM_QUALITY_BUILD_DOCS", "Yes ")
    assert get_quality_settings().build_data_docs is True
    monkeypatch.setenv("LATAM_API_THREADS", "7")
    assert ApiConfig(threads=9).threads == 9 and ApiConfig().threads == 7


def test_every_setting_describes_itself():
    """The descriptions are the README's settings table."""
    for cls in (Settings, QualitySettings, ApiConfig, ExporterConfig):
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name}"
