//! The four DORA figures (SPEC 15) of one project and environment over a window of days, computed
//! from the deployments into that environment that ended in the window. The store fetches those
//! (an indexed range, never every release); the arithmetic and every definition are here, in
//! one place, for `GET /api/stats`, `hoist stats` and the dashboard alike.
//!
//! Definitions (README "DORA figures" says the same for people):
//! - Only deployments whose trigger Gate accepted count: a promotion called off, one whose tag's
//!   build failed, a trigger never sent or refused end `failed` too, but changed nothing.
//! - A deployment *ends* when it reaches `deployed` or `failed`, at its `finished_at` (Gate's end
//!   time). Those that ended `not_started` or `timed_out` changed nothing Hoist can vouch for and
//!   count in no figure; [`Figures::inconclusive`] says how many there were.
//! - **Deployment frequency**: deployments that reached `deployed` in the window, every kind (a
//!   release's own deploy, a promotion, a rollback: each changed what runs), over its days.
//! - **Lead time for changes**: for each deployment of a release or promotion that reached
//!   `deployed`, its end minus the release's ticket (`received_at`) and minus the commit's date
//!   (`committed_at`, when Bitbucket gave one; a commit dated after its deploy is left out). A
//!   promotion measures from the same release's ticket and commit. Rollbacks redeploy old work
//!   and are left out. Median and p90.
//! - **Change failure rate**: (deployments that ended `failed` + deployments that were rolled
//!   back) / (deployments that ended `deployed` or `failed`). A deployment is *rolled back* when it
//!   reached `deployed` and the next deployment into the environment to end was a rollback: the
//!   team backed it out.
//! - **Time to restore**: from a failed deployment's end to the next `deployed` of the
//!   environment. Failures in a row are one outage, measured from the first; an outage not yet
//!   restored counts once it is.
//!
//! Percentiles interpolate linearly between the closest ranks (the median of an even count is
//! the mean of the middle two).

use serde::Serialize;

use crate::config::{Config, Project};
use crate::domain::{DeploymentKind, DeploymentStatus, EnvName, Millis, ProjectName};

/// The window when none is asked for.
pub const DEFAULT_DAYS: u32 = 30;

/// The longest window: two years, more than any team's question and a bounded range to read.
pub const MAX_DAYS: u32 = 730;

const DAY_MS: Millis = 86_400_000;

/// The one rule for a window's length, `1..=MAX_DAYS` days ([`DEFAULT_DAYS`] when not given):
/// the API, the CLI and the dashboard alike. `Err` says what to send.
pub fn parse_days(raw: Option<&str>) -> Result<u32, String> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(DEFAULT_DAYS);
    };
    match raw.parse::<i64>() {
        Ok(d) if (1..=i64::from(MAX_DAYS)).contains(&d) => Ok(d as u32),
        _ => Err(format!(
            "`days` must be a whole number of days from 1 to {MAX_DAYS}, not `{}`",
            raw.chars().take(40).collect::<String>()
        )),
    }
}

/// A query parameter that names nothing configured, or is malformed: `400` naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadParameter {
    pub parameter: &'static str,
    pub message: String,
}

/// The project and environment pairs a query asks about: the one named, or when `project` or
/// `env` is omitted (or empty) every configured one that fits the other, projects in the
/// configuration's order and each project's environments along its road (an environment after
/// the one it is promoted from). A name that is not configured is a [`BadParameter`].
pub fn scopes(
    config: &Config,
    project: Option<&str>,
    env: Option<&str>,
) -> Result<Vec<(ProjectName, EnvName)>, BadParameter> {
    let (project, env) = (given(project), given(env));
    let projects: Vec<&Project> = match project {
        None => config.projects.iter().collect(),
        Some(name) => vec![config.project(name).ok_or_else(|| BadParameter {
            parameter: "project",
            message: format!(
                "`project`: no project `{}` is configured (there are: {})",
                name.chars().take(60).collect::<String>(),
                config
                    .projects
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?],
    };
    let mut out = Vec::new();
    for p in &projects {
        for e in road(p) {
            if env.is_none_or(|want| e.as_str() == want) {
                out.push((p.name.clone(), e));
            }
        }
    }
    match env {
        Some(name) if out.is_empty() => Err(BadParameter {
            parameter: "env",
            message: format!(
                "`env`: no environment `{}` in {}",
                name.chars().take(60).collect::<String>(),
                project.map_or("any configured project".to_string(), |p| format!(
                    "project `{p}`"
                ))
            ),
        }),
        _ => Ok(out),
    }
}

/// A parameter as given, `None` when absent or blank.
fn given(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

/// A project's environments along its road: each after the one it is promoted from (first
/// environments first), by name among equals.
pub fn road(p: &Project) -> Vec<EnvName> {
    let depth = |start: &EnvName| {
        let mut name = start;
        let mut hops = 0;
        while let Some(from) = p.environments.get(name).and_then(|e| e.promotion.as_ref()) {
            hops += 1;
            name = &from.from;
            if hops > p.environments.len() {
                break; // a loop the configuration should have refused
            }
        }
        hops
    };
    let mut envs: Vec<&EnvName> = p.environments.keys().collect();
    envs.sort_by_key(|e| (depth(e), *e));
    envs.into_iter().cloned().collect()
}

/// The window of `days` days ending at `now`: `(since, until)`, both included.
pub fn window(days: u32, now: Millis) -> (Millis, Millis) {
    (now - i64::from(days) * DAY_MS, now)
}

/// A distribution of durations: how many, the median and the 90th percentile in seconds
/// (`None` when there are none).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    pub count: u64,
    pub median_secs: Option<f64>,
    pub p90_secs: Option<f64>,
}

impl Spread {
    /// The spread of durations in milliseconds, in any order.
    pub fn of_ms(mut values: Vec<Millis>) -> Self {
        values.sort_unstable();
        Self {
            count: values.len() as u64,
            median_secs: percentile(&values, 0.5),
            p90_secs: percentile(&values, 0.9),
        }
    }
}

/// The `q` quantile (0..=1) of sorted `values` in seconds, interpolated linearly between the
/// closest ranks.
pub fn percentile(sorted: &[Millis], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = q.clamp(0.0, 1.0) * last as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let (a, b) = (sorted[lo] as f64, sorted[hi] as f64);
    Some((a + (b - a) * (rank - lo as f64)) / 1000.0)
}

/// The DORA figures of one project and environment over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub project: String,
    pub env: String,
    pub days: u32,
    /// The window, in milliseconds since the epoch, both ends included.
    pub since: Millis,
    pub until: Millis,
    /// Deployments that reached `deployed` in the window (rollbacks included).
    pub deploys: u64,
    pub deploys_per_day: f64,
    pub lead_time_from_ticket: Spread,
    pub lead_time_from_commit: Spread,
    /// Deployments that ended `failed`, plus those rolled back.
    pub failures: u64,
    /// Of which rolled back.
    pub rolled_back: u64,
    /// Deployments that ended `deployed` or `failed`: the failure rate's denominator.
    pub ended: u64,
    /// `failures / ended`; `None` when no deployment ended.
    pub change_failure_rate: Option<f64>,
    pub time_to_restore: Spread,
    /// Deployments that ended `not_started` or `timed_out`: in no figure above.
    pub inconclusive: u64,
}

/// One UTC day of a window: what ended that day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    pub deploys: u64,
    pub failures: u64,
    /// The median lead time from the ticket of that day's deploys.
    pub lead_time_median_secs: Option<f64>,
}

/// A deployment that ended in the window, with its release's times: what the store reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    pub kind: DeploymentKind,
    pub status: DeploymentStatus,
    pub finished_at: Millis,
    /// The release's ticket.
    pub received_at: Millis,
    /// The release's commit date, when known.
    pub committed_at: Option<Millis>,
}

/// What each deployment counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Deployed { rolled_back: bool },
    Failed,
    Inconclusive,
}

impl Outcome {
    fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::Deployed { rolled_back: true })
    }
}

/// Each deployment's outcome, `ended` in the order they ended (the store reads them so).
fn outcomes(ended: &[Ended]) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = ended
        .iter()
        .map(|e| match e.status {
            DeploymentStatus::Deployed => Outcome::Deployed { rolled_back: false },
            DeploymentStatus::Failed => Outcome::Failed,
            _ => Outcome::Inconclusive,
        })
        .collect();
    // A deployed one is rolled back when the next to end (deployed or failed) is a rollback.
    let mut next_is_rollback = false;
    for (e, o) in ended.iter().zip(out.iter_mut()).rev() {
        match o {
            Outcome::Inconclusive => continue,
            Outcome::Deployed { rolled_back } => *rolled_back = next_is_rollback,
            Outcome::Failed => {}
        }
        next_is_rollback = e.kind == DeploymentKind::Rollback;
    }
    out
}

/// Lead times of the deployments that count for them: (from the ticket, from the commit).
fn lead_ms(e: &Ended, o: Outcome) -> Option<(Millis, Option<Millis>)> {
    let counts = matches!(o, Outcome::Deployed { .. }) && e.kind != DeploymentKind::Rollback;
    counts.then(|| {
        let from_commit = e
            .committed_at
            .map(|c| e.finished_at - c)
            .filter(|ms| *ms >= 0);
        (e.finished_at - e.received_at, from_commit)
    })
}

/// Outages restored: from the first of a run of failures to the next `deployed`.
fn restores(ended: &[Ended], outcomes: &[Outcome]) -> Vec<Millis> {
    let mut down_since = None;
    let mut out = Vec::new();
    for (e, o) in ended.iter().zip(outcomes) {
        match o {
            Outcome::Failed => {
                down_since.get_or_insert(e.finished_at);
            }
            Outcome::Deployed { .. } => {
                if let Some(since) = down_since.take() {
                    out.push(e.finished_at - since);
                }
            }
            Outcome::Inconclusive => {}
        }
    }
    out
}

/// The figures of `project`'s `env` over the `days` days ending at `now`, from the deployments
/// that ended in that window, in the order they ended.
pub fn figures(project: &str, env: &str, days: u32, now: Millis, ended: &[Ended]) -> Figures {
    let (since, until) = window(days, now);
    let outcomes = outcomes(ended);
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as u64;
    let deploys = count(&|o| matches!(o, Outcome::Deployed { .. }));
    let failed = count(&|o| *o == Outcome::Failed);
    let rolled_back = count(&|o| *o == Outcome::Deployed { rolled_back: true });
    let failures = failed + rolled_back;
    let (mut from_ticket, mut from_commit) = (Vec::new(), Vec::new());
    for (ticket, commit) in ended
        .iter()
        .zip(&outcomes)
        .filter_map(|(e, o)| lead_ms(e, *o))
    {
        from_ticket.push(ticket);
        from_commit.extend(commit);
    }
    let ended_count = deploys + failed;
    Figures {
        project: project.to_string(),
        env: env.to_string(),
        days,
        since,
        until,
        deploys,
        deploys_per_day: deploys as f64 / f64::from(days.max(1)),
        lead_time_from_ticket: Spread::of_ms(from_ticket),
        lead_time_from_commit: Spread::of_ms(from_commit),
        failures,
        rolled_back,
        ended: ended_count,
        change_failure_rate: (ended_count > 0).then(|| failures as f64 / ended_count as f64),
        time_to_restore: Spread::of_ms(restores(ended, &outcomes)),
        inconclusive: count(&|o| *o == Outcome::Inconclusive),
    }
}

/// The UTC date of a time.
fn date(ms: Millis) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .date_naive()
}

/// Day by day over the window of [`figures`]: every UTC date from the window's start to `now`,
/// oldest first, days without deployments included (the first and last days are partial, so a
/// window of 30 days spans 31 dates unless it starts at midnight). The days' deploys and
/// failures add up to the figures'.
pub fn days(days: u32, now: Millis, ended: &[Ended]) -> Vec<Day> {
    let (since, until) = window(days, now);
    let outcomes = outcomes(ended);
    let first = date(since);
    let span = (date(until) - first).num_days().max(0) as usize + 1;
    let mut out: Vec<(u64, u64, Vec<Millis>)> = vec![(0, 0, Vec::new()); span];
    for (e, o) in ended.iter().zip(&outcomes) {
        let Some(slot) = usize::try_from((date(e.finished_at) - first).num_days())
            .ok()
            .and_then(|i| out.get_mut(i))
        else {
            continue;
        };
        if matches!(o, Outcome::Deployed { .. }) {
            slot.0 += 1;
        }
        if o.is_failure() {
            slot.1 += 1;
        }
        if let Some((ticket, _)) = lead_ms(e, *o) {
            slot.2.push(ticket);
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, (deploys, failures, leads))| Day {
            date: (first + chrono::Days::new(i as u64))
                .format("%Y-%m-%d")
                .to_string(),
            deploys,
            failures,
            lead_time_median_secs: Spread::of_ms(leads).median_secs,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeploymentKind::{Promotion, Release, Rollback};
    use DeploymentStatus::{Deployed, Failed, NotStarted, TimedOut};

    const NOW: Millis = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const H: Millis = 3_600_000;

    fn ended(kind: DeploymentKind, status: DeploymentStatus, at: Millis) -> Ended {
        Ended {
            kind,
            status,
            finished_at: at,
            received_at: at - 2 * H,
            committed_at: Some(at - 5 * H),
        }
    }

    #[test]
    fn days_are_one_to_max_and_default_to_thirty() {
        assert_eq!(parse_days(None), Ok(DEFAULT_DAYS));
        assert_eq!(parse_days(Some("")), Ok(DEFAULT_DAYS));
        assert_eq!(parse_days(Some("1")), Ok(1));
        assert_eq!(parse_days(Some(" 730 ")), Ok(730));
        for bad in [
            "0",
            "-1",
            "731",
            "100000",
            "abc",
            "1.5",
            "99999999999999999999",
        ] {
            let e = parse_days(Some(bad)).unwrap_err();
            assert!(e.contains("`days`"), "{bad}: {e}");
        }
    }

    #[test]
    fn scopes_are_the_named_pair_or_every_configured_one() {
        let text = crate::core::testing::config_text(false).replace(
            "[projects.environments.qa]\n",
            "[projects.environments.qa]\npromote_from = \"stg\"\n",
        );
        let (file, _) = crate::config::ConfigFile::parse(&text).unwrap();
        let config = Config::from_file(&file).unwrap();
        let all = scopes(&config, None, None).unwrap();
        let names: Vec<String> = all.iter().map(|(p, e)| format!("{p}/{e}")).collect();
        assert_eq!(
            names,
            ["payments-api/stg", "payments-api/qa"],
            "along the road"
        );
        assert_eq!(
            scopes(&config, Some("payments-api"), Some("qa"))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(scopes(&config, Some(""), Some("qa")).unwrap().len(), 1);
        let e = scopes(&config, Some("nope"), None).unwrap_err();
        assert_eq!(e.parameter, "project");
        assert!(e.message.contains("payments-api"), "{}", e.message);
        let e = scopes(&config, Some("payments-api"), Some("prod")).unwrap_err();
        assert_eq!(e.parameter, "env");
        assert_eq!(
            scopes(&config, None, Some("prod")).unwrap_err().parameter,
            "env"
        );
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let table: &[(&[Millis], f64, Option<f64>)] = &[
            (&[], 0.5, None),
            (&[7000], 0.5, Some(7.0)),
            (&[7000], 0.9, Some(7.0)),
            (&[1000, 3000], 0.5, Some(2.0)),
            (&[1000, 2000, 3000], 0.5, Some(2.0)),
            (&[0, 10_000], 0.9, Some(9.0)),
            (
                &[1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10_000],
                0.9,
                Some(9.1),
            ),
        ];
        for (values, q, want) in table {
            let got = percentile(values, *q);
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{values:?} {q}: {g}"),
                _ => assert_eq!(got, *want, "{values:?} {q}"),
            }
        }
        let s = Spread::of_ms(vec![3000, 1000, 2000]);
        assert_eq!((s.count, s.median_secs), (3, Some(2.0)));
    }

    #[test]
    fn an_empty_window_has_no_rates_and_no_spreads() {
        let f = figures("api", "prod", 30, NOW, &[]);
        assert_eq!((f.deploys, f.failures, f.inconclusive), (0, 0, 0));
        assert_eq!(f.deploys_per_day, 0.0);
        assert_eq!(f.change_failure_rate, None);
        assert_eq!(f.lead_time_from_ticket.median_secs, None);
        assert_eq!(f.time_to_restore.count, 0);
        assert_eq!((f.since, f.until), (NOW - 30 * 24 * H, NOW));
    }

    #[test]
    fn deploys_failures_and_rollbacks_are_counted_as_defined() {
        let t = NOW - 10 * 24 * H;
        let ended = [
            ended(Release, Deployed, t),
            ended(Promotion, Deployed, t + H), // rolled back by the next
            ended(Rollback, Deployed, t + 2 * H),
            ended(Release, Failed, t + 3 * H),
            ended(Release, NotStarted, t + 4 * H),
            ended(Release, TimedOut, t + 5 * H),
            ended(Release, Deployed, t + 6 * H),
        ];
        let f = figures("api", "prod", 10, NOW, &ended);
        assert_eq!(f.deploys, 4, "deployed, rollbacks included");
        assert!((f.deploys_per_day - 0.4).abs() < 1e-9);
        assert_eq!((f.failures, f.rolled_back, f.inconclusive), (2, 1, 2));
        assert_eq!(f.change_failure_rate, Some(2.0 / 5.0));
        // Lead times: the three deployed releases and promotions, not the rollback.
        assert_eq!(f.lead_time_from_ticket.count, 3);
        assert_eq!(f.lead_time_from_ticket.median_secs, Some(7200.0));
        assert_eq!(f.lead_time_from_commit.median_secs, Some(18_000.0));
        // Restored: failed at t+3h, deployed at t+6h.
        assert_eq!(f.time_to_restore.count, 1);
        assert_eq!(f.time_to_restore.median_secs, Some(10_800.0));
    }

    #[test]
    fn a_rollback_after_a_failure_does_not_mark_the_deploy_before_it() {
        let t = NOW - H * 10;
        let ended = [
            ended(Release, Deployed, t),
            ended(Release, Failed, t + H),
            ended(Rollback, Deployed, t + 2 * H),
        ];
        let f = figures("api", "prod", 1, NOW, &ended);
        assert_eq!((f.failures, f.rolled_back), (1, 0));
        assert_eq!(f.time_to_restore.median_secs, Some(3600.0));
    }

    #[test]
    fn failures_in_a_row_are_one_outage_and_an_open_one_is_not_counted() {
        let t = NOW - H * 20;
        let ended = [
            ended(Release, Failed, t),
            ended(Release, Failed, t + H),
            ended(Release, Deployed, t + 3 * H),
            ended(Release, Failed, t + 4 * H),
            ended(Release, Deployed, t + 5 * H),
            ended(Release, Failed, t + 6 * H),
        ];
        let f = figures("api", "prod", 1, NOW, &ended);
        assert_eq!(f.time_to_restore.count, 2);
        assert_eq!(
            f.time_to_restore.median_secs,
            Some((3.0 + 1.0) / 2.0 * 3600.0)
        );
        assert_eq!(f.failures, 4);
        assert_eq!(f.change_failure_rate, Some(4.0 / 6.0));
    }

    #[test]
    fn a_commit_dated_after_its_deploy_or_unknown_is_left_out() {
        let t = NOW - H;
        let mut future = ended(Release, Deployed, t);
        future.committed_at = Some(t + 1);
        let mut unknown = ended(Release, Deployed, t);
        unknown.committed_at = None;
        let f = figures("api", "prod", 1, NOW, &[future, unknown]);
        assert_eq!(f.lead_time_from_ticket.count, 2);
        assert_eq!(f.lead_time_from_commit.count, 0);
    }

    #[test]
    fn days_cover_the_window_with_zeros_and_add_up_to_the_figures() {
        let now = NOW + 12 * H; // 2026-01-01T12:00Z
        let ended = [
            ended(Release, Deployed, NOW - 2 * 24 * H + H), // 2025-12-30
            ended(Promotion, Deployed, NOW - 2 * 24 * H + 2 * H),
            ended(Rollback, Deployed, NOW - 2 * 24 * H + 3 * H),
            ended(Release, Failed, NOW + H), // 2026-01-01
        ];
        let series = days(3, now, &ended);
        let dates: Vec<&str> = series.iter().map(|d| d.date.as_str()).collect();
        assert_eq!(
            dates,
            ["2025-12-29", "2025-12-30", "2025-12-31", "2026-01-01"]
        );
        let f = figures("api", "prod", 3, now, &ended);
        assert_eq!(series.iter().map(|d| d.deploys).sum::<u64>(), f.deploys);
        assert_eq!(series.iter().map(|d| d.failures).sum::<u64>(), f.failures);
        assert_eq!((series[1].deploys, series[1].failures), (3, 1));
        assert_eq!(series[1].lead_time_median_secs, Some(7200.0));
        assert_eq!((series[3].deploys, series[3].failures), (0, 1));
        assert_eq!(series[0].lead_time_median_secs, None);
    }
}
