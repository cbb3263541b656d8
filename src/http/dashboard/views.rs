//! What each page shows, shaped from the records for its template (`templates/`, checked when
//! Hoist compiles). Times print in UTC; durations with [`chart::duration`].

use askama::Template;

use super::chart::{self, Chart};
use crate::config::Config;
use crate::core::dora::{Day, Figures, Spread, road};
use crate::core::follow::deck_link;
use crate::core::notify::Links;
use crate::core::plan::ExecutionSeen;
use crate::domain::{
    Approval, Deployment, DeploymentKind, DeploymentStatus, Millis, Release, ReleaseStatus,
};
use crate::report;

/// What every page's frame needs.
pub struct Frame {
    pub viewer: Option<String>,
    /// Whether a sign-out button makes sense (a session cookie is set).
    pub can_sign_out: bool,
    pub csrf: String,
    pub flash: Option<String>,
}

fn at(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// A step's time of day (its date is in the tooltip, [`at`]).
fn clock(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_default()
}

fn took(from: Millis, to: Millis) -> String {
    chart::duration((to - from).max(0) as f64 / 1000.0)
}

// ---- the release list ---------------------------------------------------------------------------

pub struct Row {
    pub id: i64,
    pub project: String,
    pub env: String,
    pub issue: Option<String>,
    pub issue_url: Option<String>,
    pub status: String,
    pub tag: String,
    pub received: String,
    pub lead: String,
}

#[derive(Template)]
#[template(path = "releases.html")]
pub struct ReleasesPage {
    pub frame: Frame,
    pub projects: Vec<String>,
    pub envs: Vec<String>,
    pub statuses: Vec<&'static str>,
    pub project: String,
    pub env: String,
    pub status: String,
    pub rows: Vec<Row>,
    /// The "older" link's query, when there may be more.
    pub older: Option<String>,
}

pub fn row(config: &Config, r: &Release) -> Row {
    let links = Links::of(config);
    Row {
        id: r.id.0,
        project: r.project.to_string(),
        env: r.env.to_string(),
        issue_url: r.issue.as_deref().and_then(|i| links.issue(i)),
        issue: r.issue.clone(),
        status: r.status.to_string(),
        tag: r.tag.as_ref().map(ToString::to_string).unwrap_or_default(),
        received: at(r.received_at),
        lead: r
            .lead_time_ms()
            .map(|ms| chart::duration(ms as f64 / 1000.0))
            .unwrap_or_default(),
    }
}

/// Every environment any project has, in road order, once.
pub fn all_envs(config: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in &config.projects {
        for e in road(p) {
            if !out.iter().any(|o| o == e.as_str()) {
                out.push(e.to_string());
            }
        }
    }
    out
}

pub fn statuses() -> Vec<&'static str> {
    ReleaseStatus::ALL.iter().map(|s| s.as_str()).collect()
}

// ---- one release --------------------------------------------------------------------------------

pub struct Step {
    pub name: String,
    /// The time of day, UTC.
    pub at: String,
    /// The date and time, UTC.
    pub when: String,
    /// Since the step before.
    pub took: String,
}

pub struct Execution {
    pub name: String,
    pub id: String,
    pub status: String,
    pub url: Option<String>,
}

/// One environment on the release's road.
pub struct Stop {
    pub env: String,
    /// What happened there, or why nothing did yet.
    pub state: String,
    pub tag: String,
    pub asked_by: Option<String>,
    pub steps: Vec<Step>,
    pub executions: Vec<Execution>,
    /// The release's first environment is reached by its ticket; later ones are promoted to.
    pub promotable: bool,
    pub approvals_needed: u32,
}

pub struct ApprovalRow {
    pub env: String,
    pub by: String,
    pub via: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "release.html")]
pub struct ReleasePage {
    pub frame: Frame,
    pub id: i64,
    pub project: String,
    pub status: String,
    pub issue: Option<String>,
    pub issue_url: Option<String>,
    pub commit: String,
    pub commit_url: String,
    pub build_url: Option<String>,
    pub error: Option<String>,
    pub stops: Vec<Stop>,
    pub approvals: Vec<ApprovalRow>,
}

fn steps(list: &[(&str, Option<Millis>)]) -> Vec<Step> {
    let mut out = Vec::new();
    let mut last: Option<Millis> = None;
    for (name, t) in list {
        if let Some(t) = t {
            out.push(Step {
                name: name.replace('_', " "),
                at: clock(*t),
                when: at(*t),
                took: last.map(|l| took(l, *t)).unwrap_or_default(),
            });
            last = Some(*t);
        }
    }
    out
}

/// The release page: its own environment's steps, then each environment of its project's road
/// with the deployment that went there (the newest one, rollbacks aside).
pub fn release_page(
    frame: Frame,
    config: &Config,
    r: &Release,
    deployments: &[(Deployment, Vec<ExecutionSeen>)],
    approvals: &[Approval],
) -> ReleasePage {
    let links = Links::of(config);
    let sha = r.best_commit();
    let project = config.project(r.project.as_str());
    let envs = project.map(road).unwrap_or_else(|| vec![r.env.clone()]);
    let execution = |e: &ExecutionSeen| Execution {
        name: e.name.clone(),
        id: e.id.clone(),
        status: e.status.clone(),
        url: deck_link(&config.spinnaker, &e.application, &e.id),
    };
    let mut stops = Vec::new();
    for env in envs {
        let own = env == r.env;
        let deployment = deployments
            .iter()
            .rev()
            .find(|(d, _)| d.env == env && d.kind != DeploymentKind::Rollback);
        let promotion = project
            .and_then(|p| p.environments.get(&env))
            .and_then(|e| e.promotion.as_ref());
        let mut stop = Stop {
            env: env.to_string(),
            state: String::new(),
            tag: String::new(),
            asked_by: None,
            steps: Vec::new(),
            executions: deployment
                .map(|(_, ex)| ex.iter().map(execution).collect())
                .unwrap_or_default(),
            // Nothing to ask while a deployment there is under way or done.
            promotable: !own
                && promotion.is_some()
                && deployment.is_none_or(|(d, _)| {
                    d.status.is_final() && d.status != DeploymentStatus::Deployed
                }),
            approvals_needed: promotion.map_or(0, |p| p.approvals),
        };
        if own {
            stop.state = r.status.to_string();
            stop.tag = r.tag.as_ref().map(ToString::to_string).unwrap_or_default();
            stop.steps = steps(&report::steps(r));
            if let Some((d, _)) = deployment
                && let Some(end) = d.finished_at
                && r.deployed_at.is_none()
            {
                stop.steps.extend(steps(&[(d.status.as_str(), Some(end))]));
            }
        } else if let Some((d, _)) = deployment {
            stop.state = d.status.to_string();
            stop.tag = d.tag.to_string();
            stop.asked_by = d.requested_by.as_ref().map(|by| match d.requested_via {
                Some(via) => format!("{by} (via {via})"),
                None => by.clone(),
            });
            stop.steps = steps(&[
                ("asked", Some(d.created_at)),
                ("triggered", d.triggered_at),
                ("started", d.started_at),
                (
                    d.status.as_str(),
                    d.finished_at.filter(|_| d.status.is_final()),
                ),
            ]);
        } else {
            stop.state = "not yet".into();
        }
        stops.push(stop);
    }
    ReleasePage {
        frame,
        id: r.id.0,
        project: r.project.to_string(),
        status: r.status.to_string(),
        issue_url: r.issue.as_deref().and_then(|i| links.issue(i)),
        issue: r.issue.clone(),
        commit: sha.short().to_string(),
        commit_url: links.commit(&r.repo, sha.as_str()),
        build_url: r.build_url.clone(),
        error: r.error.clone(),
        stops,
        approvals: approvals
            .iter()
            .map(|a| ApprovalRow {
                env: a.env.to_string(),
                by: a.by.clone(),
                via: a.via.to_string(),
                at: at(a.at),
            })
            .collect(),
    }
}

// ---- DORA ---------------------------------------------------------------------------------------

/// A figure as the page prints it.
pub struct Figure {
    pub name: &'static str,
    pub value: String,
    pub detail: String,
}

pub struct Panel {
    pub project: String,
    pub env: String,
    pub figures: Vec<Figure>,
    pub charts: Vec<Chart>,
}

#[derive(Template)]
#[template(path = "dora.html")]
pub struct DoraPage {
    pub frame: Frame,
    pub projects: Vec<String>,
    pub envs: Vec<String>,
    pub project: String,
    pub env: String,
    pub days: u32,
    pub panels: Vec<Panel>,
}

fn spread(s: &Spread) -> (String, String) {
    match (s.median_secs, s.p90_secs) {
        (Some(m), Some(p)) => (
            chart::duration(m),
            format!("p90 {} · {} measured", chart::duration(p), s.count),
        ),
        _ => ("-".into(), "none measured".into()),
    }
}

pub fn panel(f: &Figures, days: &[Day]) -> Panel {
    let (ticket, ticket_detail) = spread(&f.lead_time_from_ticket);
    let (commit, commit_detail) = spread(&f.lead_time_from_commit);
    let (restore, restore_detail) = spread(&f.time_to_restore);
    let series = |v: fn(&Day) -> Option<f64>| -> Vec<(String, Option<f64>)> {
        days.iter().map(|d| (d.date.clone(), v(d))).collect()
    };
    Panel {
        project: f.project.clone(),
        env: f.env.clone(),
        figures: vec![
            Figure {
                name: "Deployment frequency",
                value: format!("{:.2} / day", f.deploys_per_day),
                detail: format!(
                    "{} deploy{} in {} days",
                    f.deploys,
                    if f.deploys == 1 { "" } else { "s" },
                    f.days
                ),
            },
            Figure {
                name: "Lead time from ticket",
                value: ticket,
                detail: ticket_detail,
            },
            Figure {
                name: "Lead time from commit",
                value: commit,
                detail: commit_detail,
            },
            Figure {
                name: "Change failure rate",
                value: f
                    .change_failure_rate
                    .map(|r| format!("{:.1} %", r * 100.0))
                    .unwrap_or_else(|| "-".into()),
                detail: format!(
                    "{} failed, {} rolled back, of {} ended",
                    f.failures, f.rolled_back, f.ended
                ),
            },
            Figure {
                name: "Time to restore",
                value: restore,
                detail: restore_detail,
            },
        ],
        charts: vec![
            chart::bars(
                "Lead time from ticket (median per day)",
                &series(|d| d.lead_time_median_secs),
                chart::duration,
            ),
            chart::bars(
                "Deploys per day",
                &series(|d| Some(d.deploys as f64)),
                chart::count,
            ),
            chart::bars(
                "Failures per day",
                &series(|d| Some(d.failures as f64)),
                chart::count,
            ),
        ],
    }
}

// ---- sign-in and problems ----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignInPage {
    pub frame: Frame,
    /// Whether the form asks for the token (`server.api_token` is set).
    pub token: bool,
    pub problem: Option<String>,
}

#[derive(Template)]
#[template(path = "problem.html")]
pub struct ProblemPage {
    pub frame: Frame,
    pub title: String,
    pub message: String,
}
