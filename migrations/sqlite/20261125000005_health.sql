-- Health runs (one per host and run, id = its operation), each check's result,
-- each check's current state with its hysteresis candidate, and transitions.
CREATE TABLE health_runs (
    id          TEXT PRIMARY KEY NOT NULL,
    host        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('ok','warn','error')),
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL
);
CREATE INDEX health_runs_host ON health_runs (host, finished_at);

CREATE TABLE health_results (
    run_id     TEXT NOT NULL REFERENCES health_runs(id) ON DELETE CASCADE,
    check_name TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('ok','warn','error')),
    raw_status TEXT NOT NULL,
    message    TEXT NOT NULL,
    value      REAL,
    unit       TEXT,
    thresholds TEXT,
    PRIMARY KEY (run_id, check_name)
);

CREATE TABLE health_state (
    host            TEXT NOT NULL,
    check_name      TEXT NOT NULL,
    status          TEXT NOT NULL,
    since           TEXT NOT NULL,
    candidate       TEXT,
    candidate_since TEXT,
    PRIMARY KEY (host, check_name)
);

CREATE TABLE health_events (
    id          INTEGER PRIMARY KEY,
    host        TEXT NOT NULL,
    check_name  TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    message     TEXT NOT NULL,
    at          TEXT NOT NULL
);
