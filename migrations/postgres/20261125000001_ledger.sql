-- The operation ledger, hosts and the VM inventory (PostgreSQL).

CREATE TABLE operations (
    id               UUID PRIMARY KEY,
    kind             TEXT NOT NULL,
    host             TEXT,
    vm               TEXT,
    params           JSONB NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL CHECK (status IN ('queued','running','retrying','succeeded','failed','cancelled')),
    queue            TEXT NOT NULL,
    requested_by     TEXT NOT NULL,
    request_id       TEXT,
    idempotency_key  TEXT UNIQUE,
    request_hash     TEXT NOT NULL,
    attempt_count    INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    next_attempt_at  TIMESTAMPTZ,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    result           JSONB,
    error_class      TEXT,
    error_code       TEXT,
    last_error       TEXT,
    retry_of         UUID REFERENCES operations(id),
    created_at       TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL
);

CREATE INDEX operations_status_next ON operations (status, next_attempt_at);
CREATE INDEX operations_vm ON operations (host, vm, status);
CREATE INDEX operations_kind ON operations (kind, id);
CREATE INDEX operations_lease ON operations (lease_expires_at) WHERE status = 'running';
-- At most one operation runs per VM at a time.
CREATE UNIQUE INDEX operations_one_running_per_vm ON operations (host, vm) WHERE status = 'running' AND vm IS NOT NULL;

CREATE TABLE operation_attempts (
    operation_id UUID NOT NULL REFERENCES operations(id),
    attempt      INTEGER NOT NULL,
    worker       TEXT NOT NULL,
    host         TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    outcome      TEXT CHECK (outcome IN ('succeeded','failed','cancelled','abandoned')),
    error_class  TEXT CHECK (error_class IN ('transient','permanent','timeout','abandoned')),
    error_code   TEXT,
    message      TEXT,
    PRIMARY KEY (operation_id, attempt)
);

CREATE TABLE hosts (
    name           TEXT PRIMARY KEY,
    libvirt_uri    TEXT NOT NULL,
    worker_id      TEXT NOT NULL,
    version        TEXT NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    last_heartbeat TIMESTAMPTZ NOT NULL
);

CREATE TABLE vms (
    host         TEXT NOT NULL,
    name         TEXT NOT NULL,
    uuid         TEXT NOT NULL,
    state        TEXT NOT NULL,
    state_reason TEXT NOT NULL,
    vcpus        INTEGER NOT NULL,
    memory_kib   BIGINT NOT NULL,
    autostart    BOOLEAN NOT NULL,
    persistent   BOOLEAN NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (host, name)
);
