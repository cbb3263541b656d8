//! What Slack is told: pure formatting of a release step into `text` (the notification fallback)
//! and `blocks`.

use serde_json::{Value, json};

use crate::domain::{NotifyEvent, short_sha};
use crate::store::Release;

/// Where links point.
pub struct Links<'a> {
    /// Jira site, e.g. `https://acme.atlassian.net`.
    pub jira: Option<&'a str>,
    /// Bitbucket web base, e.g. `https://bitbucket.org`.
    pub bitbucket_web: &'a str,
    pub workspace: &'a str,
}

pub fn message(r: &Release, event: &NotifyEvent, links: &Links) -> (String, Value) {
    let issue = match (&r.issue, links.jira) {
        (Some(i), Some(base)) => format!("<{}/browse/{i}|{i}>", base.trim_end_matches('/')),
        (Some(i), None) => i.clone(),
        (None, _) => "(no ticket)".into(),
    };
    let sha = r.best_commit();
    let commit = format!(
        "<{}/{}/{}/commits/{sha}|{}>",
        links.bitbucket_web.trim_end_matches('/'),
        links.workspace,
        r.repo,
        short_sha(sha)
    );
    let tag = r
        .tag
        .as_deref()
        .map(|t| format!("`{t}`"))
        .unwrap_or_else(|| "(no tag yet)".into());
    let build = r
        .build_url
        .as_deref()
        .map(|u| format!("<{u}|build>"))
        .unwrap_or_else(|| "no build yet".into());
    let (emoji, headline) = match event {
        NotifyEvent::Tagged { step_ms } => {
            (":label:", format!("tagged {tag} in {}", dur(*step_ms)))
        }
        NotifyEvent::TagReused { step_ms } => (
            ":recycle:",
            format!(
                "commit already carries {tag}: reused it, no new version ({})",
                dur(*step_ms)
            ),
        ),
        NotifyEvent::Failed { step, error } => (":x:", format!("*{step} failed*: {error}")),
        NotifyEvent::BuildSucceeded { step_ms } => (
            ":white_check_mark:",
            format!("build succeeded after {}", dur(*step_ms)),
        ),
        NotifyEvent::BuildFailed { status } => (
            ":rotating_light:",
            format!("*build {status}*: nothing deployed. See the {build}"),
        ),
        NotifyEvent::DeployTriggered { step_ms } => (
            ":rocket:",
            format!(
                "deploy of {tag} triggered in {}; lead time {}",
                dur(*step_ms),
                r.lead_time_ms().map(dur).unwrap_or_else(|| "n/a".into())
            ),
        ),
    };
    let context = format!(
        "{issue} · {} ({}) · {commit} · {tag} · {build}",
        r.project, r.env
    );
    let text = format!(
        "{emoji} {}: {headline}",
        r.issue.as_deref().unwrap_or(&r.project)
    );
    let blocks = json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": format!("{emoji} {headline}")}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
    ]);
    (text, blocks)
}

/// A duration as people read it: `850 ms`, `4.2 s`, `3 min 5 s`, `2 h 4 min`.
pub fn dur(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
        _ => format!("{} h {} min", ms / 3_600_000, (ms % 3_600_000) / 60_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(dur(850), "850 ms");
        assert_eq!(dur(4_200), "4.2 s");
        assert_eq!(dur(185_000), "3 min 5 s");
        assert_eq!(dur(7_440_000), "2 h 4 min");
    }
}
