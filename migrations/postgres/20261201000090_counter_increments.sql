-- Counter increments are appended, not added in place. The transaction that
-- records what a counter counts appends its increments here: a plain insert
-- into a table with no index, which takes no row lock that another batch
-- could wait on. Adding them to `metric_counters` in place took an upsert per
-- series (an index probe, a row lock and a new row version each), on rows
-- that every batch shares (hence the shards). A fold moves the increments into
-- `metric_counters` (one transaction: delete them, add their sums), and the
-- figures read are always the sum of both, so nothing is counted twice or
-- missed while a fold runs.
CREATE TABLE metric_counter_increments (
    name   TEXT NOT NULL,
    labels TEXT NOT NULL,
    value  DOUBLE PRECISION NOT NULL
);

-- The one-statement hand-over (a batch's outcomes and the next claim, see
-- the completer) records a batch only whole: it appends the batch's counter
-- increments summed per series, which are right only if every outcome was
-- still its worker's to record. Called with how many outcomes the statement
-- recorded and how many it was sent, this stops the statement (undoing all
-- it wrote) with SQLSTATE HF001 when a lease was lost meanwhile; the worker
-- then records the batch in a transaction that counts each outcome alone.
CREATE FUNCTION hyperfleet_every_lease_held(recorded BIGINT, sent BIGINT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    IF recorded <> sent THEN
        RAISE EXCEPTION 'a lease was lost: % of % outcomes recordable', recorded, sent USING ERRCODE = 'HF001';
    END IF;
    RETURN true;
END
$$;
