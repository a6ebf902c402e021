-- Every claim and every finish rewrites an operation's row into each index
-- whose key or predicate it matches (a status change is never a HOT update).
-- Indexes that no query reads, or that hold rows no query asks for, only
-- cost that write.

-- (host, vm, status): every lookup by VM reads operations_vm_id or, for the
-- claim's FIFO check, the active-per-VM set (operations_vm_active).
DROP INDEX operations_vm;

-- (status, next_attempt_at) held every operation; the only reader asks for
-- the earliest retry of one queue, so index just the retrying ones.
DROP INDEX operations_status_next;
CREATE INDEX operations_retry_due ON operations (queue, next_attempt_at) WHERE status = 'retrying';
