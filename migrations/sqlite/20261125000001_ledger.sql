-- The operation ledger, hosts and the VM inventory (SQLite).
-- Timestamps are RFC 3339 UTC text with microseconds (text order = time order);
-- ids are UUID v7 text (text order = creation order).

CREATE TABLE operations (
    id               TEXT PRIMARY KEY NOT NULL,
    kind             TEXT NOT NULL,
    host             TEXT,
    vm               TEXT,
    params           TEXT NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL CHECK (status IN ('queued','running','retrying','succeeded','failed','cancelled')),
    queue            TEXT NOT NULL,
    requested_by     TEXT NOT NULL,
    request_id       TEXT,
    idempotency_key  TEXT UNIQUE,
    request_hash     TEXT NOT NULL,
    attempt_count    INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    next_attempt_at  TEXT,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    result           TEXT,
    error_class      TEXT,
    error_code       TEXT,
    last_error       TEXT,
    retry_of         TEXT REFERENCES operations(id),
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    updated_at       TEXT NOT NULL
);

CREATE INDEX operations_status_next ON operations (status, next_attempt_at);
CREATE INDEX operations_vm ON operations (host, vm, status);
CREATE INDEX operations_kind ON operations (kind, id);
CREATE INDEX operations_lease ON operations (lease_expires_at) WHERE status = 'running';
-- At most one operation runs per VM at a time.
CREATE UNIQUE INDEX operations_one_running_per_vm ON operations (host, vm) WHERE status = 'running' AND vm IS NOT NULL;

CREATE TABLE operation_attempts (
    operation_id TEXT NOT NULL REFERENCES operations(id),
    attempt      INTEGER NOT NULL,
    worker       TEXT NOT NULL,
    host         TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    outcome      TEXT CHECK (outcome IN ('succeeded','failed','cancelled','abandoned')),
    error_class  TEXT CHECK (error_class IN ('transient','permanent','timeout','abandoned')),
    error_code   TEXT,
    message      TEXT,
    PRIMARY KEY (operation_id, attempt)
);

CREATE TABLE hosts (
    name           TEXT PRIMARY KEY NOT NULL,
    libvirt_uri    TEXT NOT NULL,
    worker_id      TEXT NOT NULL,
    version        TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    last_heartbeat TEXT NOT NULL
);

CREATE TABLE vms (
    host         TEXT NOT NULL,
    name         TEXT NOT NULL,
    uuid         TEXT NOT NULL,
    state        TEXT NOT NULL,
    state_reason TEXT NOT NULL,
    vcpus        INTEGER NOT NULL,
    memory_kib   INTEGER NOT NULL,
    autostart    INTEGER NOT NULL,
    persistent   INTEGER NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (host, name)
);
