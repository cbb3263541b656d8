//! Releases, their timelines, deliveries and known tags: reading them, and writing the changes a
//! plan holds.

use super::db::{Conn, Param, Row, params, time};
use super::error::{Result, StoreError};
use crate::core::job::Job;
use crate::core::plan::{Changes, NewTag, ReleaseChange, Transition};
use crate::domain::{
    CommitSha, Delivery, DeliveryId, EnvName, JobId, KnownTag, NewRelease, ProjectName, Release,
    ReleaseEvent, ReleaseId, ReleaseStatus, Source, TagName, TagOrigin, Version, now_ms,
};

pub(crate) const RELEASE_COLUMNS: &str = "id, project, env, repo, commit_sha, full_commit, issue, status, tag, version, tag_reused, build_url, build_status, deploy_event_id, slack_ts, error, received_at, commit_verified_at, committed_at, tagged_at, built_at, deploy_triggered_at, deploy_started_at, deployed_at, finished_at, updated_at";

fn release_from(r: &Row) -> Result<Release> {
    Ok(Release {
        id: ReleaseId(r.i64("id")?),
        project: r.parse("project", ProjectName::parse)?,
        env: r.parse("env", EnvName::parse)?,
        repo: r.string("repo")?,
        commit: r.parse("commit_sha", CommitSha::parse)?,
        full_commit: r.parse_opt("full_commit", CommitSha::parse)?,
        issue: r.opt_string("issue")?,
        status: r.parse("status", |s| {
            ReleaseStatus::parse(s).ok_or_else(|| format!("release status `{s}`"))
        })?,
        tag: r.parse_opt("tag", TagName::parse)?,
        version: r.parse_opt("version", Version::parse)?,
        tag_reused: r.bool("tag_reused")?,
        build_url: r.opt_string("build_url")?,
        build_status: r.opt_string("build_status")?,
        deploy_event_id: r.opt_string("deploy_event_id")?,
        slack_ts: r.opt_string("slack_ts")?,
        error: r.opt_string("error")?,
        received_at: r.time("received_at")?,
        commit_verified_at: r.opt_time("commit_verified_at")?,
        committed_at: r.opt_time("committed_at")?,
        tagged_at: r.opt_time("tagged_at")?,
        built_at: r.opt_time("built_at")?,
        deploy_triggered_at: r.opt_time("deploy_triggered_at")?,
        deploy_started_at: r.opt_time("deploy_started_at")?,
        deployed_at: r.opt_time("deployed_at")?,
        finished_at: r.opt_time("finished_at")?,
        updated_at: r.time("updated_at")?,
    })
}

pub(crate) async fn release(c: &mut dyn Conn, id: ReleaseId) -> Result<Option<Release>> {
    let sql = format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE id = $1");
    c.query_opt(&sql, params![id.0])
        .await?
        .as_ref()
        .map(release_from)
        .transpose()
}

/// Releases newest first, before release `before` when given.
/// The releases of Jira issue `issue`, newest first (at most 20).
pub(crate) async fn releases_of_issue(c: &mut dyn Conn, issue: &str) -> Result<Vec<Release>> {
    let sql = format!(
        "SELECT {RELEASE_COLUMNS} FROM releases WHERE issue = $1 ORDER BY id DESC LIMIT 20"
    );
    c.query(&sql, params![issue])
        .await?
        .iter()
        .map(release_from)
        .collect()
}

pub(crate) async fn releases(
    c: &mut dyn Conn,
    limit: i64,
    before: Option<ReleaseId>,
    only: &ReleaseFilter,
) -> Result<Vec<Release>> {
    // Keyset pagination down the primary key; each filter a condition on the row (the
    // environment: the release's own, or one of its deployments', by `deployments_release`).
    let mut sql = format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE id < $1");
    let before = before.map_or(i64::MAX, |b| b.0);
    let mut p: Vec<Param> = vec![before.into()];
    if let Some(project) = &only.project {
        p.push(project.as_str().into());
        sql.push_str(&format!(" AND project = ${}", p.len()));
    }
    if let Some(env) = &only.env {
        p.push(env.as_str().into());
        let n = p.len();
        sql.push_str(&format!(
            " AND (env = ${n} OR EXISTS (SELECT 1 FROM deployments d WHERE d.release_id = releases.id AND d.env = ${n}))"
        ));
    }
    if let Some(status) = only.status {
        p.push(status.as_str().into());
        sql.push_str(&format!(" AND status = ${}", p.len()));
    }
    p.push(limit.into());
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", p.len()));
    c.query(&sql, &p).await?.iter().map(release_from).collect()
}

/// Which releases a list shows: every one, or those of a project, an environment (their own or
/// one they were promoted into), a status.
#[derive(Debug, Clone, Default)]
pub struct ReleaseFilter {
    pub project: Option<crate::domain::ProjectName>,
    pub env: Option<crate::domain::EnvName>,
    pub status: Option<crate::domain::ReleaseStatus>,
}

/// The most recent release of a project that carries `tag` or was made for `commit`.
pub(crate) async fn release_for_build(
    c: &mut dyn Conn,
    project: &ProjectName,
    tag: &TagName,
    commit: &CommitSha,
) -> Result<Option<Release>> {
    let sql = format!(
        "SELECT {RELEASE_COLUMNS} FROM releases WHERE project = $1 AND (tag = $2 OR full_commit = $3 OR commit_sha = $3)
         ORDER BY CASE WHEN tag = $2 THEN 1 ELSE 0 END DESC, id DESC LIMIT 1"
    );
    c.query_opt(
        &sql,
        params![project.as_str(), tag.as_str(), commit.as_str()],
    )
    .await?
    .as_ref()
    .map(release_from)
    .transpose()
}

pub(crate) async fn insert_release(c: &mut dyn Conn, r: &NewRelease) -> Result<ReleaseId> {
    let now = now_ms();
    let row = c
        .query_one(
            "INSERT INTO releases (project, env, repo, commit_sha, issue, status, is_open, received_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, $7) RETURNING id",
            params![
                r.project.as_str(),
                r.env.as_str(),
                r.repo.as_str(),
                r.commit.as_str(),
                r.issue.as_deref(),
                ReleaseStatus::Received.as_str(),
                time(now)
            ],
        )
        .await?;
    Ok(ReleaseId(row.i64("id")?))
}

/// The open release of a project and environment for `commit`, if any.
pub(crate) async fn open_release(c: &mut dyn Conn, r: &NewRelease) -> Result<Option<ReleaseId>> {
    let row = c
        .query_opt(
            "SELECT id FROM releases WHERE project = $1 AND env = $2 AND commit_sha = $3 AND is_open",
            params![r.project.as_str(), r.env.as_str(), r.commit.as_str()],
        )
        .await?;
    row.map(|r| r.i64("id").map(ReleaseId)).transpose()
}

fn event_from(r: &Row) -> Result<ReleaseEvent> {
    Ok(ReleaseEvent {
        at: r.time("at")?,
        step: r.string("step")?,
        message: r.string("message")?,
    })
}

pub(crate) async fn events(c: &mut dyn Conn, release: ReleaseId) -> Result<Vec<ReleaseEvent>> {
    c.query(
        "SELECT at, step, message FROM release_events WHERE release_id = $1 ORDER BY id",
        params![release.0],
    )
    .await?
    .iter()
    .map(event_from)
    .collect()
}

/// Timeline events of every release after event id `after`: (event id, release, event).
pub(crate) async fn events_since(
    c: &mut dyn Conn,
    after: i64,
) -> Result<Vec<(i64, ReleaseId, ReleaseEvent)>> {
    c.query(
        "SELECT id, release_id, at, step, message FROM release_events WHERE id > $1 ORDER BY id",
        params![after],
    )
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.i64("id")?,
            ReleaseId(r.i64("release_id")?),
            event_from(r)?,
        ))
    })
    .collect()
}

pub(crate) async fn add_event(
    c: &mut dyn Conn,
    release: ReleaseId,
    step: &str,
    message: &str,
) -> Result<()> {
    c.execute(
        "INSERT INTO release_events (release_id, at, step, message) VALUES ($1, $2, $3, $4)",
        params![release.0, time(now_ms()), step, message],
    )
    .await?;
    Ok(())
}

pub(crate) const DELIVERY_COLUMNS: &str =
    "id, source, delivery_key, event_at, event, client_ip, received_at, body, outcome, release_id";

pub(crate) fn delivery_from(r: &Row) -> Result<Delivery> {
    Ok(Delivery {
        id: DeliveryId(r.i64("id")?),
        source: r.parse("source", |s| {
            Source::parse(s).ok_or_else(|| format!("delivery source `{s}`"))
        })?,
        key: r.opt_string("delivery_key")?,
        event_at: r.string("event_at")?,
        event: r.string("event")?,
        client_ip: r.opt_string("client_ip")?,
        received_at: r.time("received_at")?,
        body: r.string("body")?,
        outcome: r.string("outcome")?,
        release: r.opt_i64("release_id")?.map(ReleaseId),
    })
}

pub(crate) async fn delivery(c: &mut dyn Conn, id: DeliveryId) -> Result<Option<Delivery>> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1");
    c.query_opt(&sql, params![id.0])
        .await?
        .as_ref()
        .map(delivery_from)
        .transpose()
}

fn tag_from(r: &Row) -> Result<KnownTag> {
    Ok(KnownTag {
        project: r.parse("project", ProjectName::parse)?,
        env: r.parse("env", EnvName::parse)?,
        name: r.parse("name", TagName::parse)?,
        commit: r.parse("commit_sha", CommitSha::parse)?,
        release: r.opt_i64("release_id")?.map(ReleaseId),
        origin: r.parse("origin", |s| {
            TagOrigin::parse(s).ok_or_else(|| format!("tag origin `{s}`"))
        })?,
    })
}

/// Tags Hoist knows on a project's commit (full hash, or an unambiguous prefix), every
/// environment, highest version first.
pub(crate) async fn tags_for_commit(
    c: &mut dyn Conn,
    project: &ProjectName,
    commit: &CommitSha,
) -> Result<Vec<KnownTag>> {
    c.query(
        "SELECT project, env, name, commit_sha, release_id, origin FROM tags
         WHERE project = $1 AND (commit_sha = $2 OR substr(commit_sha, 1, length($2)) = $2)
         ORDER BY major DESC, minor DESC, patch DESC",
        params![project.as_str(), commit.as_str()],
    )
    .await?
    .iter()
    .map(tag_from)
    .collect()
}

/// Every tag of one project's environment that Hoist knows.
pub(crate) async fn known_tags(
    c: &mut dyn Conn,
    project: &ProjectName,
    env: &EnvName,
) -> Result<Vec<KnownTag>> {
    c.query(
        "SELECT project, env, name, commit_sha, release_id, origin FROM tags WHERE project = $1 AND env = $2",
        params![project.as_str(), env.as_str()],
    )
    .await?
    .iter()
    .map(tag_from)
    .collect()
}

/// Records a tag; a tag already known (same project and name) keeps its first record.
pub(crate) async fn record_tag(c: &mut dyn Conn, t: &NewTag) -> Result<()> {
    // The store keeps version numbers as signed 64-bit integers; the families' parsers give u64.
    let n = |v: u64| {
        i64::try_from(v)
            .map_err(|_| StoreError::Failed(format!("version {v} is too large to store")))
    };
    c.execute(
        "INSERT INTO tags (project, env, name, commit_sha, major, minor, patch, release_id, origin, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (project, name) DO NOTHING",
        params![
            t.project.as_str(),
            t.env.as_str(),
            t.name.as_str(),
            t.commit.as_str(),
            n(t.version.major)?,
            n(t.version.minor)?,
            n(t.version.patch)?,
            t.release.map(|r| r.0),
            t.origin.as_str(),
            time(now_ms())
        ],
    )
    .await?;
    Ok(())
}

/// Adds a job, runnable at once.
pub(crate) async fn enqueue(c: &mut dyn Conn, job: &Job, max_attempts: u32) -> Result<JobId> {
    let payload =
        serde_json::to_string(&job.spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let lane = job.lane.to_string();
    let row = c
        .query_one(
            "INSERT INTO jobs (kind, release_id, lane, payload, state, attempts, max_attempts, run_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $7) RETURNING id",
            params![
                job.spec.kind(),
                job.spec.release().map(|r| r.0),
                lane.as_str(),
                payload.as_str(),
                i64::from(max_attempts),
                time(job.run_at.unwrap_or_else(now_ms)),
                time(now_ms())
            ],
        )
        .await?;
    Ok(JobId(row.i64("id")?))
}

/// Writes one release change, if the release's status allows it ([`ReleaseChange::transition`]);
/// a change that no longer applies is [`StoreError::Stale`].
async fn change_release(c: &mut dyn Conn, id: ReleaseId, change: &ReleaseChange) -> Result<()> {
    let now = now_ms();
    let changed = match (change, change.transition()) {
        (ReleaseChange::CommitVerified { full, committed_at }, _) => {
            c.execute(
                "UPDATE releases SET full_commit = $1, commit_verified_at = COALESCE(commit_verified_at, $2), committed_at = COALESCE(committed_at, $4), updated_at = $2 WHERE id = $3",
                params![full.as_str(), time(now), id.0, time(*committed_at)],
            )
            .await?
        }
        (ReleaseChange::SlackThread { ts }, _) => {
            c.execute(
                "UPDATE releases SET slack_ts = COALESCE(slack_ts, $1) WHERE id = $2",
                params![ts.as_str(), id.0],
            )
            .await?
        }
        (_, Transition::Keep) => 1,
        (_, Transition::To(to, from)) => {
            // The status and what follows from it: a final release is closed (another ticket for
            // its commit starts a new one) and finished now.
            let finished = to.is_terminal().then_some(now);
            let allowed = from
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            let guard = format!("id = $1 AND status IN ({allowed})");
            let head = "status = $2, is_open = $3, finished_at = $4, updated_at = $5";
            let base = params![id.0, to.as_str(), !to.is_terminal(), time(finished), time(now)];
            match change {
                ReleaseChange::Tagged {
                    tag,
                    version,
                    reused,
                } => {
                    let version = version.to_string();
                    let mut p = base.to_vec();
                    p.extend_from_slice(params![tag.as_str(), version.as_str(), *reused]);
                    let sql = format!(
                        "UPDATE releases SET {head}, tag = $6, version = $7, tag_reused = $8, tagged_at = $5 WHERE {guard}"
                    );
                    c.execute(&sql, &p).await?
                }
                ReleaseChange::Built {
                    status,
                    url,
                    success: _,
                } => {
                    let mut p = base.to_vec();
                    p.extend_from_slice(params![status.as_str(), url.as_deref()]);
                    let sql = format!(
                        "UPDATE releases SET {head}, build_status = $6, build_url = COALESCE($7, build_url), built_at = $5 WHERE {guard}"
                    );
                    c.execute(&sql, &p).await?
                }
                ReleaseChange::DeployTriggered { event_id } => {
                    let mut p = base.to_vec();
                    p.extend_from_slice(params![event_id.as_deref()]);
                    let sql = format!(
                        "UPDATE releases SET {head}, deploy_event_id = $6, deploy_triggered_at = $5 WHERE {guard}"
                    );
                    c.execute(&sql, &p).await?
                }
                ReleaseChange::Failed { error } => {
                    let mut p = base.to_vec();
                    p.extend_from_slice(params![error.as_str()]);
                    let sql = format!("UPDATE releases SET {head}, error = $6 WHERE {guard}");
                    c.execute(&sql, &p).await?
                }
                ReleaseChange::DeployStarted { at } => {
                    let mut p = base.to_vec();
                    p.push(time(*at));
                    let sql = format!("UPDATE releases SET {head}, deploy_started_at = $6 WHERE {guard}");
                    c.execute(&sql, &p).await?
                }
                ReleaseChange::Deployed { at } => {
                    let mut p = base.to_vec();
                    p.push(time(*at));
                    let sql = format!("UPDATE releases SET {head}, deployed_at = $6 WHERE {guard}");
                    c.execute(&sql, &p).await?
                }
                ReleaseChange::DeployEnded { error, .. } => {
                    let mut p = base.to_vec();
                    p.extend_from_slice(params![error.as_str()]);
                    let sql = format!("UPDATE releases SET {head}, error = $6 WHERE {guard}");
                    c.execute(&sql, &p).await?
                }
                ReleaseChange::Reopened { .. } => {
                    let sql = format!("UPDATE releases SET {head}, error = NULL WHERE {guard}");
                    c.execute(&sql, base).await?
                }
                ReleaseChange::CommitVerified { .. } | ReleaseChange::SlackThread { .. } => 1,
            }
        }
    };
    if changed == 0 {
        return Err(StoreError::Stale(format!(
            "release {id}: {change:?} does not apply to it as it is now"
        )));
    }
    Ok(())
}

/// Writes everything a plan holds. Answers the ids of the jobs it enqueued.
pub(crate) async fn apply(
    c: &mut dyn Conn,
    changes: &Changes,
    max_attempts: u32,
) -> Result<Vec<JobId>> {
    for (id, change) in &changes.releases {
        change_release(c, *id, change).await?;
    }
    for new in &changes.new_deployments {
        super::deployments::record(c, new).await?;
    }
    for (id, change) in &changes.deployments {
        super::deployments::change(c, *id, change).await?;
    }
    for e in &changes.executions {
        super::deployments::saw(c, e).await?;
    }
    for e in &changes.timeline {
        add_event(c, e.release, e.step, &e.message).await?;
    }
    for t in &changes.tags {
        record_tag(c, t).await?;
    }
    if let Some(d) = &changes.delivery {
        c.execute(
            "UPDATE deliveries SET outcome = $1, release_id = COALESCE($2, release_id) WHERE id = $3",
            params![d.outcome.as_str(), d.release.map(|r| r.0), d.delivery.0],
        )
        .await?;
    }
    let mut jobs = Vec::with_capacity(changes.jobs.len());
    for job in &changes.jobs {
        jobs.push(enqueue(c, job, max_attempts).await?);
    }
    Ok(jobs)
}
