-- An operation's page shows its retries and the alerts it raised: both
-- looked up by the operation's id.
CREATE INDEX operations_retry_of ON operations (retry_of) WHERE retry_of IS NOT NULL;
CREATE INDEX alert_events_operation ON alert_events (operation_id) WHERE operation_id IS NOT NULL;
