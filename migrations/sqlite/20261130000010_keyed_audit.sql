-- Audit rows sealed with a keyed MAC (HMAC-SHA256 under the key outside the
-- database); rows of earlier versions keep their plain SHA-256 and `keyed = 0`.
ALTER TABLE audit_events ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0;
