//! What a notification says about a release step, as a neutral description: words, emphasis and
//! links. The Slack client turns it into Slack's own format; nothing here knows Block Kit.

use crate::domain::Release;

use super::job::NotifyEvent;

/// The kind of step a message reports (a client may show it as an icon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Tagged,
    Reused,
    Failed,
    BuildSucceeded,
    BuildFailed,
    Deploy,
    Deployed,
}

/// A piece of a message's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    Text(String),
    /// Emphasised text.
    Strong(String),
    /// A literal such as a tag name.
    Code(String),
    Link {
        url: String,
        label: String,
    },
}

/// A message about one step of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub mark: Mark,
    /// Who the message is about, for a notification's short form (the issue, else the project).
    pub subject: String,
    /// What happened.
    pub headline: Vec<Span>,
    /// The release's facts: issue, project and environment, commit, tag, build.
    pub context: Vec<Span>,
}

impl Message {
    /// The message as plain text, without links' addresses.
    pub fn plain(spans: &[Span]) -> String {
        spans
            .iter()
            .map(|s| match s {
                Span::Text(t) | Span::Strong(t) | Span::Code(t) => t.as_str(),
                Span::Link { label, .. } => label.as_str(),
            })
            .collect()
    }
}

/// Where links point.
#[derive(Debug, Clone, Copy)]
pub struct Links<'a> {
    /// Jira site, e.g. `https://acme.atlassian.net`.
    pub jira: Option<&'a str>,
    /// Bitbucket web base, e.g. `https://bitbucket.org`.
    pub bitbucket_web: &'a str,
    pub workspace: &'a str,
}

fn text(s: impl Into<String>) -> Span {
    Span::Text(s.into())
}

/// A link labelled `label`, or the label alone when there is no address.
fn maybe_link(url: &Option<String>, label: &str) -> Span {
    match url {
        Some(url) => Span::Link {
            url: url.clone(),
            label: label.to_string(),
        },
        None => text(label),
    }
}

/// The message for `event` on release `r`.
pub fn message(r: &Release, event: &NotifyEvent, links: &Links) -> Message {
    let tag = || match &r.tag {
        Some(t) => Span::Code(t.to_string()),
        None => text("(no tag yet)"),
    };
    let build = || match &r.build_url {
        Some(u) => Span::Link {
            url: u.clone(),
            label: "build".into(),
        },
        None => text("no build yet"),
    };
    let (mark, headline) = match event {
        NotifyEvent::Tagged { step_ms } => (
            Mark::Tagged,
            vec![
                text("tagged "),
                tag(),
                text(format!(" in {}", dur(*step_ms))),
            ],
        ),
        NotifyEvent::TagReused { step_ms } => (
            Mark::Reused,
            vec![
                text("commit already carries "),
                tag(),
                text(format!(": reused it, no new version ({})", dur(*step_ms))),
            ],
        ),
        NotifyEvent::Failed { step, error } => (
            Mark::Failed,
            vec![
                Span::Strong(format!("{step} failed")),
                text(format!(": {error}")),
            ],
        ),
        NotifyEvent::BuildSucceeded { step_ms } => (
            Mark::BuildSucceeded,
            vec![text(format!("build succeeded after {}", dur(*step_ms)))],
        ),
        NotifyEvent::BuildFailed { status } => (
            Mark::BuildFailed,
            vec![
                Span::Strong(format!("build {status}")),
                text(": nothing deployed. See the "),
                build(),
            ],
        ),
        NotifyEvent::DeployTriggered { step_ms } => (
            Mark::Deploy,
            vec![
                text("deploy of "),
                tag(),
                text(format!(
                    " triggered in {}; following it in Spinnaker",
                    dur(*step_ms)
                )),
            ],
        ),
        NotifyEvent::DeployStarted {
            pipeline,
            execution,
            link,
        } => (
            Mark::Deploy,
            vec![
                text(format!("pipeline `{pipeline}` started: ")),
                maybe_link(link, execution),
            ],
        ),
        NotifyEvent::Deployed { step_ms } => (
            Mark::Deployed,
            vec![
                tag(),
                text(format!(
                    " deployed, {} after the trigger; lead time {}",
                    dur(*step_ms),
                    r.lead_time_ms().map(dur).unwrap_or_else(|| "n/a".into())
                )),
            ],
        ),
        NotifyEvent::DeployFailed {
            pipeline,
            status,
            stage,
            link,
            check,
        } => {
            let mut spans = vec![Span::Strong("deploy failed".into())];
            if !pipeline.is_empty() {
                let at = stage
                    .as_ref()
                    .map(|s| format!(" at stage `{s}`"))
                    .unwrap_or_default();
                spans.push(text(format!(": pipeline `{pipeline}` ended {status}{at}")));
            }
            spans.push(text(format!(". {}", sentence(check))));
            if let Some(link) = link {
                spans.push(text(" "));
                spans.push(Span::Link {
                    url: link.clone(),
                    label: "execution".into(),
                });
            }
            (Mark::Failed, spans)
        }
        NotifyEvent::DeployNotStarted { waited_secs, check } => (
            Mark::Failed,
            vec![
                Span::Strong("deploy did not start".into()),
                text(format!(
                    ": no pipeline execution {} after the trigger. {}",
                    dur(waited_secs * 1000),
                    sentence(check)
                )),
            ],
        ),
        NotifyEvent::DeployTimedOut { waited_secs, link } => (
            Mark::Failed,
            vec![
                Span::Strong("deploy timed out".into()),
                text(format!(
                    ": still running {} after the trigger ",
                    dur(waited_secs * 1000)
                )),
                maybe_link(link, "execution"),
            ],
        ),
    };
    let issue = match (&r.issue, links.jira) {
        (Some(i), Some(base)) => Span::Link {
            url: format!("{}/browse/{i}", base.trim_end_matches('/')),
            label: i.clone(),
        },
        (Some(i), None) => text(i.clone()),
        (None, _) => text("(no ticket)"),
    };
    let sha = r.best_commit();
    let commit = Span::Link {
        url: format!(
            "{}/{}/{}/commits/{sha}",
            links.bitbucket_web.trim_end_matches('/'),
            links.workspace,
            r.repo
        ),
        label: sha.short().to_string(),
    };
    let sep = || text(" · ");
    let context = vec![
        issue,
        sep(),
        text(format!("{} ({})", r.project, r.env)),
        sep(),
        commit,
        sep(),
        tag(),
        sep(),
        build(),
    ];
    Message {
        mark,
        subject: r.issue.clone().unwrap_or_else(|| r.project.to_string()),
        headline,
        context,
    }
}

/// `text` with a capital first letter, to start a sentence.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
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
    use crate::core::testing::release;

    #[test]
    fn durations() {
        assert_eq!(dur(850), "850 ms");
        assert_eq!(dur(4_200), "4.2 s");
        assert_eq!(dur(185_000), "3 min 5 s");
        assert_eq!(dur(7_440_000), "2 h 4 min");
    }

    #[test]
    fn a_message_names_the_issue_commit_tag_and_build() {
        let links = Links {
            jira: Some("https://acme.atlassian.net/"),
            bitbucket_web: "https://bitbucket.org",
            workspace: "acme",
        };
        let m = message(&release(), &NotifyEvent::Tagged { step_ms: 12 }, &links);
        assert_eq!(m.mark, Mark::Tagged);
        assert_eq!(m.subject, "PAY-1");
        assert_eq!(Message::plain(&m.headline), "tagged stg1.4.0 in 12 ms");
        assert_eq!(
            Message::plain(&m.context),
            "PAY-1 · payments-api (stg) · abc1234 · stg1.4.0 · no build yet"
        );
        assert!(m.context.contains(&Span::Link {
            url: "https://acme.atlassian.net/browse/PAY-1".into(),
            label: "PAY-1".into()
        }));
        assert!(m.context.iter().any(|s| matches!(s, Span::Link { url, .. }
            if url == &format!("https://bitbucket.org/acme/payments-api/commits/abc1234{}", "0".repeat(33)))));
    }
}
