-- ingest_seq is an identity column: Postgres already generates unique values and nothing looks
-- rows up by it (watermarks use ingest_xid). Its unique index cost about a tenth of every
-- raw write, so it goes; the column and its ordering stay.
ALTER TABLE raw.flight_events DROP CONSTRAINT flight_events_ingest_seq_key;
ALTER TABLE raw.passenger_events DROP CONSTRAINT passenger_events_ingest_seq_key;
ALTER TABLE raw.position_reports DROP CONSTRAINT position_reports_ingest_seq_key;
