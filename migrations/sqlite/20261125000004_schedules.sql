-- Cron schedules that enqueue operations, and one row per fired tick: the
-- primary key (schedule_id, fire_time) is what makes a tick fire exactly once
-- however many schedulers run.
CREATE TABLE schedules (
    id                TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL UNIQUE,
    cron              TEXT NOT NULL,
    timezone          TEXT NOT NULL,
    kind              TEXT NOT NULL,
    params            TEXT NOT NULL,
    host              TEXT,
    enabled           INTEGER NOT NULL,
    missed_ticks      TEXT NOT NULL CHECK (missed_ticks IN ('skip','run_once')),
    jitter_s          INTEGER NOT NULL DEFAULT 0,
    next_fire_at      TEXT,
    last_fire_at      TEXT,
    last_operation_id TEXT,
    created_by        TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE TABLE schedule_fires (
    schedule_id  TEXT NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    fire_time    TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    fired_at     TEXT NOT NULL,
    fired_by     TEXT NOT NULL,
    manual       INTEGER NOT NULL,
    catch_up     INTEGER NOT NULL,
    PRIMARY KEY (schedule_id, fire_time)
);

-- The schedule that fired an operation.
ALTER TABLE operations ADD COLUMN schedule_id TEXT;
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled;
