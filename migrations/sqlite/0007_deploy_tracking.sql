-- Deploy tracking (SPEC 12): a release's pass into an environment is a deployment, triggered in
-- Spinnaker and then followed through the pipeline executions the trigger started, to its end.
-- Releases triggered before this migration ended at the trigger and are not followed.
ALTER TABLE releases ADD COLUMN deploy_started_at INTEGER;
ALTER TABLE releases ADD COLUMN deployed_at INTEGER;

CREATE TABLE deployments (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id    INTEGER NOT NULL,
    project       TEXT    NOT NULL,
    env           TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    tag           TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    application   TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    event_id      TEXT,
    created_at    INTEGER NOT NULL,
    triggered_at  INTEGER,
    started_at    INTEGER,
    finished_at   INTEGER,
    failed_stage  TEXT,
    error         TEXT,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX deployments_release ON deployments (release_id, id);
CREATE INDEX deployments_env ON deployments (project, env, finished_at);

CREATE TABLE executions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id  INTEGER NOT NULL,
    execution_id   TEXT    NOT NULL,
    application    TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    started_at     INTEGER,
    ended_at       INTEGER,
    failed_stage   TEXT,
    updated_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX executions_key ON executions (deployment_id, execution_id);
