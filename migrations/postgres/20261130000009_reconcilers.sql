-- The scheduler's reconcilers and their last run, readable through the API.
CREATE TABLE reconciler_runs (
    name TEXT PRIMARY KEY,
    scheduler TEXT NOT NULL,
    last_run_at TIMESTAMPTZ NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    ok BOOLEAN NOT NULL,
    summary TEXT NOT NULL,
    error TEXT,
    last_error_at TIMESTAMPTZ,
    runs BIGINT NOT NULL,
    failures BIGINT NOT NULL
);
