//! What a notification says about a release step, as a neutral description: words, emphasis and
//! links. The Slack client turns it into Slack's own format; nothing here knows Block Kit.

use crate::domain::{EnvName, Release, ReleaseId, TagName};

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

/// What a button asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Promote,
    Approve,
}

impl ActionKind {
    /// The id a button carries, and a click brings back.
    pub fn id(self) -> &'static str {
        match self {
            Self::Promote => "hoist_promote",
            Self::Approve => "hoist_approve",
        }
    }

    pub fn from_id(id: &str) -> Option<Self> {
        [Self::Promote, Self::Approve]
            .into_iter()
            .find(|k| k.id() == id)
    }
}

/// A button under a message: what it asks for, about which release and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub kind: ActionKind,
    pub label: String,
    pub release: ReleaseId,
    pub env: EnvName,
}

impl Action {
    /// The button's value: `<release id>/<environment>`.
    pub fn value(&self) -> String {
        format!("{}/{}", self.release, self.env)
    }

    /// A click's action id and value read back; `None` when they are not a button of Hoist's.
    pub fn parse(action_id: &str, value: &str) -> Option<(ActionKind, ReleaseId, String)> {
        let kind = ActionKind::from_id(action_id)?;
        let (release, env) = value.split_once('/')?;
        Some((kind, ReleaseId(release.parse().ok()?), env.to_string()))
    }
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
    /// Buttons, when the step asks for a decision.
    pub actions: Vec<Action>,
}

/// The deployment a message is about, when it is not the release's own: its environment and tag.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub env: &'a EnvName,
    pub tag: &'a TagName,
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

impl Links<'_> {
    /// Where links point, as the configuration says.
    pub fn of(config: &crate::config::Config) -> Links<'_> {
        Links {
            jira: config.jira.base_url.as_deref(),
            bitbucket_web: &config.bitbucket.web_url,
            workspace: &config.bitbucket.workspace,
        }
    }

    /// The issue's page in Jira, when the site is known.
    pub fn issue(&self, issue: &str) -> Option<String> {
        self.jira
            .map(|base| format!("{}/browse/{issue}", base.trim_end_matches('/')))
    }

    /// The commit's page in Bitbucket.
    pub fn commit(&self, repo: &str, sha: &str) -> String {
        format!(
            "{}/{}/{repo}/commits/{sha}",
            self.bitbucket_web.trim_end_matches('/'),
            self.workspace
        )
    }
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

/// The message for `event` on release `r` (about `target`, a deployment that is not the
/// release's own, when given).
pub fn message(r: &Release, event: &NotifyEvent, links: &Links, target: Option<Target>) -> Message {
    let tag = || match (target, &r.tag) {
        (Some(t), _) => Span::Code(t.tag.to_string()),
        (None, Some(t)) => Span::Code(t.to_string()),
        (None, None) => text("(no tag yet)"),
    };
    let into = target.map(|t| format!(" to {}", t.env)).unwrap_or_default();
    let mut actions = Vec::new();
    let build = || match &r.build_url {
        Some(u) => Span::Link {
            url: u.clone(),
            label: "build".into(),
        },
        None => text("no build yet"),
    };
    let (mark, mut headline) = match event {
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
        NotifyEvent::Deployed { step_ms } if target.is_some() => (
            Mark::Deployed,
            vec![
                tag(),
                text(format!(
                    " deployed{into}, {} after the trigger",
                    dur(*step_ms)
                )),
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
        NotifyEvent::PromotionReady { env, approvals } => {
            let env_name = EnvName::parse(env).ok();
            let (kind, label, ask) = if *approvals > 0 {
                (
                    ActionKind::Approve,
                    format!("Approve {env}"),
                    format!(
                        " can go to {env} once approved ({approvals} approval{} needed)",
                        if *approvals == 1 { "" } else { "s" }
                    ),
                )
            } else {
                (
                    ActionKind::Promote,
                    format!("Promote to {env}"),
                    format!(" can go to {env}"),
                )
            };
            if let Some(env) = env_name {
                actions.push(Action {
                    kind,
                    label,
                    release: r.id,
                    env,
                });
            }
            (Mark::Deploy, vec![tag(), text(ask)])
        }
        NotifyEvent::Promoted { env, tag, by, via } => (
            Mark::Deploy,
            vec![
                text(format!("promoted to {env} as ")),
                Span::Code(tag.clone()),
                text(format!(" by {by} ({via})")),
            ],
        ),
        NotifyEvent::Approved {
            env,
            by,
            have,
            need,
        } => (
            Mark::Deploy,
            vec![text(format!("{by} approved {env} ({have} of {need})"))],
        ),
        NotifyEvent::Warning { text: warning } => (
            Mark::Failed,
            vec![Span::Strong("warning".into()), text(format!(": {warning}"))],
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
    let issue = match &r.issue {
        Some(i) => maybe_link(&links.issue(i), i),
        None => text("(no ticket)"),
    };
    let sha = r.best_commit();
    let commit = Span::Link {
        url: links.commit(&r.repo, sha.as_str()),
        label: sha.short().to_string(),
    };
    let sep = || text(" · ");
    let context = vec![
        issue,
        sep(),
        text(format!(
            "{} ({})",
            r.project,
            target.map(|t| t.env).unwrap_or(&r.env)
        )),
        sep(),
        commit,
        sep(),
        tag(),
        sep(),
        build(),
    ];
    if let (Some(t), NotifyEvent::DeployStarted { .. } | NotifyEvent::DeployFailed { .. }) =
        (target, event)
    {
        headline.insert(0, text(format!("{}: ", t.env)));
    }
    Message {
        mark,
        subject: r.issue.clone().unwrap_or_else(|| r.project.to_string()),
        headline,
        context,
        actions,
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
        let m = message(
            &release(),
            &NotifyEvent::Tagged { step_ms: 12 },
            &links,
            None,
        );
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
