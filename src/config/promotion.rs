//! How a release moves into an environment after its first (SPEC 13): where it comes from, who
//! must approve, how long it must soak, and when promotion is frozen.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use std::collections::BTreeMap;

use crate::domain::EnvName;

use super::file::EnvConfig;

/// An environment that receives releases deployed in another (`promote_from`).
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    pub from: EnvName,
    /// Promote as soon as every condition holds.
    pub auto: bool,
    /// Distinct approvers needed (0: none).
    pub approvals: u32,
    /// Who may approve (Slack user ids, or the names the API and CLI give).
    pub approvers: Vec<String>,
    /// How long the release must have been deployed in `from`.
    pub soak: Duration,
    pub freeze: Vec<FreezeWindow>,
    /// Wait for CircleCI to build this environment's tag before deploying it.
    pub build: bool,
    /// A Jira status that promotes the release when the issue moves to it.
    pub on_status: Option<String>,
}

/// A weekly window with no promotion, in a time zone: `Fri 15:00 - Mon 09:00 Asia/Seoul`.
#[derive(Debug, Clone, PartialEq)]
pub struct FreezeWindow {
    /// As written, for messages.
    pub text: String,
    start: (Weekday, NaiveTime),
    end: (Weekday, NaiveTime),
    tz: Tz,
}

const WEEK_MINUTES: u32 = 7 * 24 * 60;

fn minute_of_week(day: Weekday, time: NaiveTime) -> u32 {
    day.num_days_from_monday() * 24 * 60 + time.hour() * 60 + time.minute()
}

impl FreezeWindow {
    /// Parses `DAY HH:MM - DAY HH:MM ZONE` (days `Mon`..`Sun`, a 24-hour clock, an IANA zone
    /// such as `Asia/Seoul` or `UTC`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "`{text}` is not a freeze window such as \"Fri 15:00 - Mon 09:00 Asia/Seoul\" (DAY HH:MM - DAY HH:MM ZONE)"
            )
        };
        let (from, rest) = text.split_once('-').ok_or_else(usage)?;
        let mut to = rest.split_whitespace();
        let mut from = from.split_whitespace();
        let point =
            |day: Option<&str>, time: Option<&str>| -> Result<(Weekday, NaiveTime), String> {
                let day: Weekday = day.ok_or_else(usage)?.parse().map_err(|_| usage())?;
                let time = NaiveTime::parse_from_str(time.ok_or_else(usage)?, "%H:%M")
                    .map_err(|_| usage())?;
                Ok((day, time))
            };
        let start = point(from.next(), from.next())?;
        let end = point(to.next(), to.next())?;
        let zone = to.next().ok_or_else(usage)?;
        if from.next().is_some() || to.next().is_some() {
            return Err(usage());
        }
        let tz: Tz = zone.parse().map_err(|_| {
            format!("`{zone}` in `{text}` is not an IANA time zone such as Asia/Seoul or UTC")
        })?;
        if start == end {
            return Err(format!("`{text}` starts and ends at the same moment"));
        }
        Ok(Self {
            text: text.trim().to_string(),
            start,
            end,
            tz,
        })
    }

    /// When the window open at `at` closes, or `None` when it is not open then.
    pub fn open_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&self.tz);
        let now = minute_of_week(local.weekday(), local.time());
        let (s, e) = (
            minute_of_week(self.start.0, self.start.1),
            minute_of_week(self.end.0, self.end.1),
        );
        let open = if s < e {
            s <= now && now < e
        } else {
            now >= s || now < e
        };
        if !open {
            return None;
        }
        let minutes = (e + WEEK_MINUTES - now) % WEEK_MINUTES;
        let wall = local.naive_local() - chrono::Duration::seconds(local.second() as i64)
            + chrono::Duration::minutes(minutes as i64);
        let wall = wall.with_nanosecond(0).unwrap_or(wall);
        // A wall time skipped by a clock change closes the window at the change.
        let end = self
            .tz
            .from_local_datetime(&wall)
            .earliest()
            .or_else(|| {
                self.tz
                    .from_local_datetime(&(wall + chrono::Duration::hours(1)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(at);
        Some(end.max(at))
    }
}

/// An environment's promotion keys parsed, every problem noted through `problem` (location,
/// message). `Some(None)`: a first environment; `None`: something did not parse.
pub(super) fn parse(
    at: &str,
    env: &EnvConfig,
    mut problem: impl FnMut(String, String),
) -> Option<Option<Promotion>> {
    let Some(from) = &env.promote_from else {
        let stray = [
            ("auto", env.auto),
            ("approvals", env.approvals > 0),
            ("approvers", !env.approvers.is_empty()),
            ("soak_secs", env.soak_secs > 0),
            ("freeze", !env.freeze.is_empty()),
            ("build", env.build),
            ("promote_on_status", env.promote_on_status.is_some()),
        ];
        for (key, _) in stray.iter().filter(|(_, set)| *set) {
            problem(
                format!("{at}.{key}"),
                "only applies to an environment releases are promoted into: set promote_from"
                    .into(),
            );
        }
        return Some(None);
    };
    let mut ok = true;
    let from = match EnvName::parse(from) {
        Ok(name) => Some(name),
        Err(e) => {
            problem(format!("{at}.promote_from"), e.to_string());
            None
        }
    };
    if env.approvals as usize > env.approvers.len() {
        ok = false;
        problem(
            format!("{at}.approvals"),
            format!(
                "{} approvals can never be given by the {} people in approvers",
                env.approvals,
                env.approvers.len()
            ),
        );
    }
    if env.approvals == 0 && !env.approvers.is_empty() {
        ok = false;
        problem(
            format!("{at}.approvers"),
            "approvers without approvals: set how many must approve (approvals = 1, ...)".into(),
        );
    }
    if env.approvers.iter().any(|a| a.trim().is_empty()) {
        ok = false;
        problem(format!("{at}.approvers"), "an approver is empty".into());
    }
    let freeze: Vec<Option<FreezeWindow>> = env
        .freeze
        .iter()
        .enumerate()
        .map(|(i, w)| {
            FreezeWindow::parse(w)
                .map_err(|e| problem(format!("{at}.freeze[{i}]"), e))
                .ok()
        })
        .collect();
    let freeze: Option<Vec<FreezeWindow>> = freeze.into_iter().collect();
    if env
        .promote_on_status
        .as_deref()
        .is_some_and(|s| s.trim().is_empty())
    {
        ok = false;
        problem(
            format!("{at}.promote_on_status"),
            "must not be empty (omit it)".into(),
        );
    }
    if !ok {
        return None;
    }
    Some(Some(Promotion {
        from: from?,
        auto: env.auto,
        approvals: env.approvals,
        approvers: env.approvers.iter().map(|a| a.trim().to_string()).collect(),
        soak: Duration::from_secs(env.soak_secs),
        freeze: freeze?,
        build: env.build,
        on_status: env.promote_on_status.clone(),
    }))
}

/// Problems with the order of a project's environments: a `promote_from` that names no
/// environment, or a chain that comes back to where it started. (environment, message) pairs.
pub(super) fn check_order(envs: &BTreeMap<String, EnvConfig>) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (name, env) in envs {
        let Some(from) = &env.promote_from else {
            continue;
        };
        if !envs.contains_key(from) {
            problems.push((
                format!("{name}.promote_from"),
                format!(
                    "`{from}` is not one of this project's environments (it has: {})",
                    envs.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
            continue;
        }
        // Walk back from `name`; meeting `name` again is a cycle.
        let mut seen = vec![name.as_str()];
        let mut at = from.as_str();
        loop {
            if seen.contains(&at) {
                if at == name {
                    seen.push(at);
                    problems.push((
                        format!("{name}.promote_from"),
                        format!(
                            "promotion goes round in a circle: {}",
                            seen.iter().rev().cloned().collect::<Vec<_>>().join(" -> ")
                        ),
                    ));
                }
                break;
            }
            seen.push(at);
            match envs.get(at).and_then(|e| e.promote_from.as_deref()) {
                Some(next) if envs.contains_key(next) => at = next,
                _ => break,
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_weekend_window_in_seoul() {
        let w = FreezeWindow::parse("Fri 15:00 - Mon 09:00 Asia/Seoul").unwrap();
        // Friday 2026-12-04 15:00 in Seoul is 06:00 UTC.
        assert_eq!(w.open_until(utc("2026-12-04T05:59:00Z")), None);
        assert_eq!(
            w.open_until(utc("2026-12-04T06:00:00Z")),
            Some(utc("2026-12-07T00:00:00Z")),
            "until Monday 09:00 in Seoul"
        );
        assert_eq!(
            w.open_until(utc("2026-12-06T12:34:56Z")),
            Some(utc("2026-12-07T00:00:00Z"))
        );
        assert_eq!(w.open_until(utc("2026-12-07T00:00:00Z")), None);
        assert_eq!(w.open_until(utc("2026-12-09T12:00:00Z")), None, "Wednesday");
    }

    #[test]
    fn a_window_within_a_day() {
        let w = FreezeWindow::parse("Tue 12:00 - Tue 13:30 UTC").unwrap();
        assert_eq!(
            w.open_until(utc("2026-12-08T12:10:00Z")),
            Some(utc("2026-12-08T13:30:00Z"))
        );
        assert_eq!(w.open_until(utc("2026-12-08T13:30:00Z")), None);
        assert_eq!(w.open_until(utc("2026-12-09T12:10:00Z")), None);
    }

    #[test]
    fn bad_windows_say_what_is_expected() {
        for bad in [
            "Fri 15:00 Mon 09:00 UTC",
            "Fri 15:00 - Mon 09:00",
            "Fry 15:00 - Mon 09:00 UTC",
            "Fri 25:00 - Mon 09:00 UTC",
            "Fri 15:00 - Mon 09:00 UTC extra",
        ] {
            let e = FreezeWindow::parse(bad).unwrap_err();
            assert!(e.contains("DAY HH:MM - DAY HH:MM ZONE"), "{bad}: {e}");
        }
        let e = FreezeWindow::parse("Fri 15:00 - Mon 09:00 Mars/Olympus").unwrap_err();
        assert!(e.contains("IANA time zone"), "{e}");
        assert!(FreezeWindow::parse("Fri 15:00 - Fri 15:00 UTC").is_err());
    }
}
