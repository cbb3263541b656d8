//! Who can read what (SPEC 3.4, 4.2): the read API needs its token, or answers direct loopback
//! callers only (and says so loudly at start); a hook answers an unauthenticated caller the same
//! whether or not the project it names exists.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use hoist::config::SecretRef;
use hoist::http::PeerIp;
use hoist_cli::stack::{REPO, StackOptions};
use tower::ServiceExt;

use crate::util::stack_with;

fn quick() -> StackOptions {
    StackOptions {
        auto_build: false,
        ..StackOptions::default()
    }
}

/// Status and body of a request through the router, from `peer`.
async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    peer: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut b = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut req = b.body(Body::from(body.to_vec())).unwrap();
    req.extensions_mut()
        .insert(PeerIp(peer.parse::<IpAddr>().unwrap()));
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn without_a_token_the_api_answers_direct_loopback_callers_only() {
    let s = stack_with(quick(), |_| {}).await;
    let r = hoist::http::router(s.hoist.http.clone());
    for peer in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
        let (status, _) = call(&r, "GET", "/api/releases", peer, &[], b"").await;
        assert_eq!(status, 200, "{peer}");
    }
    for peer in ["192.0.2.1", "2001:db8::1", "10.0.0.1"] {
        let (status, body) = call(&r, "GET", "/api/releases", peer, &[], b"").await;
        assert_eq!(status, 403, "{peer}: {body}");
    }
    // A proxy on the same host forwards the internet as loopback: not a loopback caller.
    for h in ["x-forwarded-for", "forwarded", "x-real-ip"] {
        let headers = [(h, "203.0.113.5")];
        let (status, body) = call(&r, "GET", "/api/releases", "127.0.0.1", &headers, b"").await;
        assert_eq!(status, 403, "{h}: {body}");
        assert!(body.contains("through a proxy"), "{body}");
    }
    s.finish().await.unwrap();
}

#[tokio::test]
async fn with_a_token_the_api_needs_it_from_everyone() {
    let s = stack_with(quick(), |c| {
        c.server.api_token = Some(SecretRef::Value("api-token-1f2e".into()));
    })
    .await;
    let r = hoist::http::router(s.hoist.http.clone());
    let good = [("authorization", "Bearer api-token-1f2e")];
    for peer in ["127.0.0.1", "198.51.100.4", "2001:db8::4"] {
        let (status, _) = call(&r, "GET", "/api/releases", peer, &[], b"").await;
        assert_eq!(status, 401, "{peer}");
        let (status, _) = call(&r, "GET", "/api/releases", peer, &good, b"").await;
        assert_eq!(status, 200, "{peer}");
    }
    let (status, _) = call(&r, "POST", "/api/jobs/1/retry", "127.0.0.1", &[], b"").await;
    assert_eq!(status, 401);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn hooks_do_not_tell_an_unauthenticated_caller_whether_a_project_exists() {
    let s = stack_with(quick(), |_| {}).await;
    let r = hoist::http::router(s.hoist.http.clone());
    let commit = s.commit("x");
    let json = [("content-type", "application/json")];
    let jira = |repo: &str| format!(r#"{{"repo": "{repo}", "commit": "{commit}"}}"#);
    let cci = |slug: &str| {
        format!(r#"{{"id": "x", "type": "job-completed", "project": {{"slug": "{slug}"}}}}"#)
    };
    let push =
        |repo: &str| hoist_sim::bitbucket::webhook::tag_pushed("acme", repo, "stg9.9.9", &commit);
    let pairs: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        (
            "/hooks/jira",
            jira(REPO).into(),
            jira("no-such-repo").into(),
        ),
        (
            "/hooks/circleci",
            cci(hoist_cli::stack::CIRCLECI_SLUG).into(),
            cci("bitbucket/acme/nothing").into(),
        ),
        ("/hooks/bitbucket", push(REPO), push("no-such-repo")),
    ];
    for (path, known, unknown) in pairs {
        let a = call(&r, "POST", path, "127.0.0.1", &json, &known).await;
        let b = call(&r, "POST", path, "127.0.0.1", &json, &unknown).await;
        assert_eq!(a.0, 401, "{path}: {}", a.1);
        assert_eq!(a, b, "{path}: the answers differ");
    }
    s.finish().await.unwrap();
}

#[test]
fn serve_says_loudly_what_is_open_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hoist.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
[store]
url = "sqlite://{}"
[bitbucket]
workspace = "acme"
auth = {{ bearer = {{ env = "HOIST_TEST_BB_TOKEN" }} }}
[sources.jira]
token_header = "X-Hoist-Token"
token = {{ env = "HOIST_TEST_JIRA_TOKEN" }}
[[projects]]
name = "api"
repo = "api"
[projects.environments.stg]
tag = "stg{{major}}.{{minor}}.{{patch}}"
"#,
            dir.path().join("hoist.db").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env("HOIST_TEST_BB_TOKEN", "bb-token-5511")
        .env("HOIST_TEST_JIRA_TOKEN", "jira-token-5512")
        .env("HOIST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let ready = line.contains("hoist is ready");
        lines.push(line);
        if ready || Instant::now() > deadline {
            break;
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    let text = lines.join("\n");
    assert!(text.contains("hoist is ready"), "{text}");
    for expected in [
        "WARN",
        "server.api_token is not set: /api answers direct loopback callers only",
        "/hooks/circleci refuses every request: sources.circleci has no secret or token",
        "/hooks/bitbucket refuses every request",
    ] {
        assert!(
            text.contains(expected),
            "`{expected}` missing from:\n{text}"
        );
    }
    for secret in ["bb-token-5511", "jira-token-5512"] {
        assert!(!text.contains(secret), "a secret was printed:\n{text}");
    }
}
