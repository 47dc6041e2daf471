-- API keys of the REST API. Only a SHA-256 hash of each key is stored; the key itself is shown
-- once, when it is created. A revoked key keeps its row (revoked_at set) for the audit trail.
CREATE SCHEMA IF NOT EXISTS api;

CREATE TABLE api.api_keys (
    key_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    key_prefix  text        NOT NULL,
    key_hash    bytea       NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    scopes      text[]      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- A name identifies at most one active key; revoked names can be reused.
CREATE UNIQUE INDEX api_keys_active_name_idx ON api.api_keys (name) WHERE revoked_at IS NULL;
