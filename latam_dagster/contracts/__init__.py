"""Versioned event contracts (JSON Schema) and the validator the drain uses."""

from latam_dagster.contracts.validator import (
    EVENT_TYPES,
    SUPPORTED_VERSIONS,
    InvalidEvent,
    ValidEvent,
    load_schema,
    validate_body,
    validate_event,
)

__all__ = [
    "EVENT_TYPES",
    "SUPPORTED_VERSIONS",
    "InvalidEvent",
    "ValidEvent",
    "load_schema",
    "validate_body",
    "validate_event",
]
