-- Raw layer: append-only events, one row per message_id, and the quarantine for bad input.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS curated;
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS quality;

-- ingest_seq orders rows by arrival; ingest_xid (the writing transaction) lets downstream
-- watermarks advance only past transactions that have finished, so rows committed out of
-- ingest_seq order are never skipped.
CREATE TABLE raw.flight_events (
    ingest_seq      bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    message_id      uuid PRIMARY KEY,
    schema_version  smallint    NOT NULL,
    event_type      text        NOT NULL,
    event_time      timestamptz NOT NULL,
    source_system   text        NOT NULL,
    routing_key     text,
    carrier         text        NOT NULL,
    flight_number   integer     NOT NULL,
    flight_date     date        NOT NULL,
    origin          text        NOT NULL,
    destination     text        NOT NULL,
    status          text        NOT NULL,
    flight_key      text        NOT NULL,
    payload         jsonb       NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    ingest_xid      xid8        NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX flight_events_flight_key_idx ON raw.flight_events (flight_key);
CREATE INDEX flight_events_ingest_xid_idx ON raw.flight_events (ingest_xid);

CREATE TABLE raw.passenger_events (
    ingest_seq      bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    message_id      uuid PRIMARY KEY,
    schema_version  smallint    NOT NULL,
    event_type      text        NOT NULL,
    event_time      timestamptz NOT NULL,
    source_system   text        NOT NULL,
    routing_key     text,
    passenger_ref   text        NOT NULL,
    carrier         text        NOT NULL,
    flight_number   integer     NOT NULL,
    flight_date     date        NOT NULL,
    origin          text        NOT NULL,
    action          text        NOT NULL,
    flight_key      text        NOT NULL,
    payload         jsonb       NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    ingest_xid      xid8        NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX passenger_events_flight_key_idx ON raw.passenger_events (flight_key);
CREATE INDEX passenger_events_ingest_xid_idx ON raw.passenger_events (ingest_xid);

CREATE TABLE raw.position_reports (
    ingest_seq      bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    message_id      uuid PRIMARY KEY,
    schema_version  smallint         NOT NULL,
    event_type      text             NOT NULL,
    event_time      timestamptz      NOT NULL,
    source_system   text             NOT NULL,
    routing_key     text,
    tail_number     text             NOT NULL,
    latitude        double precision NOT NULL,
    longitude       double precision NOT NULL,
    flight_key      text,
    payload         jsonb            NOT NULL,
    received_at     timestamptz      NOT NULL DEFAULT now(),
    ingest_xid      xid8             NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX position_reports_tail_idx ON raw.position_reports (tail_number);
CREATE INDEX position_reports_ingest_xid_idx ON raw.position_reports (ingest_xid);

-- Bad input, kept byte for byte. body_sha256 + queue make a redelivery land on the same row.
CREATE TABLE raw.quarantine (
    quarantine_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue           text        NOT NULL,
    routing_key     text,
    reason          text        NOT NULL,
    message_id      text,
    body            bytea       NOT NULL,
    body_sha256     bytea       NOT NULL,
    body_bytes      integer     NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    replayed_at     timestamptz,
    replay_result   text,
    UNIQUE (queue, body_sha256)
);
CREATE INDEX quarantine_open_idx ON raw.quarantine (received_at) WHERE replayed_at IS NULL;
