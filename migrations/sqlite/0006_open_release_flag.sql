-- The open-release index tests the flag as a truth (`WHERE is_open`), as PostgreSQL's boolean
-- column does since its migration 0006, so that both backends run the same statements.
DROP INDEX releases_open;
CREATE UNIQUE INDEX releases_open ON releases (project, env, commit_sha) WHERE is_open;
