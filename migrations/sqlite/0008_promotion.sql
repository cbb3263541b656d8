-- Promotion (SPEC 13): who asked for each deployment and how, one promotion of a release into an
-- environment at a time, and the approvals people gave.
ALTER TABLE deployments ADD COLUMN requested_by TEXT;
ALTER TABLE deployments ADD COLUMN requested_via TEXT;

-- The same promotion asked twice, or from two replicas at once, happens once: a release has at
-- most one deployment into an environment that is under way or done (a failed one may be asked
-- again; rollbacks redeploy older releases and are not counted).
CREATE UNIQUE INDEX deployments_one_live_per_env ON deployments (release_id, env)
    WHERE kind <> 'rollback' AND status NOT IN ('failed', 'not_started', 'timed_out');

CREATE TABLE approvals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id  INTEGER NOT NULL,
    env         TEXT    NOT NULL,
    approver    TEXT    NOT NULL,
    via         TEXT    NOT NULL,
    at          INTEGER NOT NULL
);
-- One approval per person: a second click counts once.
CREATE UNIQUE INDEX approvals_once ON approvals (release_id, env, approver);

-- A Jira status change promotes its issue's release: releases found by issue.
CREATE INDEX releases_issue ON releases (issue, id);
