-- The dashboard's filters index the finished history only. A status change
-- is never a HOT update: each claim and each finish wrote an operation's row
-- into every index it matched, and the list's filters (kind, status and kind,
-- host, VM, error class, requester) held every row, so an operation was
-- written into each of them three times (submit, claim, finish). Indexed
-- where `status IN ('succeeded', 'failed', 'cancelled')`, it is written into
-- them once, when it ends. The list reads the history through them and each
-- active status through `operations_status_id` (status, id), and merges the
-- two newest first; the active set is what is queued or running now.
DROP INDEX operations_kind;
CREATE INDEX operations_kind ON operations (kind, id) WHERE status IN ('succeeded', 'failed', 'cancelled');
DROP INDEX operations_status_kind_id;
CREATE INDEX operations_status_kind_id ON operations (status, kind, id)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
DROP INDEX operations_host_id;
CREATE INDEX operations_host_id ON operations (host, id)
    WHERE host IS NOT NULL AND status IN ('succeeded', 'failed', 'cancelled');
DROP INDEX operations_vm_id;
CREATE INDEX operations_vm_id ON operations (vm, id)
    WHERE vm IS NOT NULL AND status IN ('succeeded', 'failed', 'cancelled');
DROP INDEX operations_error_class_id;
CREATE INDEX operations_error_class_id ON operations (error_class, id)
    WHERE error_class IS NOT NULL AND status IN ('succeeded', 'failed', 'cancelled');
DROP INDEX operations_requested_by_id;
CREATE INDEX operations_requested_by_id ON operations (requested_by, id)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
