-- marts.route_daily_performance: one row per flight date, carrier and route (origin, destination).
--
-- Refreshes the flight dates listed in the temporary table scope_dates (the partitions of the run):
-- their rows are replaced in one transaction, so readers see either the old or the new day.
-- To run it by hand: CREATE TEMP TABLE scope_dates AS SELECT DATE '2026-11-27' AS flight_date;
--
--   flights            flights of the day on the route (curated.fact_flight)
--   cancelled/diverted latest status cancelled / diverted
--   arrived            latest status arrived
--   on_time_arrivals   arrived with arr_delay_min < 15
--   on_time_pct        on_time_arrivals / arrived x 100 (null when none arrived)
--   avg_dep_delay_min  mean departure delay of the flights whose delay is known
--   avg_arr_delay_min, p90_arr_delay_min  over arrived flights whose arrival delay is known
--                      (p90 interpolates linearly, like percentile_cont)
--   passengers_boarded sum of curated.flight_passenger_load.passengers_boarded
--   avg_load_factor    mean load factor of the flights where it is known
DELETE FROM marts.route_daily_performance
WHERE flight_date IN (SELECT flight_date FROM scope_dates);

INSERT INTO marts.route_daily_performance (
    flight_date, carrier, origin, destination, flights, cancelled, diverted, arrived,
    on_time_arrivals, on_time_pct, avg_dep_delay_min, avg_arr_delay_min, p90_arr_delay_min,
    passengers_boarded, avg_load_factor
)
SELECT f.flight_date, f.carrier, f.origin, f.destination,
       count(*) AS flights,
       count(*) FILTER (WHERE f.cancelled) AS cancelled,
       count(*) FILTER (WHERE f.diverted) AS diverted,
       count(*) FILTER (WHERE f.arrived) AS arrived,
       count(*) FILTER (WHERE f.on_time) AS on_time_arrivals,
       round(100.0 * count(*) FILTER (WHERE f.on_time)
             / nullif(count(*) FILTER (WHERE f.arrived), 0), 2) AS on_time_pct,
       round(avg(f.dep_delay_min), 2) AS avg_dep_delay_min,
       round(avg(f.arr_delay_min) FILTER (WHERE f.arrived), 2) AS avg_arr_delay_min,
       round((percentile_cont(0.9) WITHIN GROUP (ORDER BY f.arr_delay_min)
              FILTER (WHERE f.arrived))::numeric, 2) AS p90_arr_delay_min,
       coalesce(sum(l.passengers_boarded), 0) AS passengers_boarded,
       round(avg(l.load_factor), 4) AS avg_load_factor
FROM curated.fact_flight AS f
LEFT JOIN curated.flight_passenger_load AS l ON l.flight_key = f.flight_key
WHERE f.flight_date IN (SELECT flight_date FROM scope_dates)
GROUP BY f.flight_date, f.carrier, f.origin, f.destination;
