-- Who asked to cancel an operation (a token name).
ALTER TABLE operations ADD COLUMN cancelled_by TEXT;
