"""Every setting of the platform, read from the environment with local defaults.

This is the one module that reads the environment: one `BaseSettings` class per concern
(pipeline, quality, API, exporter) on a shared base. Settings are read when a class is built
(`get_settings()` and the others), not at import time, so a test or a CLI option can change the
environment and see the change. Secrets are `SecretStr`: they never show in a repr or a log line,
and a use has to ask for the value. Each secret (and each URL that may carry a password) can also
be read from a file: `X_FILE` names the file holding the value of `X`. With LATAM_ENV=production,
every process refuses to start on a missing or default secret it needs (`refuse_default_secrets`).
A field's description is the docstring under it. The README lists every variable.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
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
# The database roles of the processes (migrations 0011 and 0033); the warehouse URL is the owner.
PIPELINE_ROLE = "latam_pipeline"
EXPORTER_ROLE = "latam_exporter"


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


def role_url(url: str, role: str, password: str | None = None) -> str:
    """`url` with its user (and password) replaced, in the libpq form psycopg2 accepts. The host
    part is kept as written: a multi-host URL (`h1:5432,h2:5432`, for failover) stays one."""
    parts = urlsplit(libpq_url(url))
    host = parts.netloc.rpartition("@")[2]
    user = quote(role, safe="")
    if password:
        user = f"{user}:{quote(password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


class SettingsProblem(ValueError):
    """A setting that cannot be used as it is set. The message names the variable, never its
    value, in one line: the processes print it as their only line on stderr and exit with 2."""


class InsecureSettings(SettingsProblem):
    """LATAM_ENV=production and a secret the process needs is missing or a known default."""


def read_secret_file(variable: str, path: str) -> str:
    """The secret in the file `path` that `variable` (an `X_FILE` variable) names, as Kubernetes
    and compose mount secrets: its text with trailing line breaks removed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsProblem(f"{variable}: there is no file {path}") from None
    except UnicodeDecodeError:
        raise SettingsProblem(f"{variable}: {path} is not UTF-8 text") from None
    except OSError as exc:
        raise SettingsProblem(f"{variable}: cannot read {path} ({exc.strerror})") from None
    value = text.rstrip("\r\n")
    if not value:
        raise SettingsProblem(f"{variable}: {path} is empty")
    return value


def secret_problem(variable: str, value: SecretStr | None) -> str | None:
    """Why the secret `value` of `variable` cannot serve in production, or None."""
    if value is None or value.get_secret_value() in ("", DEV_SECRET):
        return f"{variable} is unset or the development default"
    return None


def credentials_problem(variable: str, url: str) -> str | None:
    """Why the Postgres or AMQP `url` of `variable` carries no real credential, or None.

    A password (in the URL's user part or its `password` parameter) or a client certificate
    (`sslcert`) counts; no password, or RabbitMQ's guest/guest, does not.
    """
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return f"{variable} is not a URL"
    query = parse_qs(parts.query)
    if password is None and query.get("password"):
        password = query["password"][-1]
    if not password:
        if query.get("sslcert"):
            return None
        return f"{variable} has no password"
    if (unquote(user or "guest"), unquote(password)) == ("guest", "guest"):
        return f"{variable} has the default guest/guest credentials"
    return None


def role_database_problem(prefix: str, url: str | None, password: SecretStr | None) -> str | None:
    """Why a process's database login (`<prefix>_URL`, else the warehouse URL with its role and
    `<prefix>_PASSWORD`) has no real credential, or None."""
    if url:
        return credentials_problem(f"{prefix}_URL", url)
    if password is None or not password.get_secret_value():
        return f"{prefix}_PASSWORD is unset (or set {prefix}_URL)"
    return None


def is_secret_field(field: FieldInfo) -> bool:
    """A `SecretStr` field, or one `_var(..., secret=True)` declared."""
    extra = field.json_schema_extra
    marked = isinstance(extra, dict) and extra.get("secret") is True
    return marked or SecretStr in (field.annotation, *get_args(field.annotation))


def _var(name: str, default: Any = None, *, secret: bool = False, **kwargs: Any) -> Any:
    """A field read from the environment variable `name` (a field without one never is).

    Its description is the docstring under it. `secret` marks a value that carries a credential
    (a URL with a password): like a `SecretStr` field it is never shown in a repr and may be read
    from the file `<name>_FILE` names.
    """
    if secret:
        kwargs.update(repr=False, json_schema_extra={"secret": True})
    if "default_factory" in kwargs:
        return Field(validation_alias=name, **kwargs)
    return Field(default, validation_alias=name, **kwargs)


class _NamedVariablesOnly(EnvSettingsSource):
    """Reads only the fields that name their variable, so derived fields never come from the
    environment under their Python name."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field.validation_alias is None:
            return None, field_name, False
        return super().get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        files = self._secret_files()
        return {**super().__call__(), **files}

    def _secret_files(self) -> dict[str, str]:
        """Secrets read from the files their `<variable>_FILE` names (setting both is an error)."""
        found: dict[str, str] = {}
        for field in self.settings_cls.model_fields.values():
            name = field.validation_alias
            if not isinstance(name, str) or not is_secret_field(field):
                continue
            path = self.env_vars.get(f"{name}_FILE")
            if path is None:
                continue
            if name in self.env_vars:
                raise SettingsProblem(f"{name} and {name}_FILE are both set: set one of them")
            found[name] = read_secret_file(f"{name}_FILE", path)
        return found


class EnvSettings(BaseSettings):
    """Shared reading rules: exact variable names, an empty variable means the default, keyword
    arguments (by field name) override the environment, no .env files; secrets may come from
    the file `<variable>_FILE` names."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_ignore_empty=True,
        validate_by_name=True,
        validate_by_alias=True,
        frozen=True,
        extra="ignore",
        use_attribute_docstrings=True,
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

    environment: Literal["dev", "production"] = _var("LATAM_ENV", "dev")
    """`dev` (local defaults accepted) or `production`: every process then refuses to start on a
    missing or default secret (docs/security.md)"""
    warehouse_url: str = _var("LATAM_WAREHOUSE_URL", DEFAULT_WAREHOUSE_URL, secret=True)
    """the warehouse database (raw, curated, marts, quality schemas) as its owner, the login of
    `latam migrate`, `latam init` and the admin commands"""
    pipeline_database_url: str | None = _var("LATAM_PIPELINE_DATABASE_URL", None, secret=True)
    """the warehouse as the Dagster code location and its runs see it (default:
    LATAM_WAREHOUSE_URL with the user latam_pipeline, which writes data but changes no schema)"""
    pipeline_database_password: SecretStr | None = _var("LATAM_PIPELINE_DATABASE_PASSWORD", None)
    """password for the derived pipeline URL"""
    amqp_url: str = _var("LATAM_AMQP_URL", DEFAULT_AMQP_URL, secret=True)
    """RabbitMQ connection URL (vhost included)"""
    rabbitmq_ca_file: str | None = _var("LATAM_RABBITMQ_CA_FILE", None)
    """CA certificates (PEM) an amqps:// URL trusts for the broker's certificate (default: the
    system's CAs); the broker's host name is always checked (docs/tls.md)"""
    allow_plaintext_loopback: bool = _var("LATAM_ALLOW_PLAINTEXT_LOOPBACK", False)
    """in production, still accept amqp:// and Postgres URLs without sslmode=verify-full when every
    host they name is loopback or a Unix socket (a local TLS proxy); otherwise they are refused
    (docs/tls.md)"""
    dagster_home: str = _var(
        "DAGSTER_HOME", default_factory=lambda: str(Path.cwd() / ".dagster_home")
    )
    """folder holding dagster.yaml for the Dagster instance"""
    dagster_pg_url: str = _var("LATAM_DAGSTER_PG_URL", DEFAULT_DAGSTER_PG_URL, secret=True)
    """Postgres database for Dagster runs, events and schedules"""
    topology_prefix: str = _var("LATAM_TOPOLOGY_PREFIX", "latam")
    """prefix of the exchange and queue names (`latam.events`, ...)"""
    sources_file: str | None = _var("LATAM_SOURCES_FILE", None)
    """the source registry (default: the repository's infra/sources/sources.yaml)"""
    sources_secrets_dir: str = _var(
        "LATAM_SOURCES_SECRETS_DIR", default_factory=lambda: str(Path.cwd() / ".source_secrets")
    )
    """folder of the per-system RabbitMQ password files (`<name>.password`, mode 0600)"""
    sources_management_url: str | None = _var("LATAM_SOURCES_MANAGEMENT_URL", None, secret=True)
    """RabbitMQ management API URL (with an administrator's credentials) `latam sources
    provision` uses (default: the host and credentials of LATAM_AMQP_URL, port 15672)"""
    sources_enforce_identity: bool = _var("LATAM_SOURCES_ENFORCE_IDENTITY", False)
    """the drain quarantines events without a `user_id` property equal to their source_system
    (on in production, docs/sources.md)"""
    drain_batch_size: int = _var("LATAM_DRAIN_BATCH_SIZE", 4000)
    """messages written to Postgres per transaction"""
    drain_prefetch: int = _var("LATAM_DRAIN_PREFETCH", 16000)
    """unacked messages the broker may push to one drain"""
    drain_max_messages: int = _var("LATAM_DRAIN_MAX_MESSAGES", 500000)
    """message budget of one queue's drain in a drain run"""
    drain_max_seconds: float = _var("LATAM_DRAIN_MAX_SECONDS", 15.0)
    """time budget of one queue's drain in a drain run"""
    drain_idle_seconds: float = _var("LATAM_DRAIN_IDLE_SECONDS", 1.0)
    """a drain stops after this long without a message (once the other queues of its run are idle
    too)"""
    max_message_bytes: int = _var("LATAM_MAX_MESSAGE_BYTES", 1024 * 1024)
    """larger bodies are quarantined without parsing (their SHA-256, size and first 64 KiB are
    kept)"""
    drain_max_bytes_in_flight: int = _var("LATAM_DRAIN_MAX_BYTES_IN_FLIGHT", 48 * 1024 * 1024)
    """bytes of messages one queue's drain holds in memory (received, not yet written and acked); a
    batch is written at a third of it"""
    delivery_limit: int = _var("LATAM_DELIVERY_LIMIT", 20)
    """quorum-queue delivery limit before a message is dead-lettered"""
    sensor_interval_seconds: int = _var("LATAM_SENSOR_INTERVAL_SECONDS", 5)
    """how often the queue sensor looks at the queue depths"""
    sensor_min_depth: int = _var("LATAM_SENSOR_MIN_DEPTH", 1)
    """queue depth at which the queue sensor drains a queue"""
    mart_sensor_interval_seconds: int = _var("LATAM_MART_SENSOR_INTERVAL_SECONDS", 300)
    """how often the mart partitions sensor looks for changed flight dates. Marts promise freshness
    within 15 minutes; each marts run checks its inputs with Great Expectations first, which costs
    seconds of CPU (a run start-up and a GX load, about 15 s of CPU), so it runs at most this often;
    5 min leaves two thirds of the promise"""
    drain_check_interval_seconds: float = _var("LATAM_DRAIN_CHECK_INTERVAL_SECONDS", 300.0)
    """a drain run also runs the data-quality checks of its tables when their last evaluation is
    older than this, failed, or never happened; the runs in between only drain and update. 0 checks
    in every drain run. The default, 5 min, keeps Great Expectations loads (about 12 s of CPU each)
    from competing with event freshness on small machines; marts runs check their inputs as well"""
    drain_runs: int = _var("LATAM_DRAIN_RUNS", 3)
    """drain runs draining or about to (queued, starting, or waiting on the queues' locks). With 2
    or more, the next run starts up while the current one drains and takes over the moment the
    current drain ends; runs that have drained and still update curated tables or run checks do not
    count. Below the `latam/drain_queues` tag limit in dagster.yaml, which bounds all drain runs"""
    run_retention_success_days: float = _var("LATAM_RUN_RETENTION_SUCCESS_DAYS", 7.0)
    """days the Dagster instance keeps a successful run and its event log; the daily
    `instance_retention` job deletes older ones (0: forever)"""
    run_retention_failure_days: float = _var("LATAM_RUN_RETENTION_FAILURE_DAYS", 90.0)
    """days it keeps a failed or canceled run and its event log (0: forever); a run that has not
    finished is never deleted"""
    pii_hash_key: SecretStr = _var("LATAM_PII_HASH_KEY", SecretStr(DEV_SECRET))
    """secret for the keyed hash of passenger identifiers"""
    partition_start: str = _var("LATAM_PARTITION_START", "2020-01-01")
    """first flight_date of the daily mart partitions"""
    log_level: str = _var("LATAM_LOG_LEVEL", "INFO")
    """log level of every process"""
    log_format: str = _var("LATAM_LOG_FORMAT", "json")
    """`json` lines, or `text` for a person at a terminal"""

    @property
    def production(self) -> bool:
        """LATAM_ENV is `production`: defaults and plaintext links are refused."""
        return self.environment == "production"

    @property
    def pipeline_url(self) -> str:
        """The URL the code location and its runs connect with, as the role latam_pipeline."""
        if self.pipeline_database_url:
            return libpq_url(self.pipeline_database_url)
        password = self.pipeline_database_password
        return role_url(
            self.warehouse_url, PIPELINE_ROLE, password.get_secret_value() if password else None
        )

    def default_secrets(self, *names: str) -> list[str]:
        """What is wrong with the secrets among `names` (field names: `pii_hash_key`,
        `warehouse_url`, `pipeline_url`, `amqp_url`, `dagster_pg_url`) for production."""
        checks = {
            "pii_hash_key": lambda: secret_problem("LATAM_PII_HASH_KEY", self.pii_hash_key),
            "warehouse_url": lambda: credentials_problem("LATAM_WAREHOUSE_URL", self.warehouse_url),
            "pipeline_url": lambda: role_database_problem(
                "LATAM_PIPELINE_DATABASE",
                self.pipeline_database_url,
                self.pipeline_database_password,
            ),
            "amqp_url": lambda: credentials_problem("LATAM_AMQP_URL", self.amqp_url),
            "dagster_pg_url": lambda: credentials_problem(
                "LATAM_DAGSTER_PG_URL", self.dagster_pg_url
            ),
        }
        return [problem for name in names if (problem := checks[name]())]

    @property
    def sqlalchemy_url(self) -> str:
        return normalize_pg_url(self.warehouse_url)

    @property
    def dsn(self) -> str:
        return libpq_url(self.warehouse_url)


class QualitySettings(EnvSettings):
    """The data-quality layer's settings. Field descriptions double as the README's table."""

    quality_dir: str = _var(
        "LATAM_QUALITY_DIR", default_factory=lambda: str(Path.cwd() / ".latam_quality")
    )
    """stored GX validation results and the Data Docs build lock"""
    data_docs_dir: str = _var(
        "LATAM_QUALITY_DOCS_DIR",
        default_factory=lambda data: str(Path(data["quality_dir"]) / "data_docs"),
    )
    """the Data Docs HTML site (index.html at its root), served by the API (default: data_docs under
    LATAM_QUALITY_DIR)"""
    build_data_docs: bool = _var("LATAM_QUALITY_BUILD_DOCS", True)
    """rebuild Data Docs after every validation (1/true/yes/on; anything else is false)"""
    docs_retention: int = _var("LATAM_QUALITY_DOCS_RETENTION", 50)
    """validation results kept per suite"""
    sample_size: int = _var("LATAM_QUALITY_SAMPLE_SIZE", 20)
    """failing rows sampled per failed expectation"""
    history_days: float = _var("LATAM_QUALITY_HISTORY_DAYS", 90.0)
    """days of validation history kept in quality.* (0: forever)"""
    quarantine_max_pct: float = _var("LATAM_QUALITY_QUARANTINE_MAX_PCT", 5.0)
    """highest acceptable share of quarantined messages per queue (percent)"""
    quarantine_window_hours: float = _var("LATAM_QUALITY_QUARANTINE_WINDOW_HOURS", 24.0)
    """period the quarantine rate is measured over"""
    reject_max_pct: float = _var("LATAM_QUALITY_REJECT_MAX_PCT", 1.0)
    """highest share of a micro-batch's rows that row rules may hold back before the batch is
    blocked as a whole (percent)"""
    reject_min_rows: int = _var("LATAM_QUALITY_REJECT_MIN_ROWS", 10)
    """a batch is blocked by its reject share only when at least this many rows are held back, so
    one bad flight in a batch of 20 does not stop the warehouse"""

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

    database_url: str | None = _var("LATAM_API_DATABASE_URL", None, secret=True)
    """database the API reads, as the read-only role (default: LATAM_WAREHOUSE_URL with the user
    latam_api_reader)"""
    database_password: SecretStr | None = _var("LATAM_API_DATABASE_PASSWORD", None)
    """password for the derived API URL"""
    host: str = _var("LATAM_API_HOST", "127.0.0.1")
    """address `latam api` binds"""
    port: int = _var("LATAM_API_PORT", 8080)
    """port `latam api` binds"""
    workers: int = _var("LATAM_API_WORKERS", 2)
    """gunicorn worker processes"""
    threads: int = _var("LATAM_API_THREADS", 4)
    """threads per worker (and database connections per worker)"""
    cursor_secret: SecretStr = _var("LATAM_API_CURSOR_SECRET", SecretStr(DEV_SECRET))
    """key that signs pagination cursors (same on every replica)"""
    key_cache_seconds: float = _var("LATAM_API_KEY_CACHE_SECONDS", 5.0)
    """how long a worker trusts a key lookup (revocation delay)"""
    statement_timeout_ms: int = _var("LATAM_API_STATEMENT_TIMEOUT_MS", 5000)
    """longest query the API lets run"""
    session_secret: SecretStr = _var("LATAM_API_SESSION_SECRET", SecretStr(""))
    """key that signs the quality report's browser sessions (same on every replica); unset, a random
    one per API process, so sessions end when it restarts"""
    data_docs_dir: str = Field(default_factory=lambda: QualitySettings().data_docs_dir)
    """the quality layer's LATAM_QUALITY_DOCS_DIR: Data Docs served at /quality/docs/"""
    metrics_host: str = _var(
        "LATAM_API_METRICS_HOST",
        "127.0.0.1",
        description="address of the API's Prometheus listener (`/metrics`, apart from the API's "
        "own port, which answers 404 there)",
    )
    metrics_port: int = _var(
        "LATAM_API_METRICS_PORT",
        9809,
        description="port of the API's Prometheus listener, served by the gunicorn master for "
        "all its workers; 0: none",
    )
    proxy_hops: int = _var(
        "LATAM_API_PROXY_HOPS",
        0,
        description="reverse proxies in front of the API whose X-Forwarded-For/-Proto are "
        "trusted (client address for rate limits, https for HSTS); 0 trusts none",
    )
    ratelimit_enabled: bool | None = _var(
        "LATAM_API_RATELIMIT_ENABLED",
        None,
        description="rate limits on or off (default on; off only for test apps in Flask testing "
        "mode)",
    )
    ratelimit_storage_url: str = _var(
        "LATAM_API_RATELIMIT_STORAGE_URL",
        "redis://127.0.0.1:6379/0",
        description="Redis holding the rate-limit counters, shared by every worker and replica "
        "(while it is down each worker counts on its own)",
    )
    ratelimit_key_prefix: str = _var(
        "LATAM_API_RATELIMIT_KEY_PREFIX",
        "latam_api",
        description="prefix of the counters' Redis keys (same on every replica of one API)",
    )
    ratelimit_per_key: str = _var(
        "LATAM_API_RATELIMIT_PER_KEY",
        "1200/minute",
        description="requests one API key may make, over all endpoints and replicas (e.g. "
        "`1200/minute`, `20/second;1000/hour`)",
    )
    ratelimit_per_address: str = _var(
        "LATAM_API_RATELIMIT_PER_ADDRESS",
        "2400/minute",
        description="requests one client address may make, with or without a key (probes exempt)",
    )
    ratelimit_failed_auth: str = _var(
        "LATAM_API_RATELIMIT_FAILED_AUTH",
        "60/minute",
        description="well-formed keys one client address may present that turn out unknown or "
        "revoked; past it, the address's keyed requests get 429",
    )
    testing: bool = Field(False)
    """Flask testing mode (tests only, not a variable)"""

    @field_validator("ratelimit_per_key", "ratelimit_per_address", "ratelimit_failed_auth")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        """A limit the limiter understands (`N/second|minute|hour|day`, several joined by `;`)."""
        from limits import parse_many

        try:
            if not parse_many(value):
                raise ValueError
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit such as '1200/minute' or '20/second;1000/hour'"
            ) from None
        return value

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

    host: str = _var("LATAM_EXPORTER_HOST", "127.0.0.1")
    """address the exporter listens on"""
    port: int = _var("LATAM_EXPORTER_PORT", 9808)
    """port of the exporter's /metrics"""
    interval_seconds: float = _var("LATAM_EXPORTER_INTERVAL_SECONDS", 5.0)
    """how often the exporter reads broker, warehouse and Dagster"""
    database_url: str | None = _var("LATAM_EXPORTER_DATABASE_URL", None, secret=True)
    """the warehouse as the exporter reads it (default: LATAM_WAREHOUSE_URL with the read-only
    user latam_exporter)"""
    database_password: SecretStr | None = _var("LATAM_EXPORTER_DATABASE_PASSWORD", None)
    """password for the derived exporter URL"""
    management_url: str | None = _var("LATAM_RABBITMQ_MANAGEMENT_URL", None, secret=True)
    """RabbitMQ management API (default: the AMQP host, port 15672, same credentials); `off`
    disables it (then no unacked counts and no oldest-message age)"""
    exact_count_max_rows: int = _var("LATAM_EXPORTER_EXACT_COUNT_MAX_ROWS", 1000000)
    """tables estimated below this size are counted exactly; larger ones report the planner's
    live-row estimate"""
    max_source_systems: int = _var("LATAM_EXPORTER_MAX_SOURCE_SYSTEMS", 500)
    """distinct source_system label values before the rest are reported as `other` (keeps the number
    of series bounded)"""
    queue_age_window_seconds: float = _var("LATAM_EXPORTER_QUEUE_AGE_WINDOW_SECONDS", 21600.0)
    """publish-counter history kept to date the oldest message; older heads are reported as at least
    this old"""
    statement_timeout_ms: int = _var("LATAM_EXPORTER_STATEMENT_TIMEOUT_MS", 15000)
    """longest query the exporter lets run"""
    settings: Settings = Field(default_factory=lambda: Settings())
    """the pipeline settings (broker, warehouse, DAGSTER_HOME) read at the same time"""


class UiProxySettings(EnvSettings):
    """The Dagster UI's authenticating proxy (nginx). Field descriptions double as the README's
    table; docs/ui-access.md describes the proxy."""

    auth_dir: str = _var(
        "LATAM_UI_AUTH_DIR",
        default_factory=lambda: str(Path.cwd() / ".latam_ui"),
        description="the UI's users: one htpasswd file per role (bcrypt hashes) and the role map "
        "nginx routes by, written by `latam ui-user`",
    )
    host: str = _var(
        "LATAM_UI_HOST",
        "127.0.0.1",
        description="address the UI proxy listens on (the Dagster webservers behind it always "
        "listen on 127.0.0.1)",
    )
    tls_cert: str | None = _var(
        "LATAM_UI_TLS_CERT",
        None,
        description="certificate chain (PEM) of the UI proxy; with LATAM_UI_TLS_KEY the proxy "
        "serves HTTPS only",
    )
    tls_key: str | None = _var(
        "LATAM_UI_TLS_KEY", None, description="private key (PEM) of LATAM_UI_TLS_CERT"
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> UiProxySettings:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("set both LATAM_UI_TLS_CERT and LATAM_UI_TLS_KEY, or neither")
        return self

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)


def get_ui_proxy_settings() -> UiProxySettings:
    """Read the UI proxy settings from the environment now."""
    return UiProxySettings()


def get_settings() -> Settings:
    """Read the pipeline settings from the environment now."""
    return Settings()


# The secrets the Dagster code location and its runs need: they hash passenger identifiers, read
# the broker, write the warehouse as latam_pipeline and keep runs in the Dagster database.
PIPELINE_SECRETS = ("pii_hash_key", "amqp_url", "pipeline_url", "dagster_pg_url")


def refuse_default_secrets(
    problems: Iterable[str | None], settings: Settings | None = None
) -> None:
    """With LATAM_ENV=production, raise `InsecureSettings` naming every setting in `problems`
    (the output of the `default_secrets` methods); in dev, accept them."""
    if not (settings or get_settings()).production:
        return
    found = [problem for problem in problems if problem]
    if found:
        raise InsecureSettings(
            "LATAM_ENV=production refuses missing and default secrets: " + "; ".join(found)
        )


def get_quality_settings() -> QualitySettings:
    """Read the quality settings from the environment now."""
    return QualitySettings()
