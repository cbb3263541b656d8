-- Hoist's records: deliveries in, releases and their steps, jobs out, and the tags Hoist knows.
-- Times are Unix milliseconds (UTC).

CREATE TABLE deliveries (
    id           BIGSERIAL PRIMARY KEY,
    source       TEXT    NOT NULL,
    delivery_key TEXT,
    event        TEXT    NOT NULL,
    client_ip    TEXT,
    received_at  BIGINT  NOT NULL,
    body         TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    release_id   BIGINT
);
CREATE UNIQUE INDEX deliveries_key ON deliveries (source, delivery_key) WHERE delivery_key IS NOT NULL;

CREATE TABLE releases (
    id                  BIGSERIAL PRIMARY KEY,
    project             TEXT    NOT NULL,
    env                 TEXT    NOT NULL,
    repo                TEXT    NOT NULL,
    commit_sha          TEXT    NOT NULL,
    full_commit         TEXT,
    issue               TEXT,
    status              TEXT    NOT NULL,
    is_open             BIGINT  NOT NULL DEFAULT 1,
    tag                 TEXT,
    version             TEXT,
    tag_reused          BIGINT  NOT NULL DEFAULT 0,
    build_url           TEXT,
    build_status        TEXT,
    deploy_event_id     TEXT,
    slack_ts            TEXT,
    error               TEXT,
    received_at         BIGINT  NOT NULL,
    commit_verified_at  BIGINT,
    tagged_at           BIGINT,
    built_at            BIGINT,
    deploy_triggered_at BIGINT,
    finished_at         BIGINT,
    updated_at          BIGINT  NOT NULL
);
CREATE UNIQUE INDEX releases_open ON releases (project, env, commit_sha) WHERE is_open = 1;
CREATE INDEX releases_full_commit ON releases (project, full_commit);
CREATE INDEX releases_tag ON releases (project, tag);

CREATE TABLE release_events (
    id         BIGSERIAL PRIMARY KEY,
    release_id BIGINT  NOT NULL,
    at         BIGINT  NOT NULL,
    step       TEXT    NOT NULL,
    message    TEXT    NOT NULL
);
CREATE INDEX release_events_release ON release_events (release_id, id);

CREATE TABLE jobs (
    id           BIGSERIAL PRIMARY KEY,
    kind         TEXT    NOT NULL,
    release_id   BIGINT,
    lane         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    attempts     BIGINT  NOT NULL DEFAULT 0,
    max_attempts BIGINT  NOT NULL,
    run_at       BIGINT  NOT NULL,
    lease_until  BIGINT,
    claimed_by   TEXT,
    last_error   TEXT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    finished_at  BIGINT
);
CREATE INDEX jobs_ready ON jobs (state, run_at);
CREATE INDEX jobs_lane ON jobs (lane, state, id);
CREATE INDEX jobs_release ON jobs (release_id);

CREATE TABLE job_attempts (
    id          BIGSERIAL PRIMARY KEY,
    job_id      BIGINT  NOT NULL,
    attempt     BIGINT  NOT NULL,
    worker      TEXT    NOT NULL,
    started_at  BIGINT  NOT NULL,
    finished_at BIGINT,
    outcome     TEXT,
    error       TEXT
);
CREATE INDEX job_attempts_job ON job_attempts (job_id, attempt);

CREATE TABLE tags (
    id          BIGSERIAL PRIMARY KEY,
    project     TEXT    NOT NULL,
    env         TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    commit_sha  TEXT    NOT NULL,
    major       BIGINT  NOT NULL,
    minor       BIGINT  NOT NULL,
    patch       BIGINT  NOT NULL,
    release_id  BIGINT,
    origin      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE UNIQUE INDEX tags_name ON tags (project, name);
CREATE INDEX tags_commit ON tags (project, commit_sha);
