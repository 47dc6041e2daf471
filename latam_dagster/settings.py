"""Every setting of the platform, read from the environment with local defaults.

Settings are read when `get_settings()` is called, not at import time, so a test or a CLI
option can change the environment and see the change. The README lists every variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_WAREHOUSE_URL = "postgresql://postgres@localhost:5432/latam"
DEFAULT_DAGSTER_PG_URL = "postgresql://postgres@localhost:5432/latam_dagster"
DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/%2F"


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


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


@dataclass(frozen=True)
class Settings:
    """Typed view of the environment. Field docs double as the README's settings table."""

    warehouse_url: str
    """LATAM_WAREHOUSE_URL: the warehouse database (raw, curated, marts, quality schemas)."""
    amqp_url: str
    """LATAM_AMQP_URL: RabbitMQ connection URL (vhost included)."""
    dagster_home: str
    """DAGSTER_HOME: folder holding dagster.yaml for the Dagster instance."""
    dagster_pg_url: str
    """LATAM_DAGSTER_PG_URL: Postgres database for Dagster runs, events and schedules."""
    topology_prefix: str
    """LATAM_TOPOLOGY_PREFIX: prefix of the exchange and queue names (`latam.events`, ...)."""
    drain_batch_size: int
    """LATAM_DRAIN_BATCH_SIZE: messages written to Postgres per transaction."""
    drain_prefetch: int
    """LATAM_DRAIN_PREFETCH: unacked messages the broker may push to one drain."""
    drain_max_messages: int
    """LATAM_DRAIN_MAX_MESSAGES: message budget of one queue's drain in a drain run."""
    drain_max_seconds: float
    """LATAM_DRAIN_MAX_SECONDS: time budget of one queue's drain in a drain run."""
    drain_idle_seconds: float
    """LATAM_DRAIN_IDLE_SECONDS: a drain stops after this long without a message (once the other
    queues of its run are idle too)."""
    max_message_bytes: int
    """LATAM_MAX_MESSAGE_BYTES: larger bodies are quarantined without parsing (their SHA-256, size
    and first 64 KiB are kept)."""
    drain_max_bytes_in_flight: int
    """LATAM_DRAIN_MAX_BYTES_IN_FLIGHT: bytes of messages one queue's drain holds in memory
    (received, not yet written and acked); a batch is written at a third of it."""
    delivery_limit: int
    """LATAM_DELIVERY_LIMIT: quorum-queue delivery limit before a message is dead-lettered."""
    sensor_interval_seconds: int
    """LATAM_SENSOR_INTERVAL_SECONDS: how often the queue sensor looks at the queue depths."""
    sensor_min_depth: int
    """LATAM_SENSOR_MIN_DEPTH: queue depth at which the queue sensor drains a queue."""
    mart_sensor_interval_seconds: int
    """LATAM_MART_SENSOR_INTERVAL_SECONDS: how often the mart partitions sensor looks for changed
    flight dates. Marts promise freshness within 15 minutes; each marts run checks its inputs
    with Great Expectations first, which costs seconds of CPU (a run start-up and a GX load, about
    15 s of CPU), so it runs at most this often; 5 min leaves two thirds of the promise."""
    drain_check_interval_seconds: float
    """LATAM_DRAIN_CHECK_INTERVAL_SECONDS: a drain run also runs the data-quality checks of its
    tables when their last evaluation is older than this, failed, or never happened; the runs in
    between only drain and update. 0 checks in every drain run. The default, 5 min, keeps Great
    Expectations loads (about 12 s of CPU each) from competing with event freshness on small
    machines; marts runs check their inputs as well."""
    drain_runs: int
    """LATAM_DRAIN_RUNS: drain runs draining or about to (queued, starting, or waiting on the
    queues' locks). With 2 or more, the next run starts up while the current one drains and takes
    over the moment the current drain ends; runs that have drained and still update curated
    tables or run checks do not count. Below the `latam/drain_queues` tag limit in dagster.yaml,
    which bounds all drain runs."""
    pii_hash_key: str
    """LATAM_PII_HASH_KEY: secret for the keyed hash of passenger identifiers."""
    partition_start: str
    """LATAM_PARTITION_START: first flight_date of the daily mart partitions."""
    log_level: str
    """LATAM_LOG_LEVEL: log level of every process."""

    @property
    def sqlalchemy_url(self) -> str:
        return normalize_pg_url(self.warehouse_url)

    @property
    def dsn(self) -> str:
        return libpq_url(self.warehouse_url)


def get_settings() -> Settings:
    """Read the settings from the environment now."""
    home = _env("DAGSTER_HOME", str(Path.cwd() / ".dagster_home"))
    return Settings(
        warehouse_url=_env("LATAM_WAREHOUSE_URL", DEFAULT_WAREHOUSE_URL),
        amqp_url=_env("LATAM_AMQP_URL", DEFAULT_AMQP_URL),
        dagster_home=home,
        dagster_pg_url=_env("LATAM_DAGSTER_PG_URL", DEFAULT_DAGSTER_PG_URL),
        topology_prefix=_env("LATAM_TOPOLOGY_PREFIX", "latam"),
        drain_batch_size=int(_env("LATAM_DRAIN_BATCH_SIZE", "2000")),
        drain_prefetch=int(_env("LATAM_DRAIN_PREFETCH", "6000")),
        drain_max_messages=int(_env("LATAM_DRAIN_MAX_MESSAGES", "500000")),
        drain_max_seconds=float(_env("LATAM_DRAIN_MAX_SECONDS", "15")),
        drain_idle_seconds=float(_env("LATAM_DRAIN_IDLE_SECONDS", "1.0")),
        max_message_bytes=int(_env("LATAM_MAX_MESSAGE_BYTES", str(1024 * 1024))),
        drain_max_bytes_in_flight=int(
            _env("LATAM_DRAIN_MAX_BYTES_IN_FLIGHT", str(48 * 1024 * 1024))
        ),
        delivery_limit=int(_env("LATAM_DELIVERY_LIMIT", "20")),
        sensor_interval_seconds=int(_env("LATAM_SENSOR_INTERVAL_SECONDS", "5")),
        sensor_min_depth=int(_env("LATAM_SENSOR_MIN_DEPTH", "1")),
        mart_sensor_interval_seconds=int(_env("LATAM_MART_SENSOR_INTERVAL_SECONDS", "300")),
        drain_runs=int(_env("LATAM_DRAIN_RUNS", "3")),
        drain_check_interval_seconds=float(_env("LATAM_DRAIN_CHECK_INTERVAL_SECONDS", "300")),
        pii_hash_key=_env("LATAM_PII_HASH_KEY", "local-dev-only-change-me"),
        partition_start=_env("LATAM_PARTITION_START", "2020-01-01"),
        log_level=_env("LATAM_LOG_LEVEL", "INFO"),
    )
