"""Settings come from the environment, with local defaults, and accept plain Postgres URLs."""

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from latam_dagster.ingest.drain import DrainConfig
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
    assert settings.drain_batch_size == DrainConfig().batch_size  # the drain's own default
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


def _secret_variables() -> list[str]:
    """Every variable whose value is a secret or may carry one (a URL with a password)."""
    from latam_dagster.settings import is_secret_field

    return sorted(
        field.validation_alias
        for cls in (Settings, ApiConfig, ExporterConfig)
        for field in cls.model_fields.values()
        if isinstance(field.validation_alias, str) and is_secret_field(field)
    )


def _read(variable: str) -> object:
    """The value the settings read for `variable`, as a plain string."""
    for cls in (Settings, ApiConfig, ExporterConfig):
        for name, field in cls.model_fields.items():
            if field.validation_alias == variable:
                value = getattr(cls(), name)
                return value.get_secret_value() if isinstance(value, SecretStr) else value
    raise AssertionError(variable)


def test_the_secret_variables_are_the_expected_ones():
    assert _secret_variables() == [
        "LATAM_AMQP_URL",
        "LATAM_API_CURSOR_SECRET",
        "LATAM_API_DATABASE_PASSWORD",
        "LATAM_API_DATABASE_URL",
        "LATAM_API_SESSION_SECRET",
        "LATAM_DAGSTER_PG_URL",
        "LATAM_EXPORTER_DATABASE_PASSWORD",
        "LATAM_EXPORTER_DATABASE_URL",
        "LATAM_PII_HASH_KEY",
        "LATAM_PIPELINE_DATABASE_PASSWORD",
        "LATAM_PIPELINE_DATABASE_URL",
        "LATAM_RABBITMQ_MANAGEMENT_URL",
        "LATAM_SOURCES_MANAGEMENT_URL",
        "LATAM_WAREHOUSE_URL",
    ]


@pytest.mark.parametrize("variable", _secret_variables())
def test_every_secret_may_come_from_a_file(monkeypatch, tmp_path, variable):
    value = (
        "postgresql://u:pw-from-file@db:5432/w"
        if variable.endswith("_URL")
        else "value from a file"
    )
    path = tmp_path / "secret"
    path.write_text(value + "\r\n\n")  # trailing line breaks are not part of the secret
    monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(f"{variable}_FILE", str(path))
    assert _read(variable) == value


def test_a_variable_that_is_not_a_secret_has_no_file_form(monkeypatch, tmp_path):
    (tmp_path / "n").write_text("17")
    monkeypatch.delenv("LATAM_DRAIN_BATCH_SIZE", raising=False)
    monkeypatch.setenv("LATAM_DRAIN_BATCH_SIZE_FILE", str(tmp_path / "n"))
    assert get_settings().drain_batch_size == DrainConfig().batch_size


def _problem(monkeypatch, **env: str) -> str:
    from latam_dagster.settings import SettingsProblem

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsProblem) as caught:
        get_settings()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_secret_and_its_file_together_are_refused(monkeypatch, tmp_path):
    (tmp_path / "k").write_text("from-file")
    message = _problem(
        monkeypatch, LATAM_PII_HASH_KEY="from-env", LATAM_PII_HASH_KEY_FILE=str(tmp_path / "k")
    )
    assert message == (
        "LATAM_PII_HASH_KEY and LATAM_PII_HASH_KEY_FILE are both set: set one of them"
    )


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: d / "missing", "there is no file"),
        (lambda d: d, "cannot read"),
        (lambda d: (d / "empty").write_text("\n") and d / "empty", "is empty"),
        (lambda d: (d / "latin1").write_bytes(b"cl\xe9") and d / "latin1", "is not UTF-8 text"),
    ],
    ids=["missing", "directory", "empty", "not-utf8"],
)
def test_an_unusable_secret_file_is_refused_by_name(monkeypatch, tmp_path, make, says):
    monkeypatch.delenv("LATAM_AMQP_URL", raising=False)
    path = make(tmp_path)
    message = _problem(monkeypatch, LATAM_AMQP_URL_FILE=str(path))
    assert message.startswith("LATAM_AMQP_URL_FILE: ") and says in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://u:secret@db/w", None),
        ("postgresql://u@db/w?password=secret", None),
        ("postgresql://u@db/w?sslmode=verify-full&sslcert=/c.pem&sslkey=/k.pem", None),
        ("amqp://latam:secret@mq:5672/%2F", None),
        ("postgresql://u@db/w", "has no password"),
        ("postgresql://u:@db/w", "has no password"),
        ("amqp://mq:5672/%2F", "has no password"),
        ("amqp://guest:guest@mq:5672/%2F", "has the default guest/guest credentials"),
        ("amqps://gu%65st:guest@mq/%2F", "has the default guest/guest credentials"),
        ("http://[::1", "is not a URL"),
    ],
)
def test_which_urls_carry_a_real_credential(url, problem):
    from latam_dagster.settings import credentials_problem

    found = credentials_problem("LATAM_X_URL", url)
    assert found == (problem and f"LATAM_X_URL {problem}")
    assert "secret" not in (found or "")


def test_dev_accepts_the_defaults_and_production_names_them(monkeypatch):
    from latam_dagster.settings import (
        PIPELINE_SECRETS,
        InsecureSettings,
        refuse_default_secrets,
    )

    for name in (*SECRETS, "LATAM_ENV", "LATAM_AMQP_URL", "LATAM_WAREHOUSE_URL"):
        monkeypatch.delenv(name, raising=False)
    dev = get_settings()
    assert dev.environment == "dev" and not dev.production
    refuse_default_secrets(dev.default_secrets(*PIPELINE_SECRETS), dev)  # no error
    monkeypatch.setenv("LATAM_ENV", "production")
    production = get_settings()
    with pytest.raises(InsecureSettings) as caught:
        refuse_default_secrets(production.default_secrets(*PIPELINE_SECRETS), production)
    assert str(caught.value) == (
        "LATAM_ENV=production refuses missing and default secrets: "
        "LATAM_PII_HASH_KEY is unset or the development default; "
        "LATAM_AMQP_URL has the default guest/guest credentials; "
        "LATAM_PIPELINE_DATABASE_PASSWORD is unset (or set LATAM_PIPELINE_DATABASE_URL); "
        "LATAM_DAGSTER_PG_URL has no password"
    )
    monkeypatch.setenv("LATAM_ENV", "staging")
    with pytest.raises(ValidationError, match="LATAM_ENV"):
        get_settings()


def test_each_process_connects_as_its_own_role(monkeypatch):
    from api_service.config import get_api_config
    from latam_dagster.observability.config import get_exporter_config

    for name in (
        "LATAM_PIPELINE_DATABASE_URL",
        "LATAM_EXPORTER_DATABASE_URL",
        "LATAM_API_DATABASE_URL",
        "LATAM_PIPELINE_DATABASE_PASSWORD",
        "LATAM_EXPORTER_DATABASE_PASSWORD",
        "LATAM_API_DATABASE_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LATAM_WAREHOUSE_URL", "postgresql+psycopg2://owner:pw@db:6432/w")
    assert get_settings().pipeline_url == "postgresql://latam_pipeline@db:6432/w"
    assert get_exporter_config().database_url == "postgresql://latam_exporter@db:6432/w"
    assert get_api_config().database_url == "postgresql://latam_api_reader@db:6432/w"
    monkeypatch.setenv("LATAM_PIPELINE_DATABASE_PASSWORD", "p/w")
    monkeypatch.setenv("LATAM_EXPORTER_DATABASE_URL", "postgresql://mon:x@replica/w")
    assert get_settings().pipeline_url == "postgresql://latam_pipeline:p%2Fw@db:6432/w"
    assert get_exporter_config().database_url == "postgresql://mon:x@replica/w"


def test_urls_with_passwords_never_show(monkeypatch):
    monkeypatch.setenv("LATAM_WAREHOUSE_URL", "postgresql://owner:owner-pw-shown@db/w")
    monkeypatch.setenv("LATAM_AMQP_URL", "amqp://latam:broker-pw-shown@mq/%2F")
    monkeypatch.setenv("LATAM_EXPORTER_DATABASE_URL", "postgresql://mon:mon-pw-shown@db/w")
    shown = " ".join(repr(obj) for obj in (get_settings(), ExporterConfig(), get_exporter_config()))
    assert "pw-shown" not in shown
