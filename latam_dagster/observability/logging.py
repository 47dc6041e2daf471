"""Structured JSON logs for every process of the platform.

One line per record, one JSON object per line, with the same field names everywhere so that Loki
(or Elasticsearch) can index them: `ts`, `level`, `logger`, `message`, `service`, `pid`, and the
correlation ids when they are known: `run_id` (Dagster run), `message_id` (an event), `request_id`
(an API request). Ids come from three places, in this order of precedence:

1. `extra={...}` on the logging call (`log.warning("quarantined", extra={"message_id": mid})`);
2. Dagster's own metadata on records logged through `context.log` (run_id, job, step);
3. `log_context(...)`, which binds ids to the current thread or task (contextvars).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

CORRELATION_FIELDS = ("run_id", "message_id", "request_id")
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, Any]] = ContextVar("latam_log_context", default=_EMPTY)
_HOST = socket.gethostname()
# attributes Dagster puts on its records; they hold objects that are not JSON
_DAGSTER_ATTRS = ("dagster_meta", "dagster_event_batch_metadata")
NOISY_LOGGERS = ("pika", "urllib3")


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach `fields` (run_id=..., request_id=...) to every record logged inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> object:
    """Like `log_context`, for code that cannot use a `with` block; pass the result to `unbind`."""
    return _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def unbind(token: object) -> None:
    _context.reset(token)  # type: ignore[arg-type]


def current_context() -> dict[str, Any]:
    """The ids bound to the current thread or task."""
    return dict(_context.get())


class JsonFormatter(_BaseJsonFormatter):
    """The platform's log line: stable field names, RFC 3339 UTC time, correlation ids.

    Usable from `logging.config.dictConfig` (and so from dagster.yaml and gunicorn) as
    `{"()": "latam_dagster.observability.logging.JsonFormatter", "service": "..."}`.
    """

    def __init__(self, *args: Any, service: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(*args, **kwargs)
        self.service = service or os.environ.get("LATAM_SERVICE_NAME") or "latam"

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_record, record, message_dict)
        meta = getattr(record, "dagster_meta", None)
        for attr in _DAGSTER_ATTRS:
            log_record.pop(attr, None)
        log_record.pop("color_message", None)
        fields: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage() if meta is None else meta.get("orig_message"),
            "service": self.service,
            "host": _HOST,
            "pid": record.process,
        }
        if isinstance(meta, Mapping):
            fields["run_id"] = meta.get("run_id")
            fields["job"] = meta.get("job_name")
            fields["step"] = meta.get("step_key")
            event = meta.get("dagster_event")
            if event is not None:
                fields["dagster_event"] = getattr(event, "event_type_value", None)
        for key, value in _context.get().items():
            fields.setdefault(key, value)
        # an id passed explicitly with `extra=` wins over both
        for key in CORRELATION_FIELDS:
            if log_record.get(key) is not None:
                fields[key] = log_record.pop(key)
        log_record.pop("message", None)
        log_record.update({k: v for k, v in fields.items() if v is not None})
        if record.exc_info and "exc_info" in log_record:
            log_record["error"] = log_record.pop("exc_info")

    def process_log_record(self, log_record: dict[str, Any]) -> dict[str, Any]:
        # the fixed fields first, in a stable order, for people reading raw lines
        order = ("ts", "level", "service", "logger", "message", *CORRELATION_FIELDS)
        head = {k: log_record.pop(k) for k in order if k in log_record}
        return {**head, **log_record}


def json_formatter_config(service: str) -> dict[str, Any]:
    """A dictConfig formatter entry producing the platform's JSON lines."""
    return {"()": f"{__name__}.JsonFormatter", "service": service}


def configure_logging(
    service: str,
    level: str | None = None,
    stream: IO[str] | None = None,
    fmt: str | None = None,
) -> logging.Handler:
    """Send every log record of this process to `stream` (stderr) as one JSON line.

    `fmt` is "json" (default, LATAM_LOG_FORMAT) or "text" for a person at a terminal. Replaces the
    root logger's handlers, so calling it twice does not duplicate lines. Returns the handler.
    """
    from latam_dagster.settings import get_settings

    settings = get_settings()
    level = (level or settings.log_level).upper()
    fmt = (fmt or settings.log_format).lower()
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter(service=service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in NOISY_LOGGERS:  # connection chatter at INFO drowns the platform's own lines
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler


def gunicorn_logconfig(service: str = "api", level: str = "INFO") -> dict[str, Any]:
    """A gunicorn `logconfig_dict` that writes its error and access logs as JSON lines."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": json_formatter_config(service)},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }
