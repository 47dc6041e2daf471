-- The fingerprint of the PII hash key (LATAM_PII_HASH_KEY) that curated.flight_passenger's
-- passenger_hash values are made with: hmac-sha256 of a fixed label under the key, so it names
-- the key without revealing it. The first transaction that hashes passengers records it; from
-- then on a session whose key has another fingerprint cannot hash passengers (its transaction
-- fails and writes nothing), so the table never mixes hashes made with two keys. Changing the key
-- is an owner's act: delete the row, then rebuild the table (`latam full-refresh`).
CREATE TABLE curated.pii_key_fingerprint (
    only_row    boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    fingerprint text        NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- The key of this session, for hashing passenger identifiers: the session receives it as the
-- setting latam.pii_hash_key when it connects, so no statement carries it (the transform session
-- of latam_dagster.transform.session). Refuses when the session has no key or a key whose
-- fingerprint differs from the recorded one; records the fingerprint when there is none yet.
CREATE FUNCTION curated.pii_hash_key() RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    session_key text := current_setting('latam.pii_hash_key', true);
    own         text;
    recorded    text;
BEGIN
    IF session_key IS NULL OR session_key = '' THEN
        RAISE EXCEPTION 'no PII hash key in this session: refusing to hash passenger data'
            USING HINT = 'Passenger data is written by the pipeline, whose sessions carry '
                         'LATAM_PII_HASH_KEY (latam_dagster.transform.session).';
    END IF;
    own := encode(hmac('latam.pii_hash_key fingerprint', session_key, 'sha256'), 'hex');
    SELECT fingerprint INTO recorded FROM curated.pii_key_fingerprint;
    IF NOT FOUND THEN
        INSERT INTO curated.pii_key_fingerprint (fingerprint) VALUES (own)
            ON CONFLICT (only_row) DO NOTHING;
        SELECT fingerprint INTO recorded FROM curated.pii_key_fingerprint;
    END IF;
    IF recorded <> own THEN
        RAISE EXCEPTION 'LATAM_PII_HASH_KEY is not the key the passenger hashes of this '
                        'warehouse were made with: refusing to write passenger data'
            USING HINT = 'Run with the key the warehouse was built with. To change the key, '
                         'the owner deletes the row of curated.pii_key_fingerprint and rebuilds '
                         'curated.flight_passenger (latam full-refresh).';
    END IF;
    RETURN session_key;
END
$$;

-- Only the pipeline's role (migration 0033) and the owner may call it.
REVOKE ALL ON FUNCTION curated.pii_hash_key() FROM PUBLIC;
