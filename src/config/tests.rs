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
