-- PostgreSQL's own types: times as timestamptz, flags as boolean. The store used to share one
-- lowest common denominator with SQLite (milliseconds in BIGINT, flags as 0/1); each backend now
-- maps Hoist's values to its native types, so a person reading the tables sees times and truths.
DROP INDEX releases_open;
ALTER TABLE releases
    ALTER COLUMN is_open DROP DEFAULT,
    ALTER COLUMN is_open TYPE BOOLEAN USING is_open <> 0,
    ALTER COLUMN is_open SET DEFAULT TRUE,
    ALTER COLUMN tag_reused DROP DEFAULT,
    ALTER COLUMN tag_reused TYPE BOOLEAN USING tag_reused <> 0,
    ALTER COLUMN tag_reused SET DEFAULT FALSE,
    ALTER COLUMN received_at TYPE TIMESTAMPTZ USING to_timestamp(received_at / 1000.0),
    ALTER COLUMN commit_verified_at TYPE TIMESTAMPTZ USING to_timestamp(commit_verified_at / 1000.0),
    ALTER COLUMN tagged_at TYPE TIMESTAMPTZ USING to_timestamp(tagged_at / 1000.0),
    ALTER COLUMN built_at TYPE TIMESTAMPTZ USING to_timestamp(built_at / 1000.0),
    ALTER COLUMN deploy_triggered_at TYPE TIMESTAMPTZ USING to_timestamp(deploy_triggered_at / 1000.0),
    ALTER COLUMN finished_at TYPE TIMESTAMPTZ USING to_timestamp(finished_at / 1000.0),
    ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING to_timestamp(updated_at / 1000.0);
CREATE UNIQUE INDEX releases_open ON releases (project, env, commit_sha) WHERE is_open;

ALTER TABLE deliveries
    ALTER COLUMN received_at TYPE TIMESTAMPTZ USING to_timestamp(received_at / 1000.0);
ALTER TABLE release_events
    ALTER COLUMN at TYPE TIMESTAMPTZ USING to_timestamp(at / 1000.0);
ALTER TABLE jobs
    ALTER COLUMN run_at TYPE TIMESTAMPTZ USING to_timestamp(run_at / 1000.0),
    ALTER COLUMN lease_until TYPE TIMESTAMPTZ USING to_timestamp(lease_until / 1000.0),
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING to_timestamp(created_at / 1000.0),
    ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING to_timestamp(updated_at / 1000.0),
    ALTER COLUMN finished_at TYPE TIMESTAMPTZ USING to_timestamp(finished_at / 1000.0);
ALTER TABLE job_attempts
    ALTER COLUMN started_at TYPE TIMESTAMPTZ USING to_timestamp(started_at / 1000.0),
    ALTER COLUMN finished_at TYPE TIMESTAMPTZ USING to_timestamp(finished_at / 1000.0);
ALTER TABLE tags
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING to_timestamp(created_at / 1000.0);
