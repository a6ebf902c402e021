-- Each counter series is kept in a few rows (shards), summed when read.
-- Every batch of finished attempts adds to the same series; with one row per
-- series, a batch's upsert waited for the row lock of the batch before it
-- until that one committed, so no two batches could share a WAL flush. A
-- process writes its transactions' counters to the shards in turn, so the
-- batches it has under way at once add to different rows.
ALTER TABLE metric_counters ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE metric_counters DROP CONSTRAINT metric_counters_pkey;
ALTER TABLE metric_counters ADD PRIMARY KEY (name, labels, shard);
