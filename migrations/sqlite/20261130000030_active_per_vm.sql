-- The active operations per VM, indexed apart from the finished history: a
-- claim checks the VM's FIFO and its one running operation here, so a long
-- history does not slow claims (the runnable set has its own partial index).
CREATE INDEX operations_vm_active ON operations (host, vm, id)
    WHERE status IN ('queued', 'retrying', 'running') AND vm IS NOT NULL;
