//! The configuration contract: the example file, `[server.limits]`, and each source's checks.

use super::*;

fn problems(text: &str) -> Vec<String> {
    let (file, mut problems) = ConfigFile::parse(text).expect("parses");
    if let Err(more) = Config::from_file(&file) {
        problems.extend(more);
    }
    problems.into_iter().map(|p| p.to_string()).collect()
}

const BASE: &str = r#"
[bitbucket]
workspace = "acme"
auth = { bearer = { file = "/dev/null/none" } }
[[projects]]
name = "api"
repo = "api"
[projects.environments.stg]
tag = "stg{major}.{minor}.{patch}"
"#;

#[test]
fn the_example_has_no_unknown_key_and_only_unset_secrets() {
    let text = include_str!("../../hoist.example.toml");
    let problems = problems(text);
    for p in &problems {
        assert!(p.contains("is not set"), "{p}");
    }
}

#[test]
fn limits_are_read_and_checked_with_their_location() {
    let text = format!(
        "[server.limits]\nmax_body_bytes = 65536\nrate_burst = 0\nrequest_timeout_secs = 5\nbogus = 1\n{BASE}"
    );
    let (config, _) = ConfigFile::parse(&text).unwrap();
    assert_eq!(config.server.limits.max_body_bytes, 65536);
    assert_eq!(
        config.server.limits.json_max_depth, 64,
        "defaults fill the rest"
    );
    let p = problems(&text);
    for expected in [
        "server.limits.bogus: unknown key",
        "server.limits.rate_burst: must be at least 1 while rate_per_second is set",
        "server.limits.request_timeout_secs: must be at least 30",
    ] {
        assert!(
            p.iter().any(|x| x.starts_with(expected)),
            "{expected} not in {p:?}"
        );
    }
}

#[test]
fn source_checks_that_would_open_a_hole_are_refused() {
    let cases = [
        (
            "[sources.bitbucket]\nrequire = \"none\"",
            "sources.bitbucket.require: \"none\" without allow_ips",
        ),
        (
            "[sources.jira]\nrequire = \"none\"\nallow_ips = [\"10.0.0.0/8\"]\ntoken_header = \"X-T\"\ntoken = { file = \"/etc/hostname\" }",
            "sources.jira.require: \"none\" ignores",
        ),
        (
            "[sources.bitbucket]\nsignature_header = \"X-Signature\"",
            "sources.bitbucket.signature_header: `X-Signature` is not a signature header",
        ),
        (
            "[sources.circleci]\nsignature_header = \"X-Hub-Signature\"",
            "sources.circleci.signature_header: CircleCI always signs",
        ),
        (
            "[sources.circleci]\nallow_ips = [\"2001:db8::/129\"]",
            "sources.circleci.allow_ips[0]",
        ),
        (
            "[sources.jira]\nrequire = \"some\"",
            "unknown variant `some`",
        ),
    ];
    for (section, expected) in cases {
        let text = format!("{BASE}\n{section}\n");
        let found = match ConfigFile::parse(&text) {
            Err(e) => vec![e],
            Ok(_) => problems(&text),
        };
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{expected} not in {found:?}"
        );
    }
    let fine = format!(
        "{BASE}\n[sources.bitbucket]\nrequire = \"all\"\nsignature_header = \"X-Hub-Signature-256\"\nallow_ips = [\"104.192.136.0/21\", \"2401:1d80::/32\"]\n"
    );
    let p: Vec<_> = problems(&fine)
        .into_iter()
        .filter(|p| p.contains("sources."))
        .collect();
    assert_eq!(p, Vec::<String>::new());
}

#[test]
fn an_inline_secret_is_refused_without_being_quoted() {
    let text = format!("{BASE}\n[sources.bitbucket]\nsecret = \"hunter2-inline\"\n");
    let err = ConfigFile::parse(&text).unwrap_err();
    assert!(err.contains("inline secrets are refused"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn environments_in_order_are_read_and_their_mistakes_named() {
    let road = r#"
[projects.environments.qa]
tag = "qa{major}.{minor}.{patch}"
promote_from = "stg"
auto = true
[projects.environments.prod]
tag = "v{major}.{minor}.{patch}"
promote_from = "qa"
approvals = 1
approvers = ["U012ABCDEF", "U0987ZYXWV"]
soak_secs = 3600
freeze = ["Fri 15:00 - Mon 09:00 Asia/Seoul"]
build = true
promote_on_status = "Ready for prod"
jira_transition = "Done"
"#;
    let (file, unknown) = ConfigFile::parse(&format!("{BASE}{road}")).unwrap();
    assert!(unknown.is_empty(), "{unknown:?}");
    let mut file = file;
    file.bitbucket.as_mut().unwrap().auth = file::AuthConfig::Bearer(SecretRef::Env("PATH".into()));
    let config = Config::from_file(&file).unwrap();
    let envs = &config.projects[0].environments;
    assert_eq!(envs["stg"].promotion, None);
    let qa = envs["qa"].promotion.as_ref().unwrap();
    assert_eq!((qa.from.as_str(), qa.auto, qa.approvals), ("stg", true, 0));
    let prod = envs["prod"].promotion.as_ref().unwrap();
    assert_eq!(prod.approvers, ["U012ABCDEF", "U0987ZYXWV"]);
    assert_eq!(prod.soak, Duration::from_secs(3600));
    assert_eq!(prod.freeze[0].text, "Fri 15:00 - Mon 09:00 Asia/Seoul");
    assert!(prod.build);
    assert_eq!(prod.on_status.as_deref(), Some("Ready for prod"));
    assert_eq!(envs["prod"].jira_transition.as_deref(), Some("Done"));

    let cases = [
        (
            "[projects.environments.qa]\ntag = \"qa{major}.{minor}.{patch}\"\npromote_from = \"uat\"\n",
            "projects[0].environments.qa.promote_from: `uat` is not one of this project's environments",
        ),
        (
            "[projects.environments.qa]\ntag = \"qa{major}.{minor}.{patch}\"\npromote_from = \"prod\"\n[projects.environments.prod]\ntag = \"v{major}.{minor}.{patch}\"\npromote_from = \"qa\"\n",
            "promotion goes round in a circle: qa -> prod -> qa",
        ),
        (
            "[projects.environments.qa]\ntag = \"qa{major}.{minor}.{patch}\"\npromote_from = \"stg\"\nfreeze = [\"Friday afternoon\"]\n",
            "projects[0].environments.qa.freeze[0]: `Friday afternoon` is not a freeze window",
        ),
        (
            "[projects.environments.qa]\ntag = \"qa{major}.{patch}\"\npromote_from = \"stg\"\n",
            "projects[0].environments.qa.tag",
        ),
        (
            "[projects.environments.qa]\ntag = \"qa{major}.{minor}.{patch}\"\npromote_from = \"stg\"\napprovals = 2\napprovers = [\"U1\"]\n",
            "2 approvals can never be given by the 1 people in approvers",
        ),
        (
            "[projects.environments.qa]\ntag = \"qa{major}.{minor}.{patch}\"\nauto = true\n",
            "projects[0].environments.qa.auto: only applies to an environment releases are promoted into",
        ),
    ];
    for (text, expected) in cases {
        let p = problems(&format!("{BASE}{text}"));
        assert!(
            p.iter().any(|x| x.contains(expected)),
            "{expected} not in {p:?}"
        );
    }
}

#[test]
fn jira_write_back_is_checked() {
    let text = format!(
        "[jira]\nauth = {{ bearer = {{ env = \"PATH\" }} }}\ncomment_on = [\"tagged\", \"teleported\"]\n{BASE}"
    );
    let p = problems(&text);
    for expected in [
        "jira.comment_on: `teleported` is not a step Hoist comments on",
        "jira.auth: writing back to Jira needs jira.base_url too",
    ] {
        assert!(
            p.iter().any(|x| x.starts_with(expected)),
            "{expected} not in {p:?}"
        );
    }
    let text = format!(
        "[jira]\nbase_url = \"https://acme.atlassian.net/\"\nauth = {{ basic = {{ user = \"a@b.c\", password = {{ env = \"PATH\" }} }} }}\n{BASE}"
    );
    let (mut file, _) = ConfigFile::parse(&text).unwrap();
    file.bitbucket.as_mut().unwrap().auth = file::AuthConfig::Bearer(SecretRef::Env("PATH".into()));
    let config = Config::from_file(&file).unwrap();
    let write = config.jira.write.as_ref().expect("write-back on");
    assert_eq!(write.base_url, "https://acme.atlassian.net");
    assert_eq!(write.comment_on, ["tagged", "deployed", "deploy_failed"]);
    assert!(config.jira.comments_on("deployed") && !config.jira.comments_on("built"));
}
