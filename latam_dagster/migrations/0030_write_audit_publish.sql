-- Write-audit-publish for the curated layer.
--
-- staging.<table> holds what the curated SQL computed for every key, whether or not it passed its
-- row rules; curated.<table> holds only the published rows (the ones that passed). The API, the
-- marts and the exporter read curated.*; the curated SQL itself reads and writes staging.*, so a
-- held-back row is recomputed and re-audited when its inputs change. The API role has no access to
-- staging: nothing unaudited can reach it.
CREATE SCHEMA IF NOT EXISTS staging;

CREATE TABLE staging.fact_flight (LIKE curated.fact_flight INCLUDING ALL);
CREATE TABLE staging.flight_passenger_load (LIKE curated.flight_passenger_load INCLUDING ALL);
CREATE TABLE staging.aircraft_position_latest
    (LIKE curated.aircraft_position_latest INCLUDING ALL);
-- The audit checks that no two flights share (carrier, flight_number, flight_date, origin): one
-- lookup per audited row. Led by flight_date, it also serves what the date index copied from
-- curated did.
CREATE INDEX staging_fact_flight_parts_idx
    ON staging.fact_flight (flight_date, carrier, flight_number, origin);
DROP INDEX staging.fact_flight_flight_date_idx;
CREATE INDEX staging_aircraft_position_latest_updated_xid_idx
    ON staging.aircraft_position_latest (updated_xid);

-- A warehouse that already holds curated rows starts with them as its computed state.
INSERT INTO staging.fact_flight SELECT * FROM curated.fact_flight;
INSERT INTO staging.flight_passenger_load SELECT * FROM curated.flight_passenger_load;
INSERT INTO staging.aircraft_position_latest SELECT * FROM curated.aircraft_position_latest;

-- Rows held back by a row rule: one row per (table, key, rule) while the row fails it. Observed
-- values are the rule's columns only (the audited tables carry no personal data).
CREATE TABLE quality.rejects (
    table_name  text        NOT NULL,               -- e.g. curated.fact_flight
    row_key     text        NOT NULL,               -- the table's key, e.g. LA800-2026-11-27-SCL
    rule        text        NOT NULL,               -- e.g. flight_airports_known
    flight_date date,                               -- when the table has one
    observed    jsonb       NOT NULL,               -- the rule's columns, as last audited
    run_id      text,                               -- the Dagster run of the latest audit
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, row_key, rule)
);
CREATE INDEX rejects_rule_idx ON quality.rejects (table_name, rule);

-- One row per audit of a micro-batch of one table: what the reports and charts count over time.
CREATE TABLE quality.audit_batch (
    audit_id       bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name     text             NOT NULL,
    run_id         text,
    audited_at     timestamptz      NOT NULL DEFAULT now(),
    audited_rows   integer          NOT NULL,   -- rows of the batch (changed or re-audited)
    published_rows integer          NOT NULL,   -- rows that passed and were published
    held_rows      integer          NOT NULL,   -- rows held back by at least one row rule
    reject_pct     double precision NOT NULL,   -- held_rows / audited_rows, in percent
    blocked        boolean          NOT NULL,   -- a table rule failed: nothing was published
    reason         text,                        -- why it blocked
    rule_counts    jsonb            NOT NULL DEFAULT '{}'::jsonb,  -- rule -> failing rows
    failing_keys   jsonb            NOT NULL DEFAULT '{}'::jsonb,  -- rule -> first 20 keys
    seconds        double precision NOT NULL DEFAULT 0
);
CREATE INDEX audit_batch_table_time_idx ON quality.audit_batch (table_name, audited_at DESC);
CREATE INDEX audit_batch_time_idx ON quality.audit_batch (audited_at);
