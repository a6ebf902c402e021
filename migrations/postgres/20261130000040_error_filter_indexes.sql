-- The operations list's filters by error class and by requester page newest
-- first through an index ending in `id`, like the others (status, kind, host,
-- VM). Text in the error has no index: it is read within the other filters
-- (a time range bounds it).
CREATE INDEX operations_error_class_id ON operations (error_class, id) WHERE error_class IS NOT NULL;
CREATE INDEX operations_requested_by_id ON operations (requested_by, id);
