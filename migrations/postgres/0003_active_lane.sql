-- The claim checks that no earlier job of the candidate's lane is still queued or running. A
-- partial index of the unfinished jobs only answers that in one descent however many finished
-- jobs the table keeps. With the old (lane, state, id) index (two descents, one per state),
-- PostgreSQL planned a sequential scan of jobs for the check while the table was new, and kept
-- that plan for its cached statement as the table grew: one scan of every job per claim.
DROP INDEX IF EXISTS jobs_lane;
CREATE INDEX jobs_active_lane ON jobs (lane, id) WHERE state IN ('queued', 'running');
