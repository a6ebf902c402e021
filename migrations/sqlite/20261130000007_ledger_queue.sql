-- The ledger is the queue: workers claim the oldest runnable operation of
-- their queue straight from `operations` (no separate transport table).
CREATE INDEX operations_runnable ON operations (queue, id) WHERE status IN ('queued', 'retrying');

-- Why a worker cannot serve its queues right now (NULL: it serves them all).
ALTER TABLE hosts ADD COLUMN problem TEXT;
