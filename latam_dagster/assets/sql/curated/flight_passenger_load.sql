-- curated.flight_passenger_load: passenger counts and load factor per flight key.
--
-- A passenger counts by their latest action on the flight (curated.flight_passenger):
--   booked      = latest action is booked, checked_in or boarded
--   checked_in  = latest action is checked_in or boarded
--   boarded     = latest action is boarded
--   cancelled   = latest action is cancelled
-- load_factor = boarded / seat_capacity of the flight, null when the capacity is unknown (or zero).
-- Every computed flight (staging.fact_flight, held back or not) has a row, and so does every flight
-- with passengers. The statement writes staging.flight_passenger_load; the rows that pass their row
-- rules are then published to curated.flight_passenger_load in the same transaction.
--
-- As written, the statement rebuilds every flight. An incremental run replaces each
-- `TRUE /* scope */` with a filter on the flights whose passengers or flight row changed.
INSERT INTO staging.flight_passenger_load AS t (
    flight_key, carrier, flight_number, flight_date, origin,
    passengers_booked, passengers_checked_in, passengers_boarded, passengers_cancelled,
    seat_capacity, load_factor, updated_at, updated_xid
)
WITH flights AS (
    SELECT flight_key, carrier, flight_number, flight_date, origin
    FROM staging.fact_flight
    WHERE TRUE /* scope */
    UNION
    SELECT flight_key, carrier, flight_number, flight_date, origin
    FROM curated.flight_passenger
    WHERE TRUE /* scope */
),
counts AS (
    SELECT flight_key,
           count(*) FILTER (WHERE action IN ('booked', 'checked_in', 'boarded')) AS booked,
           count(*) FILTER (WHERE action IN ('checked_in', 'boarded')) AS checked_in,
           count(*) FILTER (WHERE action = 'boarded') AS boarded,
           count(*) FILTER (WHERE action = 'cancelled') AS cancelled
    FROM curated.flight_passenger
    WHERE TRUE /* scope */
    GROUP BY flight_key
)
SELECT fl.flight_key, fl.carrier, fl.flight_number, fl.flight_date, fl.origin,
       coalesce(c.booked, 0), coalesce(c.checked_in, 0), coalesce(c.boarded, 0),
       coalesce(c.cancelled, 0),
       f.seat_capacity,
       round(coalesce(c.boarded, 0)::numeric / nullif(f.seat_capacity, 0), 4),
       now(), pg_current_xact_id()
FROM flights AS fl
LEFT JOIN counts AS c ON c.flight_key = fl.flight_key
LEFT JOIN staging.fact_flight AS f ON f.flight_key = fl.flight_key
ON CONFLICT (flight_key) DO UPDATE SET
    passengers_booked = excluded.passengers_booked,
    passengers_checked_in = excluded.passengers_checked_in,
    passengers_boarded = excluded.passengers_boarded,
    passengers_cancelled = excluded.passengers_cancelled,
    seat_capacity = excluded.seat_capacity,
    load_factor = excluded.load_factor,
    updated_at = excluded.updated_at,
    updated_xid = excluded.updated_xid
WHERE (t.passengers_booked, t.passengers_checked_in, t.passengers_boarded,
       t.passengers_cancelled, t.seat_capacity)
      IS DISTINCT FROM
      (excluded.passengers_booked, excluded.passengers_checked_in, excluded.passengers_boarded,
       excluded.passengers_cancelled, excluded.seat_capacity)
