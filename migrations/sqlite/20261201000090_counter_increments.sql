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
    value  REAL NOT NULL
);
