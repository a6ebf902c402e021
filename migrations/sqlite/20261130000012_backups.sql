-- Backups: one row per backup of one VM at one point in time (id = the
-- backup.create operation that made it), and every verification of it. The
-- manifest is kept with its sha256, so a changed manifest file is noticed.
CREATE TABLE backups (
    id              TEXT PRIMARY KEY NOT NULL,
    host            TEXT NOT NULL,
    vm              TEXT NOT NULL,
    operation_id    TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('creating','complete','failed','deleted')),
    method          TEXT,
    dir             TEXT NOT NULL,
    size_bytes      INTEGER,
    manifest        TEXT,
    manifest_sha256 TEXT,
    error           TEXT,
    created_at      TEXT NOT NULL,
    finished_at     TEXT
);
CREATE INDEX backups_vm ON backups (host, vm, created_at);

CREATE TABLE backup_verifications (
    id           INTEGER PRIMARY KEY,
    backup_id    TEXT NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
    operation_id TEXT NOT NULL,
    level        TEXT NOT NULL,
    result       TEXT NOT NULL CHECK (result IN ('ok','failed')),
    code         TEXT,
    started_at   TEXT NOT NULL,
    finished_at  TEXT NOT NULL,
    details      TEXT NOT NULL
);
CREATE INDEX backup_verifications_backup ON backup_verifications (backup_id, id);
