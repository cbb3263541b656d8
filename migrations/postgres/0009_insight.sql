-- Insight (SPEC 15): the commit's own time, from Bitbucket's commit answer, so that the lead time
-- for changes can run from the commit as well as from the ticket. NULL when Bitbucket gave no date
-- (and for releases verified before this migration).
ALTER TABLE releases ADD COLUMN committed_at TIMESTAMPTZ;

-- The DORA figures read one project and environment's deployments that ended in a window:
-- `deployments_env (project, env, finished_at)` (0007) serves that range; nothing else is needed.
