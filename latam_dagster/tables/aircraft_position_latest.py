"""`curated.aircraft_position_latest`: the latest position report of each aircraft."""

from typing import Any

from latam_dagster.tables.limits import (
    ALTITUDE_MAX_FT,
    ALTITUDE_MIN_FT,
    MAX_GROUND_SPEED_KT,
    in_range,
    keys_present_and_unique,
)
from latam_dagster.tables.rules import ROW, Rule
from latam_dagster.tables.scope import xid
from latam_dagster.tables.table import Endpoint, Table, columns

TAIL_NUMBER = r"^[A-Z0-9][A-Z0-9-]{0,15}$"


def scope(cur: Any, marks: dict[str, int]) -> tuple[str, int | None]:
    """New position reports; they are merged with the current rows, not recomputed."""
    return f"p.ingest_xid >= '{xid(marks, 'raw.position_reports')}'::xid8", None


TABLE = Table(
    "curated",
    "aircraft_position_latest",
    key=("tail_number",),
    api_name="AircraftPosition",
    columns=columns(
        "tail_number:text latitude:float longitude:float altitude_ft:float?"
        " ground_speed_kt:float? heading_deg:float? event_time:timestamp message_id:text"
        " source_system:text flight_key:text?"
    ),
    endpoint=Endpoint(
        path="/aircraft/<tail_number>/position",
        pattern=TAIL_NUMBER,
        pattern_error="is not a tail number like CC-BGA",
        example="CC-BGA",
        scope="aircraft:read",
        tag="Aircraft",
        noun="position of aircraft",
        summary="Get an aircraft's latest position",
        description="The latest position report of the aircraft "
        "(`curated.aircraft_position_latest`), with the flight it was flying when a report "
        "named one.",
    ),
    inputs=("raw.position_reports",),
    scope=scope,
    audited=True,
    event_time_column="event_time",
    rules=(
        Rule(
            "position_keys_unique",
            "One latest position per aircraft (tail number).",
            keys_present_and_unique("tail_number"),
        ),
        Rule(
            "position_coordinates_in_range",
            "Latitude within [-90, 90], longitude within [-180, 180], heading within [0, 360).",
            (
                in_range("latitude", -90, 90),
                in_range("longitude", -180, 180),
                in_range("heading_deg", 0, 360, strict_max=True),
            ),
            level=ROW,
        ),
        Rule(
            "position_motion_plausible",
            f"Ground speed within [0, {MAX_GROUND_SPEED_KT}] kt and altitude within "
            f"[{ALTITUDE_MIN_FT}, {ALTITUDE_MAX_FT}] ft.",
            (
                in_range("ground_speed_kt", 0, MAX_GROUND_SPEED_KT),
                in_range("altitude_ft", ALTITUDE_MIN_FT, ALTITUDE_MAX_FT),
            ),
            blocking=False,
            level=ROW,
        ),
    ),
)
