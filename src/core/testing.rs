//! Values the core's tests share: a release at a given point, and a configuration.

use crate::config::{Config, ConfigFile};
use crate::domain::{CommitSha, EnvName, ProjectName, Release, ReleaseId, ReleaseStatus, TagName};

/// Release 1 of `payments-api` in `stg`, for PAY-1, tagged `stg1.4.0` on a verified commit.
pub fn release() -> Release {
    Release {
        id: ReleaseId(1),
        project: ProjectName::parse("payments-api").unwrap(),
        env: EnvName::parse("stg").unwrap(),
        repo: "payments-api".into(),
        commit: CommitSha::parse("abc1234").unwrap(),
        full_commit: Some(CommitSha::parse(&format!("abc1234{}", "0".repeat(33))).unwrap()),
        issue: Some("PAY-1".into()),
        status: ReleaseStatus::Tagged,
        tag: Some(TagName::parse("stg1.4.0").unwrap()),
        version: None,
        tag_reused: false,
        build_url: None,
        build_status: None,
        deploy_event_id: None,
        slack_ts: None,
        error: None,
        received_at: 1_000,
        commit_verified_at: Some(1_010),
        committed_at: Some(500),
        tagged_at: Some(1_100),
        built_at: None,
        deploy_triggered_at: None,
        deploy_started_at: None,
        deployed_at: None,
        finished_at: None,
        updated_at: 1_100,
    }
}

/// A configuration of one project, `payments-api` (repo `payments-api`, CircleCI job `build`),
/// with `stg` and `qa` environments, Slack through a bot token when `slack` is set.
pub fn config(slack: bool) -> Config {
    let text = config_text(slack);
    let (file, unknown) = ConfigFile::parse(&text).unwrap();
    assert!(unknown.is_empty(), "{unknown:?}");
    Config::from_file(&file).unwrap()
}

/// The text of [`config`].
pub fn config_text(slack: bool) -> String {
    format!(
        r#"
[bitbucket]
workspace = "acme"
auth = {{ bearer = {{ env = "PATH" }} }}
[spinnaker]
gate_url = "http://gate.invalid"
{}
[[projects]]
name = "payments-api"
repo = "payments-api"
circleci_project = "bitbucket/acme/payments-api"
build_job = "build"
default_env = "stg"
[projects.environments.stg]
tag = "stg{{major}}.{{minor}}.{{patch}}"
patch_rollover = 99
spinnaker_source = "payments-api-stg"
[projects.environments.qa]
tag = "qa{{major}}.{{minor}}.{{patch}}"
"#,
        if slack {
            "[slack]\nbot_token = { env = \"PATH\" }\nchannel = \"C1\""
        } else {
            ""
        }
    )
}
