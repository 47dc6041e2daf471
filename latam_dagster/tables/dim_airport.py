"""`curated.dim_airport`: the airports the platform knows, seeded from the airportsdata package."""

from latam_dagster.tables.limits import AIRPORT_CODE, in_range
from latam_dagster.tables.rules import Rule, gxe
from latam_dagster.tables.table import Endpoint, Table, columns

TABLE = Table(
    "curated",
    "dim_airport",
    key=("iata",),
    api_name="Airport",
    endpoint=Endpoint(
        path="/airports/<iata>",
        pattern=AIRPORT_CODE,
        pattern_error="must be a 3-letter IATA airport code in capitals",
        example="SCL",
        scope="airports:read",
        tag="Airports",
        noun="airport",
        summary="Get one airport",
        description="Reference data of `curated.dim_airport`.",
    ),
    columns=columns(
        "iata:text icao:text? name:text city:text? subdivision:text? country:text?"
        " latitude:float longitude:float elevation_ft:int? time_zone:text?"
    ),
    rules=(
        Rule(
            "airport_keys_valid",
            "Every airport has one row, keyed by a three-letter IATA code.",
            (
                gxe.ExpectColumnValuesToNotBeNull(column="iata"),
                gxe.ExpectColumnValuesToBeUnique(column="iata"),
                gxe.ExpectColumnValuesToMatchRegex(column="iata", regex=AIRPORT_CODE),
            ),
        ),
        Rule(
            "airport_coordinates_in_range",
            "Latitude within [-90, 90] and longitude within [-180, 180]: distances depend on them.",
            (in_range("latitude", -90, 90), in_range("longitude", -180, 180)),
        ),
        Rule(
            "airport_time_zone_known",
            "Airports without a time zone cannot place local flight dates.",
            (gxe.ExpectColumnValuesToNotBeNull(column="time_zone"),),
            blocking=False,
        ),
    ),
)
