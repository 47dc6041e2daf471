"""Versioned event contracts (JSON Schema) and the validator the drain uses."""

from latam_dagster.contracts.validator import (
    EVENT_TYPES,
    FLIGHT_STATUSES,
    SUPPORTED_VERSIONS,
    InvalidEvent,
    ValidEvent,
    allowed_values,
    load_schema,
    validate_body,
    validate_event,
)

__all__ = [
    "EVENT_TYPES",
    "FLIGHT_STATUSES",
    "SUPPORTED_VERSIONS",
    "InvalidEvent",
    "ValidEvent",
    "allowed_values",
    "load_schema",
    "validate_body",
    "validate_event",
]
