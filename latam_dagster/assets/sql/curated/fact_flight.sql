-- curated.fact_flight: one row per flight key (LA800-2026-11-27-SCL), built from raw.flight_events.
--
-- Events may arrive partial, duplicated and out of order. Each field takes its value from the latest
-- event (by event_time, then message_id) that carries it, so a missing or null field never erases a
-- known value; status comes from the latest event. Delays are actual minus scheduled, in minutes
-- (negative = early). A flight is on time when it arrived and arr_delay_min < 15. distance_km is the
-- great-circle distance between the two airports of curated.dim_airport.
--
-- It writes staging.fact_flight, the computed state of every flight; the rows that pass their row
-- rules are then published to curated.fact_flight in the same transaction.
--
-- As written, the statement rebuilds every flight. An incremental run replaces `TRUE /* scope */`
-- with a filter on the flights its batch touched (using the flight_key index).
INSERT INTO staging.fact_flight AS t (
    flight_key, carrier, flight_number, flight_date, origin, destination, status,
    scheduled_departure, scheduled_arrival, actual_departure, actual_arrival,
    dep_delay_min, arr_delay_min, cancelled, diverted, arrived, on_time,
    tail_number, seat_capacity, distance_km,
    first_event_time, last_event_time, event_count, updated_at, updated_xid
)
WITH events AS (
    SELECT e.flight_key, e.carrier, e.flight_number, e.flight_date, e.origin, e.destination,
           e.status, e.event_time, e.message_id,
           (e.payload ->> 'scheduled_departure')::timestamptz AS scheduled_departure,
           (e.payload ->> 'scheduled_arrival')::timestamptz   AS scheduled_arrival,
           (e.payload ->> 'actual_departure')::timestamptz    AS actual_departure,
           (e.payload ->> 'actual_arrival')::timestamptz      AS actual_arrival,
           e.payload ->> 'tail_number'                        AS tail_number,
           (e.payload ->> 'seat_capacity')::integer           AS seat_capacity
    FROM raw.flight_events AS e
    WHERE TRUE /* scope */
),
flights AS (
    SELECT flight_key,
           -- the key parts are the same on every event of a flight
           min(carrier) AS carrier, min(flight_number) AS flight_number,
           min(flight_date) AS flight_date, min(origin) AS origin,
           (array_agg(destination ORDER BY event_time DESC, message_id DESC))[1] AS destination,
           (array_agg(status ORDER BY event_time DESC, message_id DESC))[1] AS status,
           (array_agg(scheduled_departure ORDER BY event_time DESC, message_id DESC)
               FILTER (WHERE scheduled_departure IS NOT NULL))[1] AS scheduled_departure,
           (array_agg(scheduled_arrival ORDER BY event_time DESC, message_id DESC)
               FILTER (WHERE scheduled_arrival IS NOT NULL))[1] AS scheduled_arrival,
           (array_agg(actual_departure ORDER BY event_time DESC, message_id DESC)
               FILTER (WHERE actual_departure IS NOT NULL))[1] AS actual_departure,
           (array_agg(actual_arrival ORDER BY event_time DESC, message_id DESC)
               FILTER (WHERE actual_arrival IS NOT NULL))[1] AS actual_arrival,
           (array_agg(tail_number ORDER BY event_time DESC, message_id DESC)
               FILTER (WHERE tail_number IS NOT NULL))[1] AS tail_number,
           (array_agg(seat_capacity ORDER BY event_time DESC, message_id DESC)
               FILTER (WHERE seat_capacity IS NOT NULL))[1] AS seat_capacity,
           min(event_time) AS first_event_time,
           max(event_time) AS last_event_time,
           count(*) AS event_count
    FROM events
    GROUP BY flight_key
),
delays AS (
    SELECT f.*,
           round(extract(epoch FROM f.actual_departure - f.scheduled_departure) / 60, 2)
               AS dep_delay_min,
           round(extract(epoch FROM f.actual_arrival - f.scheduled_arrival) / 60, 2)
               AS arr_delay_min
    FROM flights AS f
)
SELECT f.flight_key, f.carrier, f.flight_number, f.flight_date, f.origin, f.destination, f.status,
       f.scheduled_departure, f.scheduled_arrival, f.actual_departure, f.actual_arrival,
       f.dep_delay_min, f.arr_delay_min,
       f.status = 'cancelled' AS cancelled,
       f.status = 'diverted' AS diverted,
       f.status = 'arrived' AS arrived,
       f.status = 'arrived' AND f.arr_delay_min < 15 AS on_time,
       f.tail_number, f.seat_capacity,
       round((2 * 6371.0088 * asin(sqrt(
           sin(radians(d.latitude - o.latitude) / 2) ^ 2
           + cos(radians(o.latitude)) * cos(radians(d.latitude))
             * sin(radians(d.longitude - o.longitude) / 2) ^ 2)))::numeric, 1) AS distance_km,
       f.first_event_time, f.last_event_time, f.event_count,
       now(), pg_current_xact_id()
FROM delays AS f
LEFT JOIN curated.dim_airport AS o ON o.iata = f.origin
LEFT JOIN curated.dim_airport AS d ON d.iata = f.destination
ON CONFLICT (flight_key) DO UPDATE SET
    destination = excluded.destination,
    status = excluded.status,
    scheduled_departure = excluded.scheduled_departure,
    scheduled_arrival = excluded.scheduled_arrival,
    actual_departure = excluded.actual_departure,
    actual_arrival = excluded.actual_arrival,
    dep_delay_min = excluded.dep_delay_min,
    arr_delay_min = excluded.arr_delay_min,
    cancelled = excluded.cancelled,
    diverted = excluded.diverted,
    arrived = excluded.arrived,
    on_time = excluded.on_time,
    tail_number = excluded.tail_number,
    seat_capacity = excluded.seat_capacity,
    distance_km = excluded.distance_km,
    first_event_time = excluded.first_event_time,
    last_event_time = excluded.last_event_time,
    event_count = excluded.event_count,
    updated_at = excluded.updated_at,
    updated_xid = excluded.updated_xid
-- an unchanged flight keeps its row untouched, so nothing downstream recomputes for it
WHERE (t.destination, t.status, t.scheduled_departure, t.scheduled_arrival, t.actual_departure,
       t.actual_arrival, t.tail_number, t.seat_capacity, t.distance_km, t.first_event_time,
       t.last_event_time, t.event_count)
      IS DISTINCT FROM
      (excluded.destination, excluded.status, excluded.scheduled_departure,
       excluded.scheduled_arrival, excluded.actual_departure, excluded.actual_arrival,
       excluded.tail_number, excluded.seat_capacity, excluded.distance_km,
       excluded.first_event_time, excluded.last_event_time, excluded.event_count)
