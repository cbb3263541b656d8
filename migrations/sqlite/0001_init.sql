-- Hoist's records: deliveries in, releases and their steps, jobs out, and the tags Hoist knows.
-- Times are Unix milliseconds (UTC).

CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    source       TEXT    NOT NULL,
    delivery_key TEXT,
    event        TEXT    NOT NULL,
    client_ip    TEXT,
    received_at  INTEGER NOT NULL,
    body         TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    release_id   INTEGER
);
CREATE UNIQUE INDEX deliveries_key ON deliveries (source, delivery_key) WHERE delivery_key IS NOT NULL;

CREATE TABLE releases (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    project             TEXT    NOT NULL,
    env                 TEXT    NOT NULL,
    repo                TEXT    NOT NULL,
    commit_sha          TEXT    NOT NULL,
    full_commit         TEXT,
    issue               TEXT,
    status              TEXT    NOT NULL,
    is_open             INTEGER NOT NULL DEFAULT 1,
    tag                 TEXT,
    version             TEXT,
    tag_reused          INTEGER NOT NULL DEFAULT 0,
    build_url           TEXT,
    build_status        TEXT,
    deploy_event_id     TEXT,
    slack_ts            TEXT,
    error               TEXT,
    received_at         INTEGER NOT NULL,
    commit_verified_at  INTEGER,
    tagged_at           INTEGER,
    built_at            INTEGER,
    deploy_triggered_at INTEGER,
    finished_at         INTEGER,
    updated_at          INTEGER NOT NULL
);
CREATE UNIQUE INDEX releases_open ON releases (project, env, commit_sha) WHERE is_open = 1;
CREATE INDEX releases_full_commit ON releases (project, full_commit);
CREATE INDEX releases_tag ON releases (project, tag);

CREATE TABLE release_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    step       TEXT    NOT NULL,
    message    TEXT    NOT NULL
);
CREATE INDEX release_events_release ON release_events (release_id, id);

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL,
    release_id   INTEGER,
    lane         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    lease_until  INTEGER,
    claimed_by   TEXT,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
CREATE INDEX jobs_ready ON jobs (state, run_at);
CREATE INDEX jobs_lane ON jobs (lane, state, id);
CREATE INDEX jobs_release ON jobs (release_id);

CREATE TABLE job_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    worker      TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT,
    error       TEXT
);
CREATE INDEX job_attempts_job ON job_attempts (job_id, attempt);

CREATE TABLE tags (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project     TEXT    NOT NULL,
    env         TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    commit_sha  TEXT    NOT NULL,
    major       INTEGER NOT NULL,
    minor       INTEGER NOT NULL,
    patch       INTEGER NOT NULL,
    release_id  INTEGER,
    origin      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX tags_name ON tags (project, name);
CREATE INDEX tags_commit ON tags (project, commit_sha);
