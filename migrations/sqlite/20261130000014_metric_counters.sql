-- Prometheus counters kept in the database: incremented in the transaction
-- that records what they count, so they count exactly once across workers
-- and restarts (and survive the ledger's retention).
CREATE TABLE metric_counters (
    name   TEXT NOT NULL,
    labels TEXT NOT NULL,
    value  REAL NOT NULL,
    PRIMARY KEY (name, labels)
);
