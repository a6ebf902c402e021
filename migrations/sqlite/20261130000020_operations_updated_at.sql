-- The dashboard's change feed reads "operations changed since": newest
-- updates by an index, not a scan of the whole ledger every poll.
CREATE INDEX operations_updated ON operations (updated_at);
