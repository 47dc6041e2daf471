-- Least privilege: each process logs in as a role of its own, with what it needs and no more.
--
--   owner (the user of LATAM_WAREHOUSE_URL): owns the schema; `latam migrate`, `latam init` and
--     the admin commands (API keys, quarantine replay) run as it.
--   latam_pipeline: the Dagster code location and its runs. Reads and writes the data of raw,
--     staging, curated, marts and quality; runs no DDL but temporary tables and the one view it
--     defines, curated.flight_event_history, which it owns.
--   latam_exporter: the metrics exporter. Read-only; of the raw layer it reads only the columns it
--     measures (no passenger_ref, no payload, no quarantined body), of curated.flight_passenger
--     only times and keys (no passenger_hash).
--   latam_api_reader (migration 0011): the REST API. Read-only, on exactly the relations it
--     serves: no curated.flight_passenger, no staging, no raw.
-- Read-only roles have default_transaction_read_only and a statement_timeout of their own, and
-- lack every write privilege, so `BEGIN READ WRITE` gains them nothing. Nobody but the pipeline
-- may create temporary objects (a temporary table or function is a way to run or keep what the
-- grants do not allow), and nobody but the owner may create objects in public.
--
-- Roles are cluster-wide and grants are per database: the roles are created when missing (several
-- warehouses may share one server) and the grants are made here, in each warehouse. A database
-- keeps its own privileges (TEMPORARY, CONNECT) in the server's catalog: a copy made with CREATE
-- DATABASE ... TEMPLATE starts with the defaults again, so make warehouses by migrating them.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['latam_pipeline', 'latam_exporter'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format(
                    'CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT '
                    'NOREPLICATION', role_name);
            EXCEPTION
                -- another warehouse on the same server created it at the same moment
                WHEN duplicate_object OR unique_violation THEN NULL;
            END;
        END IF;
    END LOOP;
    -- The owner hands the view to the pipeline below: a non-superuser owner may do that only as
    -- a member of the pipeline's role (which it is anyway: the owner may do all the pipeline does).
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT latam_pipeline TO %I', current_user);
    END IF;
END
$$;

ALTER ROLE latam_api_reader SET default_transaction_read_only = on;
ALTER ROLE latam_api_reader SET statement_timeout = '10s';
ALTER ROLE latam_exporter SET default_transaction_read_only = on;
ALTER ROLE latam_exporter SET statement_timeout = '60s';

-- The database: no temporary objects but the pipeline's; no objects in public but the owner's.
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO latam_pipeline', current_database());
END
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- The API: exactly the relations it serves (and curated.flight_event_history, below), the columns
-- of the keys it checks, and the applied migration versions. Whatever migration 0011 granted by
-- schema (and by default for tables to come) is taken back first.
REVOKE ALL ON ALL TABLES IN SCHEMA raw, staging, curated, marts, quality, api
    FROM latam_api_reader;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA raw, staging, curated, marts, quality, api
    FROM latam_api_reader;
REVOKE ALL ON SCHEMA raw, staging FROM latam_api_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA curated REVOKE ALL ON TABLES FROM latam_api_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA marts REVOKE ALL ON TABLES FROM latam_api_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA quality REVOKE ALL ON TABLES FROM latam_api_reader;
GRANT USAGE ON SCHEMA curated, marts, quality, api TO latam_api_reader;
GRANT SELECT ON
    curated.fact_flight,
    curated.flight_passenger_load,
    curated.dim_airport,
    curated.aircraft_position_latest,
    marts.route_daily_performance,
    marts.airport_daily_traffic,
    quality.latest_check_result,
    quality.check_evaluation,
    quality.rejects,
    quality.audit_batch
    TO latam_api_reader;
GRANT SELECT (key_id, name, key_prefix, key_hash, scopes, created_at, revoked_at)
    ON api.api_keys TO latam_api_reader;
GRANT SELECT (version) ON public.schema_migrations TO latam_api_reader;

-- The view the API serves belongs to the pipeline, which (re)defines it and grants it to the API
-- (assets/sql/curated/flight_event_history.sql); a view made before this migration passes to it.
DO $$
BEGIN
    IF to_regclass('curated.flight_event_history') IS NOT NULL THEN
        GRANT SELECT ON curated.flight_event_history TO latam_api_reader;
        ALTER VIEW curated.flight_event_history OWNER TO latam_pipeline;
    END IF;
END
$$;

-- The pipeline: the data of every layer it computes, the sequences behind it, the function that
-- hands it the PII hash key. Of the key's fingerprint it may read and record the first one, never
-- change it. It owns the view it (re)defines, which needs CREATE on curated.
GRANT USAGE ON SCHEMA raw, staging, curated, marts, quality TO latam_pipeline;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE
    ON ALL TABLES IN SCHEMA raw, staging, curated, marts, quality TO latam_pipeline;
GRANT USAGE, SELECT, UPDATE
    ON ALL SEQUENCES IN SCHEMA raw, staging, curated, marts, quality TO latam_pipeline;
REVOKE UPDATE, DELETE, TRUNCATE ON curated.pii_key_fingerprint FROM latam_pipeline;
GRANT EXECUTE ON FUNCTION curated.pii_hash_key() TO latam_pipeline;
GRANT SELECT (version) ON public.schema_migrations TO latam_pipeline;
GRANT CREATE ON SCHEMA curated TO latam_pipeline;
ALTER DEFAULT PRIVILEGES IN SCHEMA raw, staging, curated, marts, quality
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO latam_pipeline;
ALTER DEFAULT PRIVILEGES IN SCHEMA raw, staging, curated, marts, quality
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO latam_pipeline;

-- The exporter: row counts of every table it reads, ingest and freshness times, queue and rule
-- counters. Tables it may not read are left out of its metrics.
GRANT USAGE ON SCHEMA raw, curated, marts, quality TO latam_exporter;
GRANT SELECT (source_system, routing_key, event_time, received_at, ingest_xid)
    ON raw.flight_events, raw.passenger_events, raw.position_reports TO latam_exporter;
GRANT SELECT (queue, routing_key, received_at, replayed_at) ON raw.quarantine TO latam_exporter;
GRANT SELECT (message_id, raw_table, source_system, times_seen)
    ON raw.message_id_conflicts TO latam_exporter;
GRANT SELECT ON
    curated.watermarks,
    curated.changed_flight_dates,
    curated.dim_airport,
    curated.fact_flight,
    curated.flight_passenger_load,
    curated.aircraft_position_latest
    TO latam_exporter;
GRANT SELECT (flight_key, flight_date, last_event_time, updated_at, updated_xid)
    ON curated.flight_passenger TO latam_exporter;
GRANT SELECT ON ALL TABLES IN SCHEMA marts, quality TO latam_exporter;
GRANT SELECT (version) ON public.schema_migrations TO latam_exporter;
ALTER DEFAULT PRIVILEGES IN SCHEMA marts, quality GRANT SELECT ON TABLES TO latam_exporter;
