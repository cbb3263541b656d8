-- The de-duplication key gains the sender's own time of the event (CircleCI's `happened_at`),
-- ahead of the delivery id. A redelivery repeats the event's time, so duplicates are still found;
-- and since deliveries arrive in about that order, each new key goes in at the index's end. Keyed
-- on the random id alone, every delivery took a random leaf of the index (after each checkpoint,
-- a whole page in the WAL).
ALTER TABLE deliveries ADD COLUMN event_at TEXT NOT NULL DEFAULT '';

-- Deliveries recorded before: their event time from the stored body, as Hoist now takes it (a
-- string of 1 to 64 bytes), so that a redelivery of one of them is still a duplicate. A
-- body jsonb cannot read (a \u0000 escape, say) keeps ''.
CREATE FUNCTION pg_temp.hoist_happened_at(body TEXT) RETURNS TEXT AS $$
DECLARE
    value JSONB;
BEGIN
    value := body::jsonb -> 'happened_at';
    IF jsonb_typeof(value) = 'string' AND octet_length(value #>> '{}') BETWEEN 1 AND 64 THEN
        RETURN value #>> '{}';
    END IF;
    RETURN '';
EXCEPTION WHEN others THEN
    RETURN '';
END
$$ LANGUAGE plpgsql;

UPDATE deliveries SET event_at = pg_temp.hoist_happened_at(body)
WHERE source = 'circleci' AND delivery_key IS NOT NULL;

DROP INDEX deliveries_key;
CREATE UNIQUE INDEX deliveries_key ON deliveries (source, event_at, delivery_key) WHERE delivery_key IS NOT NULL;
