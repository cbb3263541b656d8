-- Deploy tracking (SPEC 12): a release's pass into an environment is a deployment, triggered in
-- Spinnaker and then followed through the pipeline executions the trigger started, to its end.
-- Releases triggered before this migration ended at the trigger and are not followed.
ALTER TABLE releases ADD COLUMN deploy_started_at TIMESTAMPTZ;
ALTER TABLE releases ADD COLUMN deployed_at TIMESTAMPTZ;

CREATE TABLE deployments (
    id            BIGSERIAL PRIMARY KEY,
    release_id    BIGINT NOT NULL,
    project       TEXT    NOT NULL,
    env           TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    tag           TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    application   TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    event_id      TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    triggered_at  TIMESTAMPTZ,
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ,
    failed_stage  TEXT,
    error         TEXT,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX deployments_release ON deployments (release_id, id);
CREATE INDEX deployments_env ON deployments (project, env, finished_at);

CREATE TABLE executions (
    id             BIGSERIAL PRIMARY KEY,
    deployment_id  BIGINT NOT NULL,
    execution_id   TEXT    NOT NULL,
    application    TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    started_at     TIMESTAMPTZ,
    ended_at       TIMESTAMPTZ,
    failed_stage   TEXT,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX executions_key ON executions (deployment_id, execution_id);
