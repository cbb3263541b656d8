-- The de-duplication key gains the sender's own time of the event (CircleCI's `happened_at`),
-- ahead of the delivery id. A redelivery repeats the event's time, so duplicates are still found;
-- and since deliveries arrive in about that order, each new key goes in at the index's end. Keyed
-- on the random id alone, every delivery took a random leaf of the index, which each commit
-- writes whole to the WAL and each checkpoint copies again: about three quarters of the bytes an
-- ingest wrote.
ALTER TABLE deliveries ADD COLUMN event_at TEXT NOT NULL DEFAULT '';

-- Deliveries recorded before: their event time from the stored body, as Hoist now takes it (a
-- string of 1 to 64 bytes), so that a redelivery of one of them is still a duplicate.
UPDATE deliveries SET event_at = json_extract(body, '$.happened_at')
WHERE source = 'circleci' AND delivery_key IS NOT NULL
  AND CASE WHEN json_valid(body) AND json_type(body, '$.happened_at') = 'text'
           THEN length(CAST(json_extract(body, '$.happened_at') AS BLOB)) BETWEEN 1 AND 64
           ELSE 0 END;

DROP INDEX deliveries_key;
CREATE UNIQUE INDEX deliveries_key ON deliveries (source, event_at, delivery_key) WHERE delivery_key IS NOT NULL;
