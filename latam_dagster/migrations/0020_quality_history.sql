-- Data-quality history: every validation of a suite, and every evaluation of a check within it.
-- Written by the GX resource after each validation (in Dagster runs, or by hand); read by
-- `latam quality report` and by the REST API (latest result per check, history per check).

-- One GX validation of one suite (a table, or one of its partitions or date ranges).
CREATE TABLE quality.validation (
    validation_id   uuid        PRIMARY KEY,
    suite_name      text        NOT NULL,            -- e.g. curated.fact_flight
    asset_key       text        NOT NULL,            -- Dagster asset key, e.g. curated/fact_flight
    partition_key   text,                            -- 2026-11-27, 2026-11-01...2026-11-27, or NULL
    run_id          text,                            -- Dagster run id; NULL outside Dagster
    evaluated_at    timestamptz NOT NULL,
    success         boolean     NOT NULL,
    checks_evaluated integer    NOT NULL,
    checks_failed   integer     NOT NULL,
    duration_ms     integer     NOT NULL,
    data_docs_page  text                             -- path under the Data Docs folder
);
CREATE INDEX validation_suite_time_idx ON quality.validation (suite_name, evaluated_at DESC);

-- One row per check evaluation: the history the UI, the API and trend queries read.
CREATE TABLE quality.check_evaluation (
    evaluation_id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    validation_id          uuid        NOT NULL REFERENCES quality.validation ON DELETE CASCADE,
    check_name             text        NOT NULL, -- Dagster check name, e.g. flight_keys_unique
    asset_key              text        NOT NULL,
    table_name             text        NOT NULL, -- e.g. curated.fact_flight
    partition_key          text,
    run_id                 text,
    evaluated_at           timestamptz NOT NULL,
    success                boolean     NOT NULL,
    severity               text        NOT NULL CHECK (severity IN ('ERROR', 'WARN')),
    blocking               boolean     NOT NULL,
    description            text        NOT NULL,
    expectations_evaluated integer     NOT NULL,
    expectations_failed    integer     NOT NULL,
    element_count          bigint,              -- rows validated
    unexpected_count       bigint      NOT NULL, -- failing rows over the check's expectations
    unexpected_percent     double precision,    -- worst share of failing rows, in percent
    statistics             jsonb       NOT NULL, -- per expectation: observed values and counts
    failing_sample         jsonb       NOT NULL DEFAULT '[]'::jsonb, -- failing rows, by key
    unexpected_index_query text                  -- SQL returning every failing row
);
CREATE INDEX check_evaluation_check_time_idx
    ON quality.check_evaluation (asset_key, check_name, evaluated_at DESC, evaluation_id DESC);
CREATE INDEX check_evaluation_time_idx ON quality.check_evaluation (evaluated_at DESC);
CREATE INDEX check_evaluation_run_idx ON quality.check_evaluation (run_id);

-- The latest evaluation of every check (whatever the partition).
CREATE VIEW quality.latest_check_result AS
SELECT DISTINCT ON (asset_key, check_name) *
FROM quality.check_evaluation
ORDER BY asset_key, check_name, evaluated_at DESC, evaluation_id DESC;

-- The quarantine-rate checks count recent rows by arrival time; BRIN indexes make that a
-- lookup of the newest blocks (rows arrive in received_at order) at almost no write cost.
CREATE INDEX flight_events_received_at_brin ON raw.flight_events USING brin (received_at);
CREATE INDEX passenger_events_received_at_brin ON raw.passenger_events USING brin (received_at);
CREATE INDEX position_reports_received_at_brin ON raw.position_reports USING brin (received_at);
