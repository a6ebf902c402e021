-- Health runs (one per host and run, id = its operation), each check's result,
-- each check's current state with its hysteresis candidate, and transitions.
CREATE TABLE health_runs (
    id          UUID PRIMARY KEY NOT NULL,
    host        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('ok','warn','error')),
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX health_runs_host ON health_runs (host, finished_at);

CREATE TABLE health_results (
    run_id     UUID NOT NULL REFERENCES health_runs(id) ON DELETE CASCADE,
    check_name TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('ok','warn','error')),
    raw_status TEXT NOT NULL,
    message    TEXT NOT NULL,
    value      DOUBLE PRECISION,
    unit       TEXT,
    thresholds JSONB,
    PRIMARY KEY (run_id, check_name)
);

CREATE TABLE health_state (
    host            TEXT NOT NULL,
    check_name      TEXT NOT NULL,
    status          TEXT NOT NULL,
    since           TIMESTAMPTZ NOT NULL,
    candidate       TEXT,
    candidate_since TIMESTAMPTZ,
    PRIMARY KEY (host, check_name)
);

CREATE TABLE health_events (
    id          BIGSERIAL PRIMARY KEY,
    host        TEXT NOT NULL,
    check_name  TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    message     TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL
);
