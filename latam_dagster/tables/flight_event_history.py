"""`curated.flight_event_history`: a view of every flight status event in decision order."""

from latam_dagster.tables.table import Table, columns

TABLE = Table(
    "curated",
    "flight_event_history",
    key=("flight_key", "event_seq"),
    view=True,
    api_name="FlightEvent",
    columns=columns(
        "flight_key:text event_seq:int event_time:timestamp message_id:text source_system:text"
        " carrier:text flight_number:int flight_date:date origin:text destination:text status:text"
        " scheduled_departure:timestamp? scheduled_arrival:timestamp?"
        " actual_departure:timestamp? actual_arrival:timestamp? tail_number:text?"
        " seat_capacity:int? received_at:timestamp"
    ),
)
