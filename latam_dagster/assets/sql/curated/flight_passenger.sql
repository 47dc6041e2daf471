-- curated.flight_passenger: one row per passenger and flight, with the passenger's latest action.
--
-- passenger_ref is personal data and never leaves the raw layer: a passenger is identified here by
-- hmac-sha256(passenger_ref, secret), the secret being the setting LATAM_PII_HASH_KEY, which the
-- run's session receives when it connects (never in a statement) and `curated.pii_hash_key()`
-- returns once it has checked the key against the fingerprint the warehouse recorded on first
-- use. The hash is stable, so a passenger can be followed across flights without anyone learning
-- who they are.
--
-- action comes from the latest event (by event_time, then message_id); cabin, fare_amount and
-- currency from the latest event that carries each of them.
--
-- As written, the statement rebuilds every passenger. An incremental run replaces
-- `TRUE /* scope */` with a filter on the (flight, passenger) pairs its batch touched.
INSERT INTO curated.flight_passenger AS t (
    flight_key, passenger_hash, carrier, flight_number, flight_date, origin,
    action, cabin, fare_amount, currency, last_event_time, event_count, updated_at, updated_xid
)
WITH events AS (
    SELECT e.flight_key, e.passenger_ref, e.carrier, e.flight_number, e.flight_date, e.origin,
           e.action, e.event_time, e.message_id,
           e.payload ->> 'cabin'                    AS cabin,
           (e.payload ->> 'fare_amount')::numeric   AS fare_amount,
           e.payload ->> 'currency'                 AS currency
    FROM raw.passenger_events AS e
    WHERE TRUE /* scope */
),
passengers AS (
    SELECT flight_key, passenger_ref,
           min(carrier) AS carrier, min(flight_number) AS flight_number,
           min(flight_date) AS flight_date, min(origin) AS origin,
           (array_agg(action ORDER BY event_time DESC, message_id DESC))[1] AS action,
           (array_agg(cabin ORDER BY event_time DESC, message_id DESC)
               FILTER (WHERE cabin IS NOT NULL))[1] AS cabin,
           (array_agg(fare_amount ORDER BY event_time DESC, message_id DESC)
               FILTER (WHERE fare_amount IS NOT NULL))[1] AS fare_amount,
           (array_agg(currency ORDER BY event_time DESC, message_id DESC)
               FILTER (WHERE currency IS NOT NULL))[1] AS currency,
           max(event_time) AS last_event_time,
           count(*) AS event_count
    FROM events
    GROUP BY flight_key, passenger_ref
)
SELECT p.flight_key,
       encode(hmac(p.passenger_ref, (SELECT curated.pii_hash_key()), 'sha256'), 'hex'),
       p.carrier, p.flight_number, p.flight_date, p.origin,
       p.action, p.cabin, round(p.fare_amount, 2), p.currency, p.last_event_time, p.event_count,
       now(), pg_current_xact_id()
FROM passengers AS p
ON CONFLICT (flight_key, passenger_hash) DO UPDATE SET
    action = excluded.action,
    cabin = excluded.cabin,
    fare_amount = excluded.fare_amount,
    currency = excluded.currency,
    last_event_time = excluded.last_event_time,
    event_count = excluded.event_count,
    updated_at = excluded.updated_at,
    updated_xid = excluded.updated_xid
WHERE (t.action, t.cabin, t.fare_amount, t.currency, t.last_event_time, t.event_count)
      IS DISTINCT FROM
      (excluded.action, excluded.cabin, excluded.fare_amount, excluded.currency,
       excluded.last_event_time, excluded.event_count)
