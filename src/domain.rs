//! Domain vocabulary shared by every layer: commits, release states, job specifications.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A commit hash as a sender gave it: 7 to 40 hexadecimal digits, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommitSha(String);

impl CommitSha {
    pub fn parse(value: &str) -> Result<Self, String> {
        let v = value.trim();
        if (7..=40).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(v.to_ascii_lowercase()))
        } else {
            Err(format!(
                "`{}` is not a commit hash (7 to 40 hexadecimal digits)",
                v.chars().take(60).collect::<String>()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_full(&self) -> bool {
        self.0.len() == 40
    }

    pub fn short(&self) -> &str {
        short_sha(&self.0)
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first seven characters of a hash, as people write it.
pub fn short_sha(sha: &str) -> &str {
    // By characters, not bytes: a stored value is never cut inside a character.
    sha.char_indices().nth(7).map_or(sha, |(i, _)| &sha[..i])
}

/// Where a release is in its pass from ticket to deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    /// The ticket arrived; the tag is being made.
    Received,
    /// The tag exists; waiting for the build.
    Tagged,
    /// The build succeeded; the deploy trigger is being sent.
    Built,
    /// Spinnaker accepted the trigger. Terminal.
    DeployTriggered,
    /// The build failed; nothing was deployed. Terminal.
    BuildFailed,
    /// A step failed for good (commit missing, retries exhausted). Terminal.
    Failed,
}

impl ReleaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Tagged => "tagged",
            Self::Built => "built",
            Self::DeployTriggered => "deploy_triggered",
            Self::BuildFailed => "build_failed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "received" => Self::Received,
            "tagged" => Self::Tagged,
            "built" => Self::Built,
            "deploy_triggered" => Self::DeployTriggered,
            "build_failed" => Self::BuildFailed,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::DeployTriggered | Self::BuildFailed | Self::Failed
        )
    }
}

impl fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a Slack message reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NotifyEvent {
    Tagged { step_ms: i64 },
    TagReused { step_ms: i64 },
    Failed { step: String, error: String },
    BuildSucceeded { step_ms: i64 },
    BuildFailed { status: String },
    DeployTriggered { step_ms: i64 },
}

/// One outbound step, as stored in the queue. Jobs carry ids, not copies of data: a job reads the
/// current state when it runs, so a retried job acts on what is true then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobSpec {
    /// Verify the commit, then reuse or allocate and create the tag.
    CreateTag { release_id: i64 },
    /// A CircleCI build finished: find the release for its commit and record the outcome.
    HandleBuild { delivery_id: i64 },
    /// Send the Spinnaker trigger.
    Deploy { release_id: i64 },
    /// Tell Slack.
    Notify {
        release_id: i64,
        #[serde(flatten)]
        event: NotifyEvent,
    },
}

impl JobSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CreateTag { .. } => "create_tag",
            Self::HandleBuild { .. } => "handle_build",
            Self::Deploy { .. } => "deploy",
            Self::Notify { .. } => "notify",
        }
    }

    pub fn release_id(&self) -> Option<i64> {
        match self {
            Self::CreateTag { release_id }
            | Self::Deploy { release_id }
            | Self::Notify { release_id, .. } => Some(*release_id),
            Self::HandleBuild { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_sha_parsing() {
        assert!(CommitSha::parse("abc1234").is_ok());
        assert_eq!(CommitSha::parse("ABC1234").unwrap().as_str(), "abc1234");
        assert!(CommitSha::parse("abc123").is_err());
        assert!(CommitSha::parse("xyz1234").is_err());
        assert!(CommitSha::parse(&"a".repeat(41)).is_err());
        assert!(CommitSha::parse(&"a".repeat(40)).unwrap().is_full());
    }

    #[test]
    fn job_specs_round_trip() {
        let j = JobSpec::Notify {
            release_id: 3,
            event: NotifyEvent::Tagged { step_ms: 12 },
        };
        let s = serde_json::to_string(&j).unwrap();
        assert_eq!(serde_json::from_str::<JobSpec>(&s).unwrap(), j);
    }
}
