-- Audit rows sealed with a keyed MAC (HMAC-SHA256 under the key outside the
-- database); rows of earlier versions keep their plain SHA-256 and `keyed = false`.
ALTER TABLE audit_events ADD COLUMN keyed BOOLEAN NOT NULL DEFAULT FALSE;
