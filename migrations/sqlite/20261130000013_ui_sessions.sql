-- Dashboard sessions: a browser's login, bound to the API token it presented.
-- `id` is the SHA-256 of the cookie's secret, so the table holds no usable
-- credential; deleting (or revoking) the token ends its sessions.
CREATE TABLE ui_sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    token_id     TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    csrf_secret  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);

CREATE INDEX ui_sessions_token ON ui_sessions (token_id);
