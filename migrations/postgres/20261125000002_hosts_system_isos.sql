-- Host liveness and system facts reported by each worker; ISO catalogue per host.
ALTER TABLE hosts ADD COLUMN heartbeat_s INTEGER NOT NULL DEFAULT 5;
ALTER TABLE hosts ADD COLUMN stopped_at TIMESTAMPTZ;
ALTER TABLE hosts ADD COLUMN system JSONB;

CREATE TABLE isos (
    host            TEXT NOT NULL,
    name            TEXT NOT NULL,
    path            TEXT NOT NULL,
    size_bytes      BIGINT NOT NULL,
    modified_at     TIMESTAMPTZ NOT NULL,
    checksum_status TEXT NOT NULL CHECK (checksum_status IN ('verified','mismatch','unverified')),
    sha256          TEXT,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (host, name)
);
