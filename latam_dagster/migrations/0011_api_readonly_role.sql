-- The role the REST API connects as: it reads curated, marts, quality and the hashed API keys,
-- and nothing else. raw (personal data) stays out of reach, and it cannot write anywhere.
-- Roles are cluster-wide while grants are per database, so the role is created only when it is
-- missing (several warehouses may share one server) and the grants are made here, per database.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'latam_api_reader') THEN
        CREATE ROLE latam_api_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT
            NOREPLICATION CONNECTION LIMIT 200;
        ALTER ROLE latam_api_reader SET default_transaction_read_only = on;
        ALTER ROLE latam_api_reader SET statement_timeout = '10s';
    END IF;
EXCEPTION
    -- another warehouse on the same server created it at the same moment
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

REVOKE ALL ON SCHEMA raw FROM latam_api_reader;
REVOKE ALL ON ALL TABLES IN SCHEMA raw FROM latam_api_reader;
REVOKE CREATE ON SCHEMA public FROM latam_api_reader;

GRANT USAGE ON SCHEMA curated, marts, quality, api TO latam_api_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA curated, marts, quality TO latam_api_reader;
GRANT SELECT (key_id, name, key_prefix, key_hash, scopes, created_at, revoked_at)
    ON api.api_keys TO latam_api_reader;

-- Tables and views created later in these schemas (by the role running migrations and assets)
-- are readable without another grant.
ALTER DEFAULT PRIVILEGES IN SCHEMA curated GRANT SELECT ON TABLES TO latam_api_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA marts GRANT SELECT ON TABLES TO latam_api_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA quality GRANT SELECT ON TABLES TO latam_api_reader;
