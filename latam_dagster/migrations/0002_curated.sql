-- Curated warehouse and daily marts: tables, bookkeeping for incremental updates, indexes.
-- The SQL that fills these tables lives in latam_dagster/assets/sql/{curated,marts}/<table>.sql.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- Lets a passenger's events be recomputed without reading the whole flight; it also serves every
-- lookup by flight_key, so the single-column index it replaces would only slow the drain down.
CREATE INDEX passenger_events_flight_passenger_idx
    ON raw.passenger_events (flight_key, passenger_ref);
DROP INDEX raw.passenger_events_flight_key_idx;

-- Incremental bookkeeping -------------------------------------------------------------------

-- How far each consumer has read each source, as a transaction id (xid8): every row written by a
-- transaction with an id below the watermark has been processed. Consumers advance it to the
-- oldest transaction still running when they started, so rows committed out of order are never
-- skipped.
CREATE TABLE curated.watermarks (
    consumer    text        NOT NULL,
    source      text        NOT NULL,
    xid         xid8        NOT NULL DEFAULT '0',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, source)
);

-- Flight dates whose curated flights changed, with an ever-growing change number. A mart partition
-- is up to date when it was refreshed after its date's latest change.
CREATE SEQUENCE curated.change_seq;
CREATE TABLE curated.changed_flight_dates (
    flight_date date        PRIMARY KEY,
    change_seq  bigint      NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE marts.partition_state (
    mart           text        NOT NULL,
    flight_date    date        NOT NULL,
    refreshed_seq  bigint      NOT NULL,
    rows           integer     NOT NULL,
    refreshed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mart, flight_date)
);

-- Reference ---------------------------------------------------------------------------------

CREATE TABLE curated.dim_airport (
    iata          text             PRIMARY KEY,
    icao          text,
    name          text             NOT NULL,
    city          text,
    subdivision   text,
    country       text,
    latitude      double precision NOT NULL,
    longitude     double precision NOT NULL,
    elevation_ft  integer,
    time_zone     text,
    updated_at    timestamptz      NOT NULL DEFAULT now(),
    updated_xid   xid8             NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX dim_airport_updated_xid_idx ON curated.dim_airport (updated_xid);

-- Curated -----------------------------------------------------------------------------------

CREATE TABLE curated.fact_flight (
    flight_key           text         PRIMARY KEY,
    carrier              text         NOT NULL,
    flight_number        integer      NOT NULL,
    flight_date          date         NOT NULL,
    origin               text         NOT NULL,
    destination          text         NOT NULL,
    status               text         NOT NULL,
    scheduled_departure  timestamptz,
    scheduled_arrival    timestamptz,
    actual_departure     timestamptz,
    actual_arrival       timestamptz,
    dep_delay_min        numeric(10, 2),
    arr_delay_min        numeric(10, 2),
    cancelled            boolean      NOT NULL,
    diverted             boolean      NOT NULL,
    arrived              boolean      NOT NULL,
    on_time              boolean,
    tail_number          text,
    seat_capacity        integer,
    distance_km          numeric(8, 1),
    first_event_time     timestamptz  NOT NULL,
    last_event_time      timestamptz  NOT NULL,
    event_count          integer      NOT NULL,
    updated_at           timestamptz  NOT NULL DEFAULT now(),
    updated_xid          xid8         NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX fact_flight_flight_date_idx ON curated.fact_flight (flight_date);
CREATE INDEX fact_flight_updated_xid_idx ON curated.fact_flight (updated_xid);

-- One row per passenger and flight: the passenger's latest action, identified by a keyed hash.
CREATE TABLE curated.flight_passenger (
    flight_key        text          NOT NULL,
    passenger_hash    text          NOT NULL,
    carrier           text          NOT NULL,
    flight_number     integer       NOT NULL,
    flight_date       date          NOT NULL,
    origin            text          NOT NULL,
    action            text          NOT NULL,
    cabin             text,
    fare_amount       numeric(12, 2),
    currency          text,
    last_event_time   timestamptz   NOT NULL,
    event_count       integer       NOT NULL,
    updated_at        timestamptz   NOT NULL DEFAULT now(),
    updated_xid       xid8          NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (flight_key, passenger_hash)
);
CREATE INDEX flight_passenger_updated_xid_idx ON curated.flight_passenger (updated_xid);

CREATE TABLE curated.flight_passenger_load (
    flight_key              text         PRIMARY KEY,
    carrier                 text         NOT NULL,
    flight_number           integer      NOT NULL,
    flight_date             date         NOT NULL,
    origin                  text         NOT NULL,
    passengers_booked       integer      NOT NULL,
    passengers_checked_in   integer      NOT NULL,
    passengers_boarded      integer      NOT NULL,
    passengers_cancelled    integer      NOT NULL,
    seat_capacity           integer,
    load_factor             numeric(8, 4),
    updated_at              timestamptz  NOT NULL DEFAULT now(),
    updated_xid             xid8         NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX flight_passenger_load_flight_date_idx ON curated.flight_passenger_load (flight_date);
CREATE INDEX flight_passenger_load_updated_xid_idx ON curated.flight_passenger_load (updated_xid);

CREATE TABLE curated.aircraft_position_latest (
    tail_number             text             PRIMARY KEY,
    latitude                double precision NOT NULL,
    longitude               double precision NOT NULL,
    altitude_ft             double precision,
    ground_speed_kt         double precision,
    heading_deg             double precision,
    event_time              timestamptz      NOT NULL,
    message_id              uuid             NOT NULL,
    source_system           text             NOT NULL,
    flight_key              text,
    flight_key_event_time   timestamptz,
    flight_key_message_id   uuid,
    updated_at              timestamptz      NOT NULL DEFAULT now(),
    updated_xid             xid8             NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX aircraft_position_latest_flight_key_idx ON curated.aircraft_position_latest (flight_key);

-- Marts -------------------------------------------------------------------------------------

CREATE TABLE marts.route_daily_performance (
    flight_date          date          NOT NULL,
    carrier              text          NOT NULL,
    origin               text          NOT NULL,
    destination          text          NOT NULL,
    flights              integer       NOT NULL,
    cancelled            integer       NOT NULL,
    diverted             integer       NOT NULL,
    arrived              integer       NOT NULL,
    on_time_arrivals     integer       NOT NULL,
    on_time_pct          numeric(5, 2),
    avg_dep_delay_min    numeric(10, 2),
    avg_arr_delay_min    numeric(10, 2),
    p90_arr_delay_min    numeric(10, 2),
    passengers_boarded   integer       NOT NULL,
    avg_load_factor      numeric(8, 4),
    refreshed_at         timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (flight_date, carrier, origin, destination)
);

CREATE TABLE marts.airport_daily_traffic (
    flight_date          date          NOT NULL,
    airport              text          NOT NULL,
    departures           integer       NOT NULL,
    arrivals             integer       NOT NULL,
    cancelled            integer       NOT NULL,
    avg_dep_delay_min    numeric(10, 2),
    avg_arr_delay_min    numeric(10, 2),
    refreshed_at         timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (flight_date, airport)
);
