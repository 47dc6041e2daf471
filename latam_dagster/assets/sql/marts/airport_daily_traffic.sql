-- marts.airport_daily_traffic: one row per flight date and airport.
--
-- Refreshes the flight dates listed in the temporary table scope_dates (the partitions of the run):
-- their rows are replaced in one transaction, so readers see either the old or the new day.
-- To run it by hand: CREATE TEMP TABLE scope_dates AS SELECT DATE '2026-11-27' AS flight_date;
--
--   departures         flights of the day leaving the airport, not cancelled
--   arrivals           flights of the day bound for the airport, neither cancelled nor diverted
--   cancelled          cancelled flights leaving or bound for the airport
--   avg_dep_delay_min  mean departure delay of its departures whose delay is known
--   avg_arr_delay_min  mean arrival delay of its arrivals whose delay is known
-- The day is the flight date (scheduled departure date at the origin) for both directions.
DELETE FROM marts.airport_daily_traffic
WHERE flight_date IN (SELECT flight_date FROM scope_dates);

INSERT INTO marts.airport_daily_traffic (
    flight_date, airport, departures, arrivals, cancelled, avg_dep_delay_min, avg_arr_delay_min
)
WITH flights AS (
    SELECT flight_key, flight_date, origin, destination, cancelled, diverted,
           dep_delay_min, arr_delay_min
    FROM curated.fact_flight
    WHERE flight_date IN (SELECT flight_date FROM scope_dates)
),
movements AS (
    SELECT flight_key, flight_date, origin AS airport, 'departure' AS direction,
           cancelled, diverted, dep_delay_min AS delay_min
    FROM flights
    UNION ALL
    SELECT flight_key, flight_date, destination AS airport, 'arrival' AS direction,
           cancelled, diverted, arr_delay_min AS delay_min
    FROM flights
)
SELECT flight_date, airport,
       count(*) FILTER (WHERE direction = 'departure' AND NOT cancelled) AS departures,
       count(*) FILTER (WHERE direction = 'arrival' AND NOT cancelled AND NOT diverted)
           AS arrivals,
       count(DISTINCT flight_key) FILTER (WHERE cancelled) AS cancelled,
       round(avg(delay_min) FILTER (WHERE direction = 'departure' AND NOT cancelled), 2)
           AS avg_dep_delay_min,
       round(avg(delay_min) FILTER (WHERE direction = 'arrival' AND NOT cancelled
                                    AND NOT diverted), 2) AS avg_arr_delay_min
FROM movements
GROUP BY flight_date, airport;
