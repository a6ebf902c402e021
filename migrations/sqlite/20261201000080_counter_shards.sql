-- Each counter series may be kept in a few rows (shards), summed when read
-- (PostgreSQL spreads concurrent batches over them; SQLite, one writer,
-- writes shard 0). SQLite cannot change a primary key in place: the table
-- is rebuilt with its rows.
CREATE TABLE metric_counters_sharded (
    name   TEXT NOT NULL,
    labels TEXT NOT NULL,
    shard  INTEGER NOT NULL DEFAULT 0,
    value  REAL NOT NULL,
    PRIMARY KEY (name, labels, shard)
);
INSERT INTO metric_counters_sharded (name, labels, shard, value) SELECT name, labels, 0, value FROM metric_counters;
DROP TABLE metric_counters;
ALTER TABLE metric_counters_sharded RENAME TO metric_counters;
