//! SPEC 4.1 and 4.2: every bad request gets the right status and a clear message, and nothing is
//! stored.

use hoist_cli::stack::{JIRA_TOKEN_HEADER, REPO, StackOptions};

use crate::util::{count, post, stack_with};

struct Case {
    name: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    says: &'static str,
}

#[tokio::test]
async fn bad_jira_requests_answer_clearly_and_store_nothing() {
    let s = stack_with(
        StackOptions {
            auto_build: false,
            ..StackOptions::default()
        },
        |c| {
            c.sources.jira.allow_ips = vec!["127.0.0.0/8".into(), "::1/128".into()];
            c.server.trusted_proxies = vec!["127.0.0.1/32".into()];
        },
    )
    .await;
    let token = s.options.jira_token.clone();
    let commit = s.commit("x");
    let json = || ("content-type", "application/json".to_string());
    let tok = || (JIRA_TOKEN_HEADER, token.clone());
    let good =
        format!(r#"{{"repo": "{REPO}", "commit": "{commit}", "issue": "PAY-1"}}"#).into_bytes();
    let cases = vec![
        Case {
            name: "malformed JSON",
            headers: vec![json(), tok()],
            body: b"{\"repo\": ".to_vec(),
            status: 400,
            code: "invalid_json",
            says: "not valid JSON",
        },
        Case {
            name: "missing commit",
            headers: vec![json(), tok()],
            body: br#"{"repo": "payments-api"}"#.to_vec(),
            status: 400,
            code: "missing_field",
            says: "`commit`",
        },
        Case {
            name: "missing repo",
            headers: vec![json(), tok()],
            body: format!(r#"{{"commit": "{commit}"}}"#).into_bytes(),
            status: 400,
            code: "missing_field",
            says: "`repo`",
        },
        Case {
            name: "bad commit",
            headers: vec![json(), tok()],
            body: br#"{"repo": "payments-api", "commit": "main"}"#.to_vec(),
            status: 400,
            code: "invalid_field",
            says: "not a commit hash",
        },
        Case {
            name: "unknown project",
            headers: vec![json(), tok()],
            body: format!(r#"{{"repo": "billing", "commit": "{commit}"}}"#).into_bytes(),
            status: 404,
            code: "unknown_project",
            says: "`billing`",
        },
        Case {
            name: "unknown environment",
            headers: vec![json(), tok()],
            body: format!(r#"{{"repo": "{REPO}", "commit": "{commit}", "env": "prod"}}"#)
                .into_bytes(),
            status: 422,
            code: "unknown_environment",
            says: "no environment `prod`",
        },
        Case {
            name: "oversize",
            headers: vec![json(), tok()],
            body: vec![b' '; 1024 * 1024 + 1],
            status: 413,
            code: "payload_too_large",
            says: "larger than",
        },
        Case {
            name: "wrong content type",
            headers: vec![("content-type", "text/plain".into()), tok()],
            body: good.clone(),
            status: 415,
            code: "unsupported_media_type",
            says: "application/json",
        },
        Case {
            name: "no content type",
            headers: vec![tok()],
            body: good.clone(),
            status: 415,
            code: "unsupported_media_type",
            says: "application/json",
        },
        Case {
            name: "no token",
            headers: vec![json()],
            body: good.clone(),
            status: 401,
            code: "unauthorized",
            says: "missing X-Hoist-Token",
        },
        Case {
            name: "wrong token",
            headers: vec![json(), (JIRA_TOKEN_HEADER, "nope".into())],
            body: good.clone(),
            status: 401,
            code: "unauthorized",
            says: "wrong X-Hoist-Token",
        },
        Case {
            name: "address not allowed (via trusted proxy)",
            headers: vec![json(), tok(), ("x-forwarded-for", "203.0.113.7".into())],
            body: good.clone(),
            status: 403,
            code: "forbidden",
            says: "203.0.113.7 is not allowed",
        },
        Case {
            name: "not JSON object",
            headers: vec![json(), tok()],
            body: b"[1, 2]".to_vec(),
            status: 400,
            code: "invalid_field",
            says: "JSON object",
        },
        Case {
            name: "depth bomb",
            headers: vec![json(), tok()],
            body: "[".repeat(10_000).into_bytes(),
            status: 400,
            code: "invalid_json",
            says: "deeper",
        },
        Case {
            name: "truncated",
            headers: vec![json(), tok()],
            body: good[..good.len() - 3].to_vec(),
            status: 400,
            code: "invalid_json",
            says: "not valid JSON",
        },
    ];
    for c in &cases {
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, answer) = post(&s, "/hooks/jira", &headers, c.body.clone()).await;
        assert_eq!(status, c.status, "{}: {answer}", c.name);
        assert_eq!(answer["error"]["code"], c.code, "{}: {answer}", c.name);
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(c.says), "{}: {message}", c.name);
        assert!(!message.contains(&token), "{}: the token leaked", c.name);
    }
    for table in ["deliveries", "releases", "jobs"] {
        assert_eq!(count(&s, table).await, 0, "{table} must be empty");
    }
    // The good request passes the same checks.
    let headers = [
        ("content-type", "application/json"),
        (JIRA_TOKEN_HEADER, token.as_str()),
    ];
    let (status, _) = post(&s, "/hooks/jira", &headers, good).await;
    assert_eq!(status, 202);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    // Only 10.0.0.0/8 may call; loopback is not a trusted proxy, so its X-Forwarded-For is ignored.
    let s = stack_with(
        StackOptions {
            auto_build: false,
            ..StackOptions::default()
        },
        |c| {
            c.sources.jira.allow_ips = vec!["10.0.0.0/8".into()];
        },
    )
    .await;
    let commit = s.commit("x");
    let body = format!(r#"{{"repo": "{REPO}", "commit": "{commit}"}}"#);
    let token = s.options.jira_token.clone();
    let headers = [
        ("content-type", "application/json"),
        (JIRA_TOKEN_HEADER, token.as_str()),
        ("x-forwarded-for", "10.1.2.3"),
    ];
    let (status, answer) = post(&s, "/hooks/jira", &headers, body).await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1")
    );
    assert_eq!(count(&s, "deliveries").await, 0);
    s.finish().await.unwrap();
}
