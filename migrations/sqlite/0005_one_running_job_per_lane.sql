-- Jobs of one lane run one at a time. The claim and the enqueue that starts a job running check
-- the lane in what is committed; on PostgreSQL two replicas doing so at the same instant could
-- each start a job of one lane. This index makes that impossible: the second one waits for the
-- first's commit, then a job about to be born running is born queued instead (its insert's
-- conflict clause names this index), and a claim fails on it and claims again.
--
-- A store written before may hold such a pair: every running job but the first of its lane goes
-- back to the queue (its worker, if still at it, finds its claim gone and writes nothing).
UPDATE jobs SET state = 'queued', claimed_by = NULL, lease_until = NULL
WHERE state = 'running'
  AND id NOT IN (SELECT MIN(id) FROM jobs WHERE state = 'running' GROUP BY lane);
CREATE UNIQUE INDEX jobs_running_lane ON jobs (lane) WHERE state = 'running';
