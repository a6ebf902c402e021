-- Indexes for the dashboard's newest-first pages. Every filter the operations
-- list offers (status, kind, host, VM) leads an index that ends in `id`, so a
-- page is an index range read backwards from the cursor, not a sort of every
-- matching row; `operations_kind (kind, id)` already existed. The overview's
-- "finished in the last 24 h" counts read a range of `finished_at` and take
-- the status from the same index. The VM list pages by (name, host).
CREATE INDEX operations_status_id ON operations (status, id);
-- "Failed operations of one kind" is the combination the dashboard links to
-- most; without this a rare pair reads every row of the status.
CREATE INDEX operations_status_kind_id ON operations (status, kind, id);
CREATE INDEX operations_host_id ON operations (host, id) WHERE host IS NOT NULL;
CREATE INDEX operations_vm_id ON operations (vm, id) WHERE vm IS NOT NULL;
CREATE INDEX operations_finished ON operations (finished_at, status) WHERE finished_at IS NOT NULL;
-- VM and host names sort byte by byte whatever the database's locale, as
-- SQLite's BINARY collation does, so both backends page the VM list alike.
ALTER TABLE vms ALTER COLUMN name TYPE TEXT COLLATE "C", ALTER COLUMN host TYPE TEXT COLLATE "C";
CREATE INDEX vms_name_host ON vms (name, host);
