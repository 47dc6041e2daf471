"""Codes and plausible bounds shared by the tables' rules.

The limits are the bounds of the business, not of the column types; widen them here, in review,
when the business changes.
"""

from __future__ import annotations

from latam_dagster.tables.rules import Expect, gxe

CARRIER_CODE = r"^[A-Z0-9]{2}$"
AIRPORT_CODE = r"^[A-Z]{3}$"
# {carrier}{flight_number}-{flight_date}-{origin}, the number without leading zeros
FLIGHT_KEY = r"^[A-Z0-9]{2}[1-9][0-9]{0,3}-[0-9]{4}-[0-9]{2}-[0-9]{2}-[A-Z]{3}$"
DELAY_MIN, DELAY_MAX = -180, 2880  # 3 h early .. 48 h late, in minutes
MAX_SEATS = 1000  # the largest airliners seat about 850
MAX_LOAD_FACTOR = 1.05  # boarded / seats: a few lap infants at most above a full cabin
MAX_DISTANCE_KM = 20100  # half the Earth's circumference
MAX_GROUND_SPEED_KT = 800
ALTITUDE_MIN_FT, ALTITUDE_MAX_FT = -1500, 60000


def in_range(column: str, low: float | None, high: float | None, **extra: object) -> Expect:
    return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high, **extra)


def at_least(column_a: str, column_b: str, **extra: object) -> Expect:
    """`column_a` >= `column_b` on every row (a pair with a missing value passes)."""
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=column_a, column_B=column_b, or_equal=True, **extra
    )


def delays_plausible(*columns: str) -> tuple[Expect, ...]:
    """Each of `columns`, in minutes, between DELAY_MIN and DELAY_MAX."""
    return tuple(in_range(column, DELAY_MIN, DELAY_MAX) for column in columns)


def known_airport(column: str) -> Expect:
    return gxe.ExpectColumnValuesToBeInReferenceTable(
        column=column, reference_table="curated.dim_airport", reference_column="iata"
    )


def keys_present_and_unique(column: str) -> tuple[Expect, Expect]:
    return (
        gxe.ExpectColumnValuesToNotBeNull(column=column),
        gxe.ExpectColumnValuesToBeUnique(column=column),
    )
