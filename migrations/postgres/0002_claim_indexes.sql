-- The claim query looks for due queued jobs and for running jobs whose lease expired; partial
-- indexes keep both lookups small however many finished jobs the table keeps.
DROP INDEX IF EXISTS jobs_ready;
CREATE INDEX jobs_queued ON jobs (run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';
