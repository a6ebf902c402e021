-- A queue claims per class of work (each class has its own slots), so the
-- runnable set is indexed by class: one claim reads exactly the rows it may
-- take, oldest first, whatever else waits. Indexed by kind instead, a class
-- of several kinds needed a sort of its whole backlog, and a class with
-- nothing queued walked every other class's backlog to find nothing.
-- The class is written with each row from the kind (`OperationKind::class`);
-- this backfills the rows already kept.
ALTER TABLE operations ADD COLUMN class TEXT NOT NULL DEFAULT '';
UPDATE operations SET class = CASE
    WHEN kind LIKE 'vm.%' THEN 'vm'
    WHEN kind = 'health.run' THEN 'health'
    WHEN kind = 'alert.deliver' THEN 'alerts'
    WHEN kind LIKE 'backup.%' THEN 'backup'
    WHEN kind = 'noop' THEN 'diagnostics'
    WHEN kind = 'ledger.prune' THEN 'housekeeping'
    ELSE '' END;

DROP INDEX operations_runnable;
CREATE INDEX operations_runnable ON operations (queue, class, id) WHERE status IN ('queued', 'retrying');
