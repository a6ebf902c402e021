-- The scheduler's reconcilers and their last run, readable through the API.
CREATE TABLE reconciler_runs (
    name TEXT PRIMARY KEY,
    scheduler TEXT NOT NULL,
    last_run_at TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    ok INTEGER NOT NULL,
    summary TEXT NOT NULL,
    error TEXT,
    last_error_at TEXT,
    runs INTEGER NOT NULL,
    failures INTEGER NOT NULL
);
