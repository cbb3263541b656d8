//! Property test through the whole HTTP layer (SPEC 11: "no panic"): arbitrary bodies, headers
//! and peer addresses, half of them correctly signed so that they reach the parsers, sent to every
//! hook. Every answer is a 2xx or a 4xx with the JSON error shape, never a 5xx, and Hoist still
//! serves a genuine request afterwards.

use std::net::IpAddr;

use axum::body::Body;
use axum::http::Request;
use hoist::http::PeerIp;
use hoist_cli::stack::{JIRA_TOKEN_HEADER, StackOptions};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use tower::ServiceExt;

use crate::util::stack_with;

const CASES: usize = 300;

#[derive(Debug, Clone)]
struct Arbitrary {
    hook: usize,
    body: Vec<u8>,
    signed: bool,
    content_type: String,
    extra: Vec<(String, String)>,
    peer: IpAddr,
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "null",
        "0",
        "\"\"",
        "\"repo\"",
        "\"payments-api\"",
        "\"commit\"",
        "\"abcdef1234567\"",
        "\"webhookEvent\"",
        "\"jira:issue_updated\"",
        "\"id\"",
        "\"type\"",
        "\"job-completed\"",
        "\"push\"",
        "\"changes\"",
        "\"new\"",
        "\"tag\"",
        "\"repository\"",
        "\"full_name\"",
        "\"acme/payments-api\"",
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(proptest::sample::select(PIECES), 0..60)
            .prop_map(|p| p.concat().into_bytes()),
    ]
}

fn arbitrary() -> impl Strategy<Value = Arbitrary> {
    let header = (
        proptest::sample::select(
            &[
                "x-forwarded-for",
                "x-hub-signature",
                "circleci-signature",
                "x-event-key",
                "x-request-uuid",
                "x-atlassian-webhook-identifier",
                "circleci-event-type",
                "content-length",
                "transfer-encoding",
            ][..],
        ),
        "[ -~]{0,80}",
    )
        .prop_map(|(k, v)| (k.to_string(), v));
    (
        0usize..3,
        body(),
        any::<bool>(),
        proptest::sample::select(
            &[
                "application/json",
                "application/json; charset=utf-8",
                "application/vnd.api+json",
                "text/plain",
                "",
            ][..],
        ),
        proptest::collection::vec(header, 0..4),
        any::<IpAddr>(),
    )
        .prop_map(|(hook, body, signed, ct, extra, peer)| Arbitrary {
            hook,
            body,
            signed,
            content_type: ct.to_string(),
            extra,
            peer,
        })
}

#[tokio::test]
async fn no_arbitrary_request_gets_a_5xx_or_stops_the_server() {
    let s = stack_with(
        StackOptions {
            auto_build: false,
            ..StackOptions::default()
        },
        |c| c.server.limits.rate_per_second = 0,
    )
    .await;
    let o = s.options.clone();
    let router = hoist::http::router(s.hoist.http.clone());
    let mut runner = TestRunner::deterministic();
    let strategy = arbitrary();
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..CASES {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let path = ["/hooks/jira", "/hooks/circleci", "/hooks/bitbucket"][case.hook];
        let mut b = Request::post(path);
        if !case.content_type.is_empty() {
            b = b.header("content-type", &case.content_type);
        }
        for (k, v) in &case.extra {
            b = b.header(k.as_str(), v.as_str());
        }
        if case.signed {
            b = match case.hook {
                0 => b.header(JIRA_TOKEN_HEADER, &o.jira_token),
                1 => b.header(
                    "circleci-signature",
                    hoist_sim::circleci::sign(&o.circleci_secret, &case.body),
                ),
                _ => b.header(
                    "x-hub-signature",
                    hoist_sim::jira::sign(&o.bitbucket_hook_secret, &case.body),
                ),
            };
        }
        let mut req = b.body(Body::from(case.body.clone())).unwrap();
        req.extensions_mut().insert(PeerIp(case.peer));
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(
            status < 500,
            "{status} for {case:?}: {}",
            String::from_utf8_lossy(&bytes)
        );
        if status >= 400 {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert!(v["error"]["code"].is_string(), "{v} for {case:?}");
        }
        *by_status.entry(status).or_default() += 1;
    }
    println!("{CASES} arbitrary requests: answers by status {by_status:?}");
    assert!(
        by_status.keys().any(|s| *s == 400),
        "no case reached a parser"
    );
    let health = reqwest::get(format!("{}/healthz", s.url)).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let commit = s.commit("after the storm");
    let (status, _) = s.assign("PAY-2", &commit).await.unwrap();
    assert_eq!(status, 202);
    s.finish().await.unwrap();
}
