-- Hostile ingestion: oversized bodies are quarantined truncated (their hash and size kept whole),
-- handling errors record the exception class, raw rows keep the hash of the body they came
-- from, and a message_id seen again with a different body is recorded (the first body wins).
ALTER TABLE raw.quarantine
    ADD COLUMN body_truncated boolean NOT NULL DEFAULT false,
    ADD COLUMN error_class    text;

ALTER TABLE raw.flight_events    ADD COLUMN body_sha256 bytea;
ALTER TABLE raw.passenger_events ADD COLUMN body_sha256 bytea;
ALTER TABLE raw.position_reports ADD COLUMN body_sha256 bytea;

CREATE TABLE raw.message_id_conflicts (
    conflict_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id         uuid        NOT NULL,
    raw_table          text        NOT NULL,
    source_system      text        NOT NULL,  -- of the message that lost
    kept_sha256        bytea       NOT NULL,  -- body already in raw (the first one wins)
    conflicting_sha256 bytea       NOT NULL,  -- body seen again under the same message_id
    first_seen_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at       timestamptz NOT NULL DEFAULT now(),
    times_seen         integer     NOT NULL DEFAULT 1,
    UNIQUE (message_id, conflicting_sha256)
);
CREATE INDEX message_id_conflicts_seen_idx ON raw.message_id_conflicts (last_seen_at);
