-- curated.aircraft_position_latest: the latest position report of every aircraft (tail number).
--
-- The position fields (latitude, longitude, altitude, speed, heading) describe one instant, so they
-- come together from the latest report (by event_time, then message_id). The flight the aircraft
-- flies is the one named by the latest report that names a flight, since reports may omit it.
--
-- Positions arrive every few seconds for years, so this table is not rebuilt from an aircraft's
-- whole history: a run merges the new reports with the row it already holds and keeps the later
-- of the two. As written, the statement merges every report (a full refresh starts from an empty
-- table). An incremental run replaces `TRUE /* scope */` with the range of new reports. It writes
-- staging.aircraft_position_latest; the rows that pass their row rules are then published to
-- curated.aircraft_position_latest in the same transaction.
INSERT INTO staging.aircraft_position_latest AS t (
    tail_number, latitude, longitude, altitude_ft, ground_speed_kt, heading_deg,
    event_time, message_id, source_system,
    flight_key, flight_key_event_time, flight_key_message_id, updated_at, updated_xid
)
WITH reports AS (
    SELECT p.tail_number, p.latitude, p.longitude,
           (p.payload ->> 'altitude_ft')::double precision     AS altitude_ft,
           (p.payload ->> 'ground_speed_kt')::double precision AS ground_speed_kt,
           (p.payload ->> 'heading_deg')::double precision     AS heading_deg,
           p.event_time, p.message_id, p.source_system, p.flight_key
    FROM raw.position_reports AS p
    WHERE TRUE /* scope */
),
positions AS (
    SELECT DISTINCT ON (tail_number)
           tail_number, latitude, longitude, altitude_ft, ground_speed_kt, heading_deg,
           event_time, message_id, source_system
    FROM (
        SELECT tail_number, latitude, longitude, altitude_ft, ground_speed_kt, heading_deg,
               event_time, message_id, source_system
        FROM reports
        UNION ALL
        SELECT tail_number, latitude, longitude, altitude_ft, ground_speed_kt, heading_deg,
               event_time, message_id, source_system
        FROM staging.aircraft_position_latest
        WHERE tail_number IN (SELECT tail_number FROM reports)
    ) AS candidates
    ORDER BY tail_number, event_time DESC, message_id DESC
),
flights AS (
    SELECT DISTINCT ON (tail_number) tail_number, flight_key, event_time, message_id
    FROM (
        SELECT tail_number, flight_key, event_time, message_id
        FROM reports
        WHERE flight_key IS NOT NULL
        UNION ALL
        SELECT tail_number, flight_key, flight_key_event_time, flight_key_message_id
        FROM staging.aircraft_position_latest
        WHERE flight_key IS NOT NULL AND tail_number IN (SELECT tail_number FROM reports)
    ) AS candidates
    ORDER BY tail_number, event_time DESC, message_id DESC
)
SELECT p.tail_number, p.latitude, p.longitude, p.altitude_ft, p.ground_speed_kt, p.heading_deg,
       p.event_time, p.message_id, p.source_system,
       f.flight_key, f.event_time, f.message_id, now(), pg_current_xact_id()
FROM positions AS p
LEFT JOIN flights AS f ON f.tail_number = p.tail_number
ON CONFLICT (tail_number) DO UPDATE SET
    latitude = excluded.latitude,
    longitude = excluded.longitude,
    altitude_ft = excluded.altitude_ft,
    ground_speed_kt = excluded.ground_speed_kt,
    heading_deg = excluded.heading_deg,
    event_time = excluded.event_time,
    message_id = excluded.message_id,
    source_system = excluded.source_system,
    flight_key = excluded.flight_key,
    flight_key_event_time = excluded.flight_key_event_time,
    flight_key_message_id = excluded.flight_key_message_id,
    updated_at = excluded.updated_at,
    updated_xid = excluded.updated_xid
WHERE (t.message_id, t.flight_key_message_id)
      IS DISTINCT FROM (excluded.message_id, excluded.flight_key_message_id)
