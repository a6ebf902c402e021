-- Cron schedules that enqueue operations, and one row per fired tick: the
-- primary key (schedule_id, fire_time) is what makes a tick fire exactly once
-- however many schedulers run.
CREATE TABLE schedules (
    id                UUID PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL UNIQUE,
    cron              TEXT NOT NULL,
    timezone          TEXT NOT NULL,
    kind              TEXT NOT NULL,
    params            JSONB NOT NULL,
    host              TEXT,
    enabled           BOOLEAN NOT NULL,
    missed_ticks      TEXT NOT NULL CHECK (missed_ticks IN ('skip','run_once')),
    jitter_s          INTEGER NOT NULL DEFAULT 0,
    next_fire_at      TIMESTAMPTZ,
    last_fire_at      TIMESTAMPTZ,
    last_operation_id UUID,
    created_by        TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE schedule_fires (
    schedule_id  UUID NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    fire_time    TIMESTAMPTZ NOT NULL,
    operation_id UUID NOT NULL,
    fired_at     TIMESTAMPTZ NOT NULL,
    fired_by     TEXT NOT NULL,
    manual       BOOLEAN NOT NULL,
    catch_up     BOOLEAN NOT NULL,
    PRIMARY KEY (schedule_id, fire_time)
);

-- The schedule that fired an operation.
ALTER TABLE operations ADD COLUMN schedule_id UUID;
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled;
