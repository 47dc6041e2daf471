-- Abuse limits of the REST API's lists, and the latest result of every check as a table.
--
-- Every filter combination a list accepts is served by an index in the list's order, so a page
-- reads one range of one index and stops after `limit + 1` rows, however the filters are combined
-- (api_service/queries.py says which combinations; the API refuses the others with a 400). And
-- quality.latest_check_result, a view that sorted the whole quality history on every request,
-- becomes a table that triggers keep current.

-- curated.fact_flight -------------------------------------------------------------------------
-- Flights are listed by (flight_date, flight_key); origin already leads an index in that order
-- (0012). Destination and carrier get theirs: without them `?destination=X` walked the whole
-- date index, and `?carrier=ZZ` (a code no flight has) read every row to answer an empty page.
-- Status gets none: it is refused unless a date or an airport bounds the range it is applied to.
--
-- Write cost: the table is upserted every micro-batch and updated_xid (indexed) changes on every
-- upsert, so no update is HOT and each changed flight writes one entry per index. The single-column
-- flight_date index is a prefix of (flight_date, flight_key) and serves nothing the latter does
-- not: it goes, so a changed flight writes 6 index entries instead of 5 (not 7).
CREATE INDEX fact_flight_destination_date_key_idx
    ON curated.fact_flight (destination, flight_date, flight_key);
CREATE INDEX fact_flight_carrier_date_key_idx
    ON curated.fact_flight (carrier, flight_date, flight_key);
DROP INDEX curated.fact_flight_flight_date_idx;

-- marts -----------------------------------------------------------------------------------------
-- Route rows are listed by their key (flight_date, carrier, origin, destination): each equality
-- filter leads an index whose next columns are the rest of that order, and the flight_date range
-- filters come right after it. A mart day is a few hundred rows rewritten only when its day
-- changed, so these indexes cost little.
CREATE INDEX route_daily_performance_origin_idx
    ON marts.route_daily_performance (origin, flight_date, carrier, destination);
CREATE INDEX route_daily_performance_destination_idx
    ON marts.route_daily_performance (destination, flight_date, carrier, origin);
CREATE INDEX route_daily_performance_carrier_idx
    ON marts.route_daily_performance (carrier, flight_date, origin, destination);
-- An airport's traffic is listed by flight_date: the key (flight_date, airport) does not serve
-- `airport = X`.
CREATE UNIQUE INDEX airport_daily_traffic_airport_idx
    ON marts.airport_daily_traffic (airport, flight_date);

-- The API's planner ---------------------------------------------------------------------------
-- Every list the API serves is a keyset page that an index returns in order, stopped after
-- `limit + 1` rows. A sequential or bitmap scan reads a whole table or a whole index range before
-- the first row comes out; the planner picks one when it expects few rows to match, and a wrong
-- guess (a value common in the statistics but absent after the cursor, two filters that never
-- hold together) then reads everything: the unbounded read these limits exist to prevent. The
-- API's role plans without them, and with random reads priced near sequential ones (its pages
-- are reads of hot index ranges), so that walking the table's key index in its physical order and
-- throwing rows away never looks cheaper than reading the range of the index a filter leads.
-- Roles are cluster-wide, like the settings of 0033.
ALTER ROLE latam_api_reader SET enable_seqscan = off;
ALTER ROLE latam_api_reader SET enable_bitmapscan = off;
ALTER ROLE latam_api_reader SET random_page_cost = 1.1;

-- quality.check_evaluation ----------------------------------------------------------------------
-- The history is listed newest first by (evaluated_at, evaluation_id), optionally of one asset,
-- one check, or both (asset_key, check_name, ... of 0020). A few dozen rows per validation: cheap.
CREATE INDEX check_evaluation_asset_time_idx
    ON quality.check_evaluation (asset_key, evaluated_at DESC, evaluation_id DESC);
CREATE INDEX check_evaluation_check_name_time_idx
    ON quality.check_evaluation (check_name, evaluated_at DESC, evaluation_id DESC);
CREATE INDEX check_evaluation_time_id_idx
    ON quality.check_evaluation (evaluated_at DESC, evaluation_id DESC);
DROP INDEX quality.check_evaluation_time_idx;  -- a prefix of the one above

-- quality.latest_check_result -------------------------------------------------------------------
-- One row per (asset_key, check_name): a copy of the check's newest evaluation, by
-- (evaluated_at, evaluation_id), the same columns and rows as the view it replaces. Triggers on
-- quality.check_evaluation keep it current in the transaction that changes the history:
--   insert    a newer evaluation replaces the row; an older one inserted later (a late or
--             replayed validation) leaves it alone;
--   delete    (retention: deleting a validation deletes its evaluations) a row whose evaluation
--             is gone becomes the newest evaluation of that check still in the history, and goes
--             when none is left, so a check not evaluated within the retention window has no
--             latest result, as with the view;
--   update    (the platform never updates evaluations) each check it touches gets its newest
--             evaluation again;
--   truncate  empties it.
-- The triggers run with the writer's privileges: whoever writes the history writes this table
-- (the pipeline, granted below, and the owner).
LOCK TABLE quality.check_evaluation IN SHARE MODE;  -- no evaluation lands between copy and trigger

DROP VIEW quality.latest_check_result;
CREATE TABLE quality.latest_check_result (
    LIKE quality.check_evaluation INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (asset_key, check_name),
    UNIQUE (evaluation_id)
);

-- Offers evaluations as latest results: per check, the newest offered replaces the row when it is
-- newer than the row's, by (evaluated_at, evaluation_id). Compared under the row's lock, so two
-- transactions recording evaluations of one check at once keep the newer one whatever the order.
CREATE FUNCTION quality.offer_latest_check_result(offered quality.check_evaluation[])
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO quality.latest_check_result AS l
    SELECT DISTINCT ON (o.asset_key, o.check_name) o.*
    FROM unnest(offered) AS o
    ORDER BY o.asset_key, o.check_name, o.evaluated_at DESC, o.evaluation_id DESC
    ON CONFLICT (asset_key, check_name) DO UPDATE SET
        evaluation_id = excluded.evaluation_id,
        validation_id = excluded.validation_id,
        table_name = excluded.table_name,
        partition_key = excluded.partition_key,
        run_id = excluded.run_id,
        evaluated_at = excluded.evaluated_at,
        success = excluded.success,
        severity = excluded.severity,
        blocking = excluded.blocking,
        description = excluded.description,
        expectations_evaluated = excluded.expectations_evaluated,
        expectations_failed = excluded.expectations_failed,
        element_count = excluded.element_count,
        unexpected_count = excluded.unexpected_count,
        unexpected_percent = excluded.unexpected_percent,
        statistics = excluded.statistics,
        failing_sample = excluded.failing_sample,
        unexpected_index_query = excluded.unexpected_index_query
    WHERE (excluded.evaluated_at, excluded.evaluation_id) > (l.evaluated_at, l.evaluation_id);
$$;

-- The trigger function of every change to quality.check_evaluation (see above).
CREATE FUNCTION quality.keep_latest_check_result() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stale_assets text[];
    stale_checks text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM quality.latest_check_result;
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM quality.offer_latest_check_result(ARRAY(
            SELECT DISTINCT ON (n.asset_key, n.check_name) ROW(n.*)::quality.check_evaluation
            FROM new_rows AS n
            ORDER BY n.asset_key, n.check_name, n.evaluated_at DESC, n.evaluation_id DESC
        ));
    ELSE
        -- DELETE drops the rows whose evaluation is gone; UPDATE every row of a check it touched
        IF TG_OP = 'DELETE' THEN
            WITH gone AS (
                DELETE FROM quality.latest_check_result AS l
                USING old_rows AS o
                WHERE l.evaluation_id = o.evaluation_id
                RETURNING l.asset_key, l.check_name
            )
            SELECT array_agg(asset_key), array_agg(check_name)
            INTO stale_assets, stale_checks FROM gone;
        ELSE
            SELECT array_agg(asset_key), array_agg(check_name)
            INTO stale_assets, stale_checks
            FROM (
                SELECT asset_key, check_name FROM old_rows
                UNION
                SELECT asset_key, check_name FROM new_rows
            ) AS touched;
            DELETE FROM quality.latest_check_result AS l
            USING unnest(stale_assets, stale_checks) AS t (asset_key, check_name)
            WHERE l.asset_key = t.asset_key AND l.check_name = t.check_name;
        END IF;
        -- ... and those checks get their newest evaluation left in the history, if any
        PERFORM quality.offer_latest_check_result(ARRAY(
            SELECT newest.c
            FROM unnest(stale_assets, stale_checks) AS k (asset_key, check_name)
            CROSS JOIN LATERAL (
                SELECT c
                FROM quality.check_evaluation AS c
                WHERE c.asset_key = k.asset_key AND c.check_name = k.check_name
                ORDER BY c.evaluated_at DESC, c.evaluation_id DESC
                LIMIT 1
            ) AS newest
        ));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER latest_check_result_insert
    AFTER INSERT ON quality.check_evaluation
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION quality.keep_latest_check_result();
CREATE TRIGGER latest_check_result_update
    AFTER UPDATE ON quality.check_evaluation
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION quality.keep_latest_check_result();
CREATE TRIGGER latest_check_result_delete
    AFTER DELETE ON quality.check_evaluation
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION quality.keep_latest_check_result();
CREATE TRIGGER latest_check_result_truncate
    AFTER TRUNCATE ON quality.check_evaluation
    FOR EACH STATEMENT EXECUTE FUNCTION quality.keep_latest_check_result();

INSERT INTO quality.latest_check_result
SELECT DISTINCT ON (asset_key, check_name) *
FROM quality.check_evaluation
ORDER BY asset_key, check_name, evaluated_at DESC, evaluation_id DESC;

-- The grants the view had (0033): the API and the exporter read it, the pipeline writes it
-- (through the triggers, as it writes the history).
GRANT SELECT ON quality.latest_check_result TO latam_api_reader, latam_exporter;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON quality.latest_check_result TO latam_pipeline;
