-- Honest defaults: backup verification is not available yet, so no schedule
-- fires its stub. The default one goes; any other is switched off (it cannot
-- be switched on again until the kind is real).
DELETE FROM schedules WHERE kind = 'backup.verify' AND created_by = 'hyperfleet (default)';
UPDATE schedules SET enabled = FALSE WHERE kind = 'backup.verify';
