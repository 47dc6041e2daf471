-- Indexes for the REST API's keyset pagination of flights, ordered by (flight_date, flight_key):
-- any page, however deep, is then an index range scan instead of a sort of the whole table.
-- The second serves the most common filter, one airport's departures (with or without a date):
-- with origin (and flight_date) fixed by equality, its order is the list's order.
CREATE INDEX IF NOT EXISTS fact_flight_date_key_idx
    ON curated.fact_flight (flight_date, flight_key);
CREATE INDEX IF NOT EXISTS fact_flight_origin_date_key_idx
    ON curated.fact_flight (origin, flight_date, flight_key);
