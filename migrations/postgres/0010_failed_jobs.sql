-- Metrics (SPEC 15): `hoist_jobs{state}` counts queued, running and failed jobs at every scrape.
-- Queued and running jobs have partial indexes already (0002); failed ones are kept for good
-- among every done job, so they get one too: counting them reads only them.
CREATE INDEX jobs_failed ON jobs (id) WHERE state = 'failed';
