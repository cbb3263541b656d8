//! Recording inbound deliveries, what they start with them, in the writer's shared commits.
//!
//! A 2xx means durable: a request is answered only once the transaction holding its delivery is
//! committed. Deliveries that arrive together are written together ([`apply`]): keyed deliveries
//! (every CircleCI webhook) and their build jobs with one multi-row statement per 64, each key
//! inserted at most once (`ON CONFLICT DO NOTHING`); tickets and the rest one at a time. No
//! statement is expected to fail on a concurrent writer's key, so the batch needs no savepoints:
//! an unexpected failure fails the whole batch, whose senders are answered 503 and send again.

use std::collections::HashMap;

use super::db::{Conn, Param, params, time};
use super::error::{Result, StoreError};
use super::records;
use crate::core::inbound::{self, Action, Ingest, RELEASE_STARTED};
use crate::core::job::Job;
use crate::domain::{DeliveryId, DeliveryKey, NewDelivery, ReleaseId, Source, now_ms};

/// What recording a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// A new release was started (its first job queued).
    Created {
        release: ReleaseId,
        delivery: DeliveryId,
    },
    /// A release for the same project, environment and commit was open: the delivery joined it.
    Joined {
        release: ReleaseId,
        delivery: DeliveryId,
    },
    /// The same delivery was received before; nothing changed.
    Duplicate {
        delivery: DeliveryId,
        release: Option<ReleaseId>,
    },
    /// Recorded with a job to run (a build event).
    Queued { delivery: DeliveryId },
    /// Recorded; nothing follows.
    Recorded { delivery: DeliveryId },
}

impl Ingested {
    pub fn delivery(&self) -> DeliveryId {
        match *self {
            Self::Created { delivery, .. }
            | Self::Joined { delivery, .. }
            | Self::Duplicate { delivery, .. }
            | Self::Queued { delivery }
            | Self::Recorded { delivery } => delivery,
        }
    }

    /// Whether it queued a job the worker should look for.
    pub fn queued_work(&self) -> bool {
        matches!(self, Self::Created { .. } | Self::Queued { .. })
    }
}

/// The most rows one multi-row statement takes.
const STATEMENT_ROWS: usize = 64;
/// Whether a plan goes in a multi-row statement: a keyed delivery that starts no release.
fn multi_row(plan: &Ingest) -> bool {
    plan.delivery.key.is_some()
        && matches!(
            plan.action,
            Action::Record { .. } | Action::HandleBuild { .. }
        )
}

/// The outcome a delivery is recorded with.
fn outcome(action: &Action) -> &str {
    match action {
        Action::Record { outcome }
        | Action::HandleBuild { outcome }
        | Action::RecordTags { outcome, .. }
        | Action::PromoteOnStatus { outcome, .. } => outcome,
        Action::StartRelease(_) => RELEASE_STARTED,
    }
}

const INSERT_DELIVERY: &str = "INSERT INTO deliveries (source, event_at, delivery_key, event, client_ip, received_at, body, outcome, release_id) VALUES ";
const DELIVERY_ONCE: &str = " ON CONFLICT (source, event_at, delivery_key) WHERE delivery_key IS NOT NULL DO NOTHING RETURNING id, source, event_at, delivery_key";

/// The nine values of a delivery's row.
fn delivery_row<'a>(
    d: &'a NewDelivery,
    ip: &'a Option<String>,
    outcome: &'a str,
    release: Option<ReleaseId>,
    now: i64,
) -> [Param<'a>; 9] {
    [
        d.source.as_str().into(),
        d.event_at.as_str().into(),
        d.key.as_deref().into(),
        d.event.as_str().into(),
        ip.as_deref().into(),
        time(now),
        d.body.as_str().into(),
        outcome.into(),
        release.map(|r| r.0).into(),
    ]
}

/// `VALUES` for `rows` rows of `width` parameters: `($1, $2), ($3, $4)`.
fn values(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=width).map(|k| format!("${}", r * width + k)).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The writes of a batch, answered in its order.
pub(super) async fn apply(c: &mut dyn Conn, plans: &[Ingest], max: u32) -> Result<Vec<Ingested>> {
    let mut out: Vec<Option<Ingested>> = vec![None; plans.len()];
    let now = now_ms();
    let ips: Vec<Option<String>> = plans
        .iter()
        .map(|p| p.delivery.client_ip.map(|ip| ip.to_string()))
        .collect();
    let keyed: Vec<usize> = (0..plans.len()).filter(|&i| multi_row(&plans[i])).collect();
    let mut ids: HashMap<DeliveryKey, DeliveryId> = HashMap::new();
    for chunk in keyed.chunks(STATEMENT_ROWS) {
        let sql = format!("{INSERT_DELIVERY}{}{DELIVERY_ONCE}", values(chunk.len(), 9));
        let mut p = Vec::with_capacity(chunk.len() * 9);
        for &i in chunk {
            let plan = &plans[i];
            p.extend(delivery_row(
                &plan.delivery,
                &ips[i],
                outcome(&plan.action),
                None,
                now,
            ));
        }
        for row in c.query(&sql, &p).await? {
            let key = DeliveryKey {
                source: row.parse("source", |s| {
                    Source::parse(s).ok_or_else(|| format!("source `{s}`"))
                })?,
                event_at: row.string("event_at")?,
                id: row.string("delivery_key")?,
            };
            ids.insert(key, DeliveryId(row.i64("id")?));
        }
    }
    let mut first = std::collections::HashSet::new();
    let mut jobs = Vec::new();
    for &i in &keyed {
        let plan = &plans[i];
        let key = plan
            .delivery
            .dedupe_key()
            .expect("keyed deliveries have a key");
        out[i] = Some(match ids.get(&key) {
            // The first request with this key in the batch is the one recorded.
            Some(&delivery) if first.insert(key) => match plan.action.first_job(delivery, None) {
                Some(job) => {
                    jobs.push(job);
                    Ingested::Queued { delivery }
                }
                None => Ingested::Recorded { delivery },
            },
            Some(&delivery) => Ingested::Duplicate {
                delivery,
                release: None,
            },
            None => duplicate_of(c, &plan.delivery).await?,
        });
    }
    enqueue_all(c, &jobs, max).await?;
    for (i, plan) in plans.iter().enumerate() {
        if out[i].is_none() {
            out[i] = Some(apply_one(c, plan, &ips[i], max).await?);
        }
    }
    Ok(out
        .into_iter()
        .map(|v| v.expect("every request answered"))
        .collect())
}

/// Jobs in multi-row statements.
async fn enqueue_all(c: &mut dyn Conn, jobs: &[Job], max: u32) -> Result<()> {
    let now = now_ms();
    for chunk in jobs.chunks(STATEMENT_ROWS) {
        let payloads: Vec<String> = chunk
            .iter()
            .map(|j| serde_json::to_string(&j.spec).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect::<Result<_>>()?;
        let lanes: Vec<String> = chunk.iter().map(|j| j.lane.to_string()).collect();
        // Each row's five values, then the time every row shares, numbered after them.
        let at = chunk.len() * 5 + 1;
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| {
                let k = r * 5;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, 'queued', 0, ${at}, ${at}, ${at})",
                    k + 1,
                    k + 2,
                    k + 3,
                    k + 4,
                    k + 5
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO jobs (kind, release_id, lane, payload, max_attempts, state, attempts, run_at, created_at, updated_at) VALUES {}",
            rows.join(", ")
        );
        let mut p: Vec<Param> = Vec::with_capacity(chunk.len() * 5 + 1);
        for (i, j) in chunk.iter().enumerate() {
            p.extend::<[Param; 5]>([
                j.spec.kind().into(),
                j.spec.release().map(|r| r.0).into(),
                lanes[i].as_str().into(),
                payloads[i].as_str().into(),
                i64::from(max).into(),
            ]);
        }
        p.push(time(now));
        c.execute(&sql, &p).await?;
    }
    Ok(())
}

/// The delivery recorded before under the same key as `d`.
async fn duplicate_of(c: &mut dyn Conn, d: &NewDelivery) -> Result<Ingested> {
    find_duplicate(c, d).await?.ok_or_else(|| {
        StoreError::Failed("a delivery's key was taken, yet no delivery holds it".into())
    })
}

async fn find_duplicate(c: &mut dyn Conn, d: &NewDelivery) -> Result<Option<Ingested>> {
    let Some(key) = &d.key else { return Ok(None) };
    let row = c
        .query_opt(
            "SELECT id, release_id FROM deliveries WHERE source = $1 AND event_at = $2 AND delivery_key = $3",
            params![d.source.as_str(), d.event_at.as_str(), key.as_str()],
        )
        .await?;
    row.map(|r| {
        Ok(Ingested::Duplicate {
            delivery: DeliveryId(r.i64("id")?),
            release: r.opt_i64("release_id")?.map(ReleaseId),
        })
    })
    .transpose()
}

/// Inserts one delivery; `None` when its key was taken (a duplicate).
async fn insert_delivery(
    c: &mut dyn Conn,
    d: &NewDelivery,
    ip: &Option<String>,
    outcome: &str,
    release: Option<ReleaseId>,
) -> Result<Option<DeliveryId>> {
    let sql = format!("{INSERT_DELIVERY}{}{DELIVERY_ONCE}", values(1, 9));
    let row = c
        .query_opt(&sql, &delivery_row(d, ip, outcome, release, now_ms()))
        .await?;
    row.map(|r| r.i64("id").map(DeliveryId)).transpose()
}

/// One delivery that does not go in a multi-row statement.
async fn apply_one(
    c: &mut dyn Conn,
    plan: &Ingest,
    ip: &Option<String>,
    max: u32,
) -> Result<Ingested> {
    if let Some(dup) = find_duplicate(c, &plan.delivery).await? {
        return Ok(dup);
    }
    let release = match &plan.action {
        Action::StartRelease(r) => r,
        action => {
            let Some(delivery) =
                insert_delivery(c, &plan.delivery, ip, outcome(action), None).await?
            else {
                return duplicate_of(c, &plan.delivery).await;
            };
            if let Action::RecordTags { tags, .. } = action {
                for t in tags {
                    records::record_tag(c, t).await?;
                }
            }
            return Ok(match action.first_job(delivery, None) {
                Some(job) => {
                    records::enqueue(c, &job, max).await?;
                    Ingested::Queued { delivery }
                }
                None => Ingested::Recorded { delivery },
            });
        }
    };
    // A ticket: a new release, unless one is open for the same commit (made before, or by another
    // replica at this instant: the open-release index lets one insert win).
    let started = match records::open_release(c, release).await? {
        Some(_) => None,
        None => insert_open_release(c, release).await?,
    };
    let Some(id) = started else {
        let id = records::open_release(c, release)
            .await?
            .ok_or_else(|| StoreError::Failed("an open release vanished".into()))?;
        let delivery = insert_delivery(
            c,
            &plan.delivery,
            ip,
            &inbound::joined_outcome(id),
            Some(id),
        )
        .await?
        .ok_or_else(|| StoreError::Failed("a ticket's key was taken meanwhile".into()))?;
        records::add_event(c, id, "received", &inbound::joined_message(release)).await?;
        return Ok(Ingested::Joined {
            release: id,
            delivery,
        });
    };
    let delivery = insert_delivery(c, &plan.delivery, ip, RELEASE_STARTED, Some(id))
        .await?
        .ok_or_else(|| StoreError::Failed("a ticket's key was taken meanwhile".into()))?;
    records::add_event(c, id, "received", &inbound::started_message(release)).await?;
    if let Some(job) = plan.action.first_job(delivery, Some(id)) {
        records::enqueue(c, &job, max).await?;
    }
    Ok(Ingested::Created {
        release: id,
        delivery,
    })
}

/// Inserts a release as the open one for its commit; `None` when another is open already.
async fn insert_open_release(
    c: &mut dyn Conn,
    r: &crate::domain::NewRelease,
) -> Result<Option<ReleaseId>> {
    let now = now_ms();
    let row = c
        .query_opt(
            "INSERT INTO releases (project, env, repo, commit_sha, issue, status, is_open, received_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, $7)
             ON CONFLICT (project, env, commit_sha) WHERE is_open DO NOTHING RETURNING id",
            params![
                r.project.as_str(),
                r.env.as_str(),
                r.repo.as_str(),
                r.commit.as_str(),
                r.issue.as_deref(),
                crate::domain::ReleaseStatus::Received.as_str(),
                time(now)
            ],
        )
        .await?;
    row.map(|r| r.i64("id").map(ReleaseId)).transpose()
}
