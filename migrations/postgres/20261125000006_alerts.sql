-- Alerts with their whole history: each alert (one incident per dedup key
-- while it fires), its events (fired, repeated, escalated, resolved,
-- acknowledged; `routed_at` is set once the router has decided about every
-- channel), the notifications per channel (sent or suppressed, with why), and
-- silences.
CREATE TABLE alerts (
    id              UUID PRIMARY KEY NOT NULL,
    dedup_key       TEXT NOT NULL,
    source          TEXT NOT NULL CHECK (source IN ('health','operation','backup','fleet','manual')),
    host            TEXT,
    severity        TEXT NOT NULL CHECK (severity IN ('info','warning','critical')),
    title           TEXT NOT NULL,
    message         TEXT NOT NULL,
    labels          JSONB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('firing','resolved')),
    first_seen      TIMESTAMPTZ NOT NULL,
    last_seen       TIMESTAMPTZ NOT NULL,
    resolved_at     TIMESTAMPTZ,
    occurrences     BIGINT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at TIMESTAMPTZ,
    operation_id    UUID,
    exclude_channel TEXT,
    created_by      TEXT NOT NULL
);
CREATE UNIQUE INDEX alerts_firing_dedup ON alerts (dedup_key) WHERE status = 'firing';
CREATE INDEX alerts_last_seen ON alerts (last_seen);

CREATE TABLE alert_events (
    id           UUID PRIMARY KEY NOT NULL,
    alert_id     UUID NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('fired','repeated','escalated','resolved','acknowledged')),
    at           TIMESTAMPTZ NOT NULL,
    severity     TEXT NOT NULL,
    message      TEXT NOT NULL,
    actor        TEXT NOT NULL,
    operation_id UUID,
    routed_at    TIMESTAMPTZ
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);
CREATE INDEX alert_events_unrouted ON alert_events (id) WHERE routed_at IS NULL;

CREATE TABLE alert_notifications (
    id           UUID PRIMARY KEY NOT NULL,
    alert_id     UUID REFERENCES alerts(id) ON DELETE CASCADE,
    event_id     UUID,
    channel      TEXT NOT NULL,
    event        TEXT NOT NULL CHECK (event IN ('firing','resolved','test')),
    status       TEXT NOT NULL CHECK (status IN ('pending','delivered','failed','suppressed')),
    reason       TEXT,
    silence_id   UUID,
    operation_id UUID,
    created_at   TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ,
    detail       TEXT
);
CREATE INDEX alert_notifications_alert ON alert_notifications (alert_id, channel, created_at);
CREATE INDEX alert_notifications_channel ON alert_notifications (channel, created_at);

CREATE TABLE silences (
    id         UUID PRIMARY KEY NOT NULL,
    matchers   JSONB NOT NULL,
    starts_at  TIMESTAMPTZ NOT NULL,
    ends_at    TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX silences_ends ON silences (ends_at);
