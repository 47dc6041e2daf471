-- curated.flight_event_history: every status event of a flight, in order, for the API.
--
-- A view over raw.flight_events that exposes no personal data (flight events carry none), so
-- readers of the curated schema can follow a flight without access to the raw layer. event_seq
-- numbers a flight's events by event_time, then message_id (the order that decides the curated
-- state); filtering on flight_key uses the raw flight_key index.
CREATE OR REPLACE VIEW curated.flight_event_history AS
SELECT e.flight_key,
       row_number() OVER (PARTITION BY e.flight_key ORDER BY e.event_time, e.message_id)
           AS event_seq,
       e.event_time,
       e.message_id,
       e.source_system,
       e.carrier,
       e.flight_number,
       e.flight_date,
       e.origin,
       e.destination,
       e.status,
       (e.payload ->> 'scheduled_departure')::timestamptz AS scheduled_departure,
       (e.payload ->> 'scheduled_arrival')::timestamptz   AS scheduled_arrival,
       (e.payload ->> 'actual_departure')::timestamptz    AS actual_departure,
       (e.payload ->> 'actual_arrival')::timestamptz      AS actual_arrival,
       e.payload ->> 'tail_number'                        AS tail_number,
       (e.payload ->> 'seat_capacity')::integer           AS seat_capacity,
       e.received_at
FROM raw.flight_events AS e;

COMMENT ON VIEW curated.flight_event_history IS
    'Ordered status events of each flight (no personal data); filter on flight_key.';

-- The REST API serves it; its role reads nothing else of raw. The view belongs to the role that
-- defines it (the pipeline's, migration 0033), which grants it.
GRANT SELECT ON curated.flight_event_history TO latam_api_reader;
