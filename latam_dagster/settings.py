"""Every setting of the platform, read from the environment with local defaults.

This is the one module that reads the environment: one `BaseSettings` class per concern
(pipeline, quality, API, exporter) on a shared base. Settings are read when a class is built
(`get_settings()` and the others), not at import time, so a test or a CLI option can change the
environment and see the change. Secrets are `SecretStr`: they never show in a repr or a log line,
and a use has to ask for the value. The README lists every variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_WAREHOUSE_URL = "postgresql://postgres@localhost:5432/latam"
DEFAULT_DAGSTER_PG_URL = "postgresql://postgres@localhost:5432/latam_dagster"
DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/%2F"
DEV_SECRET = "local-dev-only-change-me"


def normalize_pg_url(url: str) -> str:
    """Map plain `postgresql://` / `postgres://` URLs to the psycopg2 driver that is installed.

    SQLAlchemy 2.1 maps a plain `postgresql://` URL to psycopg 3; users will type the plain form.
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """The same URL in the form libpq/psycopg2 accept (no `+driver` part)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    return "postgresql://" + rest if scheme.startswith("postgres") else url


def _var(name: str, default: Any = None, *, description: str, **kwargs: Any) -> Any:
    """A field read from the environment variable `name` (a field without one never is)."""
    if "default_factory" in kwargs:
        return Field(validation_alias=name, description=description, **kwargs)
    return Field(default, validation_alias=name, description=description, **kwargs)


class _NamedVariablesOnly(EnvSettingsSource):
    """Reads only the fields that name their variable, so derived fields never come from the
    environment under their Python name."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field.validation_alias is None:
            return None, field_name, False
        return super().get_field_value(field, field_name)


class EnvSettings(BaseSettings):
    """Shared reading rules: exact variable names, an empty variable means the default, keyword
    arguments (by field name) override the environment, no .env or secrets files."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_ignore_empty=True,
        validate_by_name=True,
        validate_by_alias=True,
        frozen=True,
        extra="ignore",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _NamedVariablesOnly(settings_cls))


class Settings(EnvSettings):
    """The pipeline's settings. Field descriptions double as the README's settings table."""

    warehouse_url: str = _var(
        "LATAM_WAREHOUSE_URL",
        DEFAULT_WAREHOUSE_URL,
        description="the warehouse database (raw, curated, marts, quality schemas)",
    )
    amqp_url: str = _var(
        "LATAM_AMQP_URL", DEFAULT_AMQP_URL, description="RabbitMQ connection URL (vhost included)"
    )
    dagster_home: str = _var(
        "DAGSTER_HOME",
        default_factory=lambda: str(Path.cwd() / ".dagster_home"),
        description="folder holding dagster.yaml for the Dagster instance",
    )
    dagster_pg_url: str = _var(
        "LATAM_DAGSTER_PG_URL",
        DEFAULT_DAGSTER_PG_URL,
        description="Postgres database for Dagster runs, events and schedules",
    )
    topology_prefix: str = _var(
        "LATAM_TOPOLOGY_PREFIX",
        "latam",
        description="prefix of the exchange and queue names (`latam.events`, ...)",
    )
    drain_batch_size: int = _var(
        "LATAM_DRAIN_BATCH_SIZE", 2000, description="messages written to Postgres per transaction"
    )
    drain_prefetch: int = _var(
        "LATAM_DRAIN_PREFETCH",
        6000,
        description="unacked messages the broker may push to one drain",
    )
    drain_max_messages: int = _var(
        "LATAM_DRAIN_MAX_MESSAGES",
        500000,
        description="message budget of one queue's drain in a drain run",
    )
    drain_max_seconds: float = _var(
        "LATAM_DRAIN_MAX_SECONDS",
        15.0,
        description="time budget of one queue's drain in a drain run",
    )
    drain_idle_seconds: float = _var(
        "LATAM_DRAIN_IDLE_SECONDS",
        1.0,
        description="a drain stops after this long without a message (once the other queues of "
        "its run are idle too)",
    )
    max_message_bytes: int = _var(
        "LATAM_MAX_MESSAGE_BYTES",
        1024 * 1024,
        description="larger bodies are quarantined without parsing (their SHA-256, size and "
        "first 64 KiB are kept)",
    )
    drain_max_bytes_in_flight: int = _var(
        "LATAM_DRAIN_MAX_BYTES_IN_FLIGHT",
        48 * 1024 * 1024,
        description="bytes of messages one queue's drain holds in memory (received, not yet "
        "written and acked); a batch is written at a third of it",
    )
    delivery_limit: int = _var(
        "LATAM_DELIVERY_LIMIT",
        20,
        description="quorum-queue delivery limit before a message is dead-lettered",
    )
    sensor_interval_seconds: int = _var(
        "LATAM_SENSOR_INTERVAL_SECONDS",
        5,
        description="how often the queue sensor looks at the queue depths",
    )
    sensor_min_depth: int = _var(
        "LATAM_SENSOR_MIN_DEPTH",
        1,
        description="queue depth at which the queue sensor drains a queue",
    )
    mart_sensor_interval_seconds: int = _var(
        "LATAM_MART_SENSOR_INTERVAL_SECONDS",
        300,
        description="how often the mart partitions sensor looks for changed flight dates. Marts "
        "promise freshness within 15 minutes; each marts run checks its inputs with Great "
        "Expectations first, which costs seconds of CPU (a run start-up and a GX load, about 15 s "
        "of CPU), so it runs at most this often; 5 min leaves two thirds of the promise",
    )
    drain_check_interval_seconds: float = _var(
        "LATAM_DRAIN_CHECK_INTERVAL_SECONDS",
        300.0,
        description="a drain run also runs the data-quality checks of its tables when their last "
        "evaluation is older than this, failed, or never happened; the runs in between only "
        "drain and update. 0 checks in every drain run. The default, 5 min, keeps Great "
        "Expectations loads (about 12 s of CPU each) from competing with event freshness on "
        "small machines; marts runs check their inputs as well",
    )
    drain_runs: int = _var(
        "LATAM_DRAIN_RUNS",
        3,
        description="drain runs draining or about to (queued, starting, or waiting on the "
        "queues' locks). With 2 or more, the next run starts up while the current one drains and "
        "takes over the moment the current drain ends; runs that have drained and still update "
        "curated tables or run checks do not count. Below the `latam/drain_queues` tag limit in "
        "dagster.yaml, which bounds all drain runs",
    )
    pii_hash_key: SecretStr = _var(
        "LATAM_PII_HASH_KEY",
        SecretStr(DEV_SECRET),
        description="secret for the keyed hash of passenger identifiers",
    )
    partition_start: str = _var(
        "LATAM_PARTITION_START",
        "2020-01-01",
        description="first flight_date of the daily mart partitions",
    )
    log_level: str = _var("LATAM_LOG_LEVEL", "INFO", description="log level of every process")
    log_format: str = _var(
        "LATAM_LOG_FORMAT",
        "json",
        description="`json` lines, or `text` for a person at a terminal",
    )

    @property
    def sqlalchemy_url(self) -> str:
        return normalize_pg_url(self.warehouse_url)

    @property
    def dsn(self) -> str:
        return libpq_url(self.warehouse_url)


class QualitySettings(EnvSettings):
    """The data-quality layer's settings. Field descriptions double as the README's table."""

    quality_dir: str = _var(
        "LATAM_QUALITY_DIR",
        default_factory=lambda: str(Path.cwd() / ".latam_quality"),
        description="stored GX validation results and the Data Docs build lock",
    )
    data_docs_dir: str = _var(
        "LATAM_QUALITY_DOCS_DIR",
        default_factory=lambda data: str(Path(data["quality_dir"]) / "data_docs"),
        description="the Data Docs HTML site (index.html at its root), served by the API "
        "(default: data_docs under LATAM_QUALITY_DIR)",
    )
    build_data_docs: bool = _var(
        "LATAM_QUALITY_BUILD_DOCS",
        True,
        description="rebuild Data Docs after every validation (1/true/yes/on; anything else is "
        "false)",
    )
    docs_retention: int = _var(
        "LATAM_QUALITY_DOCS_RETENTION", 50, description="validation results kept per suite"
    )
    sample_size: int = _var(
        "LATAM_QUALITY_SAMPLE_SIZE", 20, description="failing rows sampled per failed expectation"
    )
    history_days: float = _var(
        "LATAM_QUALITY_HISTORY_DAYS",
        90.0,
        description="days of validation history kept in quality.* (0: forever)",
    )
    quarantine_max_pct: float = _var(
        "LATAM_QUALITY_QUARANTINE_MAX_PCT",
        5.0,
        description="highest acceptable share of quarantined messages per queue (percent)",
    )
    quarantine_window_hours: float = _var(
        "LATAM_QUALITY_QUARANTINE_WINDOW_HOURS",
        24.0,
        description="period the quarantine rate is measured over",
    )
    reject_max_pct: float = _var(
        "LATAM_QUALITY_REJECT_MAX_PCT",
        1.0,
        description="highest share of a micro-batch's rows that row rules may hold back before "
        "the batch is blocked as a whole (percent)",
    )
    reject_min_rows: int = _var(
        "LATAM_QUALITY_REJECT_MIN_ROWS",
        10,
        description="a batch is blocked by its reject share only when at least this many rows are "
        "held back, so one bad flight in a batch of 20 does not stop the warehouse",
    )

    @field_validator("build_data_docs", mode="before")
    @classmethod
    def _flag(cls, value: object) -> object:
        """Keep the lenient reading of the flag: only 1/true/yes/on are true."""
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return value


class ApiConfig(EnvSettings):
    """The REST API's settings. Field descriptions double as the README's settings table.

    `database_url` is None when LATAM_API_DATABASE_URL is unset: `api_service.config.get_api_config`
    then derives it from the warehouse URL with the read-only role.
    """

    database_url: str | None = _var(
        "LATAM_API_DATABASE_URL",
        None,
        description="database the API reads, as the read-only role (default: LATAM_WAREHOUSE_URL "
        "with the user latam_api_reader)",
    )
    database_password: SecretStr | None = _var(
        "LATAM_API_DATABASE_PASSWORD", None, description="password for the derived API URL"
    )
    host: str = _var("LATAM_API_HOST", "127.0.0.1", description="address `latam api` binds")
    port: int = _var("LATAM_API_PORT", 8080, description="port `latam api` binds")
    workers: int = _var("LATAM_API_WORKERS", 2, description="gunicorn worker processes")
    threads: int = _var(
        "LATAM_API_THREADS",
        4,
        description="threads per worker (and database connections per worker)",
    )
    cursor_secret: SecretStr = _var(
        "LATAM_API_CURSOR_SECRET",
        SecretStr(DEV_SECRET),
        description="key that signs pagination cursors (same on every replica)",
    )
    key_cache_seconds: float = _var(
        "LATAM_API_KEY_CACHE_SECONDS",
        5.0,
        description="how long a worker trusts a key lookup (revocation delay)",
    )
    statement_timeout_ms: int = _var(
        "LATAM_API_STATEMENT_TIMEOUT_MS", 5000, description="longest query the API lets run"
    )
    session_secret: SecretStr = _var(
        "LATAM_API_SESSION_SECRET",
        SecretStr(""),
        description="key that signs the quality report's browser sessions (same on every "
        "replica); unset, a random one per API process, so sessions end when it restarts",
    )
    data_docs_dir: str = Field(
        default_factory=lambda: QualitySettings().data_docs_dir,
        description="the quality layer's LATAM_QUALITY_DOCS_DIR: Data Docs served at "
        "/quality/docs/",
    )
    testing: bool = Field(False, description="Flask testing mode (tests only, not a variable)")

    @field_validator("database_url")
    @classmethod
    def _libpq(cls, value: str | None) -> str | None:
        """psycopg2 takes no `+driver` part; accept the SQLAlchemy form the warehouse URL uses."""
        return libpq_url(value) if value else None


class ExporterConfig(EnvSettings):
    """The metrics exporter's settings, beside the pipeline's it reads too.

    `management_url` is the variable as set (None when unset): `observability.config.
    get_exporter_config` derives the default from the AMQP URL and turns `off` into None.
    """

    host: str = _var(
        "LATAM_EXPORTER_HOST", "127.0.0.1", description="address the exporter listens on"
    )
    port: int = _var("LATAM_EXPORTER_PORT", 9808, description="port of the exporter's /metrics")
    interval_seconds: float = _var(
        "LATAM_EXPORTER_INTERVAL_SECONDS",
        5.0,
        description="how often the exporter reads broker, warehouse and Dagster",
    )
    management_url: str | None = _var(
        "LATAM_RABBITMQ_MANAGEMENT_URL",
        None,
        description="RabbitMQ management API (default: the AMQP host, port 15672, same "
        "credentials); `off` disables it (then no unacked counts and no oldest-message age)",
    )
    exact_count_max_rows: int = _var(
        "LATAM_EXPORTER_EXACT_COUNT_MAX_ROWS",
        1000000,
        description="tables estimated below this size are counted exactly; larger ones report "
        "the planner's live-row estimate",
    )
    max_source_systems: int = _var(
        "LATAM_EXPORTER_MAX_SOURCE_SYSTEMS",
        500,
        description="distinct source_system label values before the rest are reported as "
        "`other` (keeps the number of series bounded)",
    )
    queue_age_window_seconds: float = _var(
        "LATAM_EXPORTER_QUEUE_AGE_WINDOW_SECONDS",
        21600.0,
        description="publish-counter history kept to date the oldest message; older heads are "
        "reported as at least this old",
    )
    statement_timeout_ms: int = _var(
        "LATAM_EXPORTER_STATEMENT_TIMEOUT_MS",
        15000,
        description="longest query the exporter lets run",
    )
    settings: Settings = Field(
        default_factory=lambda: Settings(),
        description="the pipeline settings (broker, warehouse, DAGSTER_HOME) read at the same time",
    )


def get_settings() -> Settings:
    """Read the pipeline settings from the environment now."""
    return Settings()


def get_quality_settings() -> QualitySettings:
    """Read the quality settings from the environment now."""
    return QualitySettings()
