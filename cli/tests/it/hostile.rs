//! SPEC 4.1, 4.2 and 11 against a hostile caller: a table of requests that must each be refused
//! with the right status and error code, leaving nothing stored (no delivery, release, job or
//! tag). Requests go through `hoist::http::router` with the peer address set as a `PeerIp`
//! extension, so IPv6 and IPv4-mapped peers can be played on a server bound to 127.0.0.1.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use hoist::config::{Require, SecretRef};
use hoist::http::PeerIp;
use hoist_cli::stack::{JIRA_TOKEN_HEADER, REPO, StackOptions};
use hoist_sim::bitbucket::webhook;
use tower::ServiceExt;

use crate::util::{count, stack_with};

const JIRA_SECRET: &str = "jira-hub-secret-81c2";
const BB_TOKEN: &str = "bitbucket-hook-token-0d9e";
const API_TOKEN: &str = "api-token-a7f3";
const CIRCLECI_JOB: &[u8] = include_bytes!("../../../fixtures/circleci-job-completed.json");

enum Payload {
    Bytes(Vec<u8>),
    /// Chunked, no Content-Length.
    Streamed(Vec<u8>),
    /// Sends nothing and never ends.
    Stalled,
}

/// One hostile request and the answer it must get.
struct Case {
    name: String,
    method: Method,
    path: &'static str,
    peers: Vec<IpAddr>,
    headers: Vec<(String, String)>,
    payload: Payload,
    /// Send this many times (cycling through `peers`); the last answer is checked.
    repeat: usize,
    /// Requests with stalled bodies held in flight while this one is sent.
    alongside: usize,
    status: u16,
    code: &'static str,
    says: String,
}

fn case(name: &str, path: &'static str) -> Case {
    Case {
        name: name.into(),
        method: Method::POST,
        path,
        peers: vec![ip("127.0.0.1")],
        headers: vec![("content-type".into(), "application/json".into())],
        payload: Payload::Bytes(Vec::new()),
        repeat: 1,
        alongside: 0,
        status: 0,
        code: "",
        says: String::new(),
    }
}

impl Case {
    fn peer(mut self, peer: &str) -> Self {
        self.peers = vec![ip(peer)];
        self
    }
    fn h(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn no_content_type(mut self) -> Self {
        self.headers.retain(|(k, _)| k != "content-type");
        self
    }
    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.payload = Payload::Bytes(body.into());
        self
    }
    fn get(mut self) -> Self {
        self.method = Method::GET;
        self
    }
    fn expect(mut self, status: u16, code: &'static str, says: impl Into<String>) -> Self {
        self.status = status;
        self.code = code;
        self.says = says.into();
        self
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn hub(secret: &str, body: &[u8]) -> String {
    hoist_sim::jira::sign(secret, body)
}

fn v1(secret: &str, body: &[u8]) -> String {
    hoist_sim::circleci::sign(secret, body)
}

#[tokio::test]
async fn hostile_requests_are_refused_and_store_nothing() {
    let s = stack_with(
        StackOptions {
            auto_build: false,
            ..StackOptions::default()
        },
        |c| {
            c.server.trusted_proxies = vec!["10.0.0.0/8".into(), "fd00::/8".into()];
            c.server.api_token = Some(SecretRef::Value(API_TOKEN.into()));
            c.server.limits.body_timeout_secs = 1;
            // One request per second after a burst of 200: the burst case below is refused
            // however slowly this machine sends it.
            c.server.limits.rate_per_second = 1;
            c.server.limits.max_concurrent_requests = 4;
            let jira = &mut c.sources.jira;
            jira.allow_ips = [
                "127.0.0.0/8",
                "::1/128",
                "198.51.100.0/24",
                "2001:db8:a::/48",
            ]
            .map(String::from)
            .to_vec();
            jira.secret = Some(SecretRef::Value(JIRA_SECRET.into()));
            let bb = &mut c.sources.bitbucket;
            bb.allow_ips = ["127.0.0.0/8", "2001:db8:b::/48"]
                .map(String::from)
                .to_vec();
            bb.token_header = Some(JIRA_TOKEN_HEADER.into());
            bb.token = Some(SecretRef::Value(BB_TOKEN.into()));
            bb.require = Require::All;
        },
    )
    .await;
    let o = s.options.clone();
    let commit = s.commit("hostile");
    let jira = format!(r#"{{"repo": "{REPO}", "commit": "{commit}", "issue": "PAY-1"}}"#);
    let jira = jira.as_bytes().to_vec();
    let push = webhook::tag_pushed("acme", REPO, "stg3.0.0", &commit);
    let cases = table(&o, &jira, &push);
    assert!(cases.len() >= 40, "{} cases", cases.len());

    let router = hoist::http::router(s.hoist.http.clone());
    let secrets = [
        &o.jira_token,
        &o.circleci_secret,
        &o.bitbucket_hook_secret,
        &o.bitbucket_token,
        &o.slack_token,
        &JIRA_SECRET.to_string(),
        &BB_TOKEN.to_string(),
        &API_TOKEN.to_string(),
    ];
    for c in &cases {
        let held: Vec<_> = (0..c.alongside)
            .map(|_| {
                let req = request(c, Payload::Stalled, c.peers[0]);
                tokio::spawn(router.clone().oneshot(req))
            })
            .collect();
        // Wait until the held requests occupy their slots (the machine may be slow).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while s.hoist.http.guards.in_flight() < c.alongside
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut last = None;
        for i in 0..c.repeat {
            let payload = match &c.payload {
                Payload::Bytes(b) => Payload::Bytes(b.clone()),
                Payload::Streamed(b) => Payload::Streamed(b.clone()),
                Payload::Stalled => Payload::Stalled,
            };
            let req = request(c, payload, c.peers[i % c.peers.len()]);
            last = Some(router.clone().oneshot(req).await.unwrap());
        }
        let resp = last.unwrap();
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").cloned();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(status, c.status, "{}: {text}", c.name);
        assert_eq!(answer["error"]["code"], c.code, "{}: {text}", c.name);
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(&c.says), "{}: {message}", c.name);
        assert!(
            message.len() < 400,
            "{}: the answer echoes too much",
            c.name
        );
        if matches!(status, 429 | 503) {
            assert!(retry_after.is_some(), "{}: no Retry-After", c.name);
        }
        for secret in secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{}: a secret leaked",
                c.name
            );
        }
        for h in held {
            let _ = h.await;
        }
        for table in ["deliveries", "releases", "jobs", "tags"] {
            assert_eq!(count(&s, table).await, 0, "{}: {table} was written", c.name);
        }
    }
    println!("{} hostile requests refused, nothing stored", cases.len());

    // The same checks let the genuine requests through.
    let ok = |c: Case| c.expect(0, "", "");
    let genuine = [
        ok(case("genuine automation", "/hooks/jira").h(JIRA_TOKEN_HEADER, &o.jira_token))
            .body(jira.clone()),
        ok(case("genuine push", "/hooks/bitbucket"))
            .h(JIRA_TOKEN_HEADER, BB_TOKEN)
            .h("x-event-key", "repo:push")
            .h("x-hub-signature", hub(&o.bitbucket_hook_secret, &push))
            .body(push.clone()),
    ];
    for c in genuine {
        let resp = router
            .clone()
            .oneshot(request(&c, Payload::Bytes(body_of(&c)), c.peers[0]))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202, "{}", c.name);
    }
    s.finish().await.unwrap();
}

fn body_of(c: &Case) -> Vec<u8> {
    match &c.payload {
        Payload::Bytes(b) | Payload::Streamed(b) => b.clone(),
        Payload::Stalled => Vec::new(),
    }
}

fn request(c: &Case, payload: Payload, peer: IpAddr) -> Request<Body> {
    let mut b = Request::builder().method(c.method.clone()).uri(c.path);
    for (k, v) in &c.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let body = match payload {
        Payload::Bytes(bytes) => Body::from(bytes),
        Payload::Streamed(bytes) => Body::from_stream(futures_util::stream::iter(
            bytes
                .chunks(64 * 1024)
                .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        )),
        Payload::Stalled => Body::from_stream(futures_util::stream::pending::<
            Result<bytes::Bytes, std::io::Error>,
        >()),
    };
    let mut req = b.body(body).unwrap();
    req.extensions_mut().insert(PeerIp(peer));
    req
}

/// Every hostile request, with the answer it must get.
fn table(o: &StackOptions, jira: &[u8], push: &[u8]) -> Vec<Case> {
    let token = o.jira_token.as_str();
    let tok = |c: Case| c.h(JIRA_TOKEN_HEADER, token);
    let j = |name: &str| case(name, "/hooks/jira").body(jira.to_vec());
    let cci = |name: &str| case(name, "/hooks/circleci").body(CIRCLECI_JOB.to_vec());
    let cci_sig = v1(&o.circleci_secret, CIRCLECI_JOB);
    let bb = |name: &str| {
        case(name, "/hooks/bitbucket")
            .h("x-event-key", "repo:push")
            .body(push.to_vec())
    };
    let bb_sig = hub(&o.bitbucket_hook_secret, push);
    let jira_sig = hub(JIRA_SECRET, jira);
    let t = vec![
        // Tokens (Jira Automation).
        j("no credential at all").expect(
            401,
            "unauthorized",
            "missing X-Hub-Signature or X-Hoist-Token",
        ),
        j("wrong token").h(JIRA_TOKEN_HEADER, "nope").expect(
            401,
            "unauthorized",
            "wrong X-Hoist-Token",
        ),
        j("truncated token")
            .h(JIRA_TOKEN_HEADER, &token[..token.len() - 1])
            .expect(401, "unauthorized", "wrong"),
        j("token with a suffix")
            .h(JIRA_TOKEN_HEADER, format!("{token}x"))
            .expect(401, "unauthorized", "wrong"),
        j("token with a trailing space")
            .h(JIRA_TOKEN_HEADER, format!("{token} "))
            .expect(401, "unauthorized", "wrong"),
        j("empty token")
            .h(JIRA_TOKEN_HEADER, "")
            .expect(401, "unauthorized", "wrong"),
        tok(tok(j("token header twice, both right"))).expect(401, "unauthorized", "sent once"),
        tok(j("token header twice, right then wrong"))
            .h(JIRA_TOKEN_HEADER, "nope")
            .expect(401, "unauthorized", "sent once"),
        j("token as a bearer credential")
            .h("authorization", format!("Bearer {token}"))
            .expect(401, "unauthorized", "missing"),
        j("another source's secret as the token")
            .h(JIRA_TOKEN_HEADER, &o.circleci_secret)
            .expect(401, "unauthorized", "wrong"),
        // Hub signatures (Jira admin webhooks).
        j("signature of another body")
            .h("x-hub-signature", hub(JIRA_SECRET, b"{}"))
            .expect(401, "unauthorized", "does not match"),
        j("valid signature made with another secret")
            .h("x-hub-signature", hub("not-the-secret", jira))
            .expect(401, "unauthorized", "does not match"),
        j("truncated signature")
            .h("x-hub-signature", &jira_sig[..40])
            .expect(401, "unauthorized", "does not match"),
        j("signature without its sha256= prefix")
            .h("x-hub-signature", &jira_sig[7..])
            .expect(401, "unauthorized", "sha256=<hex>"),
        j("sha1 signature")
            .h("x-hub-signature", jira_sig.replace("sha256=", "sha1="))
            .expect(401, "unauthorized", "sha256=<hex>"),
        j("signature that is not hex")
            .h("x-hub-signature", format!("sha256={}", "zz".repeat(32)))
            .expect(401, "unauthorized", "does not match"),
        j("signature header twice, valid then forged")
            .h("x-hub-signature", &jira_sig)
            .h("x-hub-signature", "sha256=00")
            .expect(401, "unauthorized", "sent once"),
        j("valid signature but a wrong token alongside")
            .h("x-hub-signature", &jira_sig)
            .h(JIRA_TOKEN_HEADER, "nope")
            .expect(401, "unauthorized", "wrong X-Hoist-Token"),
        j("signature in GitHub's header, which this source does not read")
            .h("x-hub-signature-256", &jira_sig)
            .expect(401, "unauthorized", "missing"),
        // Addresses, forwarding headers, IPv6.
        tok(j("address not allowed")).peer("192.0.2.1").expect(
            403,
            "forbidden",
            "192.0.2.1 is not allowed",
        ),
        tok(j("spoofed X-Forwarded-For from an untrusted peer"))
            .peer("192.0.2.1")
            .h("x-forwarded-for", "127.0.0.1")
            .expect(403, "forbidden", "192.0.2.1"),
        tok(j("spoofed Forwarded header"))
            .peer("192.0.2.1")
            .h("forwarded", "for=127.0.0.1")
            .expect(403, "forbidden", "192.0.2.1"),
        tok(j("spoofed X-Real-IP"))
            .peer("192.0.2.1")
            .h("x-real-ip", "127.0.0.1")
            .expect(403, "forbidden", "192.0.2.1"),
        tok(j("trusted proxy; the client prepended an allowed hop"))
            .peer("10.0.0.5")
            .h("x-forwarded-for", "127.0.0.1, 192.0.2.66")
            .expect(403, "forbidden", "192.0.2.66"),
        tok(j("trusted proxy; hops split over two headers"))
            .peer("10.0.0.5")
            .h("x-forwarded-for", "198.51.100.9")
            .h("x-forwarded-for", "192.0.2.67, 10.0.0.6")
            .expect(403, "forbidden", "192.0.2.67"),
        tok(j("trusted proxy; garbage hops only"))
            .peer("10.0.0.5")
            .h("x-forwarded-for", "unknown, <script>, 999.1.1.1")
            .expect(403, "forbidden", "10.0.0.5"),
        tok(j("IPv6 peer not allowed"))
            .peer("2001:db8:ffff::1")
            .expect(403, "forbidden", "2001:db8:ffff::1"),
        tok(j("IPv4-mapped IPv6 peer of a refused IPv4"))
            .peer("::ffff:192.0.2.1")
            .expect(403, "forbidden", "source address 192.0.2.1 is"),
        j("IPv4-mapped IPv6 peer of an allowed IPv4, wrong token")
            .peer("::ffff:198.51.100.7")
            .h(JIRA_TOKEN_HEADER, "nope")
            .expect(401, "unauthorized", "wrong"),
        tok(j("IPv6 trusted proxy forwarding a refused IPv6 client"))
            .peer("fd00::1")
            .h("x-forwarded-for", "[2001:db8:ffff::9]:4711")
            .expect(403, "forbidden", "2001:db8:ffff::9"),
        tok(j(
            "IPv6 trusted proxy forwarding an IPv4-mapped refused client",
        ))
        .peer("fd00::1")
        .h("x-forwarded-for", "::ffff:192.0.2.8")
        .expect(403, "forbidden", "192.0.2.8 is"),
        j("unauthenticated request naming an unknown project")
            .body(r#"{"repo": "billing", "commit": "abcdef1"}"#)
            .expect(401, "unauthorized", "missing"),
        // Limits.
        tok(j("body over 1 MiB (Content-Length)"))
            .body(vec![b' '; 1024 * 1024 + 1])
            .expect(413, "payload_too_large", "larger than 1048576"),
        {
            let mut c = tok(j("body over 1 MiB (chunked, no Content-Length)"));
            c.payload = Payload::Streamed(vec![b' '; 1024 * 1024 + 1]);
            c.expect(413, "payload_too_large", "larger than")
        },
        tok(j("text/plain body"))
            .no_content_type()
            .h("content-type", "text/plain")
            .expect(415, "unsupported_media_type", "application/json"),
        tok(j("no content type")).no_content_type().expect(
            415,
            "unsupported_media_type",
            "application/json",
        ),
        tok(j("form body"))
            .no_content_type()
            .h("content-type", "application/x-www-form-urlencoded")
            .expect(415, "unsupported_media_type", "application/json"),
        tok(j("application/jsonp"))
            .no_content_type()
            .h("content-type", "application/jsonp")
            .expect(415, "unsupported_media_type", "application/json"),
        {
            let mut c = tok(j("a body that never arrives"));
            c.payload = Payload::Stalled;
            c.expect(408, "body_timeout", "within 1 s")
        },
        {
            let mut c = tok(j("more requests in flight than allowed"));
            c.alongside = 4;
            c.expect(503, "busy", "4 requests already")
        },
        {
            let mut c = j("a burst of 201 requests from one address").peer("192.0.2.77");
            c.repeat = 201;
            c.expect(429, "rate_limited", "from 192.0.2.77")
        },
        {
            let mut c = j("201 requests from 201 addresses of one IPv6 /64");
            c.peers = (1..=201)
                .map(|i| ip(&format!("2001:db8:dead:beef::{i:x}")))
                .collect();
            c.repeat = 201;
            c.expect(429, "rate_limited", "2001:db8:dead:beef::c9")
        },
        // Malformed and adversarial JSON, with a valid token.
        tok(j("array depth bomb")).body("[".repeat(100_000)).expect(
            400,
            "invalid_json",
            "deeper than 64",
        ),
        tok(j("object depth bomb"))
            .body(r#"{"a":"#.repeat(10_000))
            .expect(400, "invalid_json", "deeper than 64"),
        tok(j("200,000 items in 400 KB"))
            .body(format!("[{}0]", "0,".repeat(200_000)))
            .expect(400, "invalid_json", "more than 100000 JSON items"),
        tok(j("60,000 keys"))
            .body(format!(
                "{{{}\"z\":0}}",
                (0..60_000)
                    .map(|i| format!("\"k{i}\":0,"))
                    .collect::<String>()
            ))
            .expect(400, "invalid_json", "more than 100000"),
        tok(j("truncated JSON"))
            .body(jira[..jira.len() - 5].to_vec())
            .expect(400, "invalid_json", "unexpected end"),
        tok(j("invalid UTF-8"))
            .body(b"{\"repo\": \"\xff\xfe\"}".to_vec())
            .expect(400, "invalid_json", "not valid JSON"),
        tok(j("byte order mark"))
            .body([b"\xef\xbb\xbf".as_slice(), jira].concat())
            .expect(400, "invalid_json", "not valid JSON"),
        tok(j("a JSON string, not an object"))
            .body(r#""x""#)
            .expect(400, "invalid_field", "JSON object"),
        tok(j("null"))
            .body("null")
            .expect(400, "invalid_field", "JSON object"),
        tok(j("commit as an array"))
            .body(format!(r#"{{"repo": "{REPO}", "commit": ["abcdef1"]}}"#))
            .expect(400, "missing_field", "`commit`"),
        tok(j("commit as a huge number"))
            .body(format!(r#"{{"repo": "{REPO}", "commit": 1e999999}}"#))
            .expect(400, "invalid_json", "not valid JSON"),
        tok(j("half a megabyte of repository name"))
            .body(format!(
                r#"{{"repo": "{}", "commit": "abcdef1"}}"#,
                "r".repeat(500_000)
            ))
            .expect(404, "unknown_project", "rrr..."),
        tok(j("string with an unterminated escape"))
            .body(r#"{"repo": "\u12"#)
            .expect(400, "invalid_json", "not valid JSON"),
        // CircleCI.
        cci("no circleci-signature").expect(401, "unauthorized", "missing circleci-signature"),
        cci("v1 signature of another body")
            .h("circleci-signature", v1(&o.circleci_secret, b"{}"))
            .expect(401, "unauthorized", "does not match"),
        cci("v1 signature with another secret")
            .h("circleci-signature", v1("other", CIRCLECI_JOB))
            .expect(401, "unauthorized", "does not match"),
        cci("only a v0 signature")
            .h("circleci-signature", cci_sig.replace("v1=", "v0="))
            .expect(401, "unauthorized", "no v1"),
        cci("truncated v1 signature")
            .h("circleci-signature", &cci_sig[..30])
            .expect(401, "unauthorized", "does not match"),
        cci("nine signatures in the list")
            .h("circleci-signature", [cci_sig.as_str(); 9].join(","))
            .expect(401, "unauthorized", "more than 8"),
        cci("circleci-signature twice")
            .h("circleci-signature", &cci_sig)
            .h("circleci-signature", &cci_sig)
            .expect(401, "unauthorized", "sent once"),
        cci("Jira's token on the CircleCI hook")
            .h(JIRA_TOKEN_HEADER, token)
            .expect(401, "unauthorized", "missing circleci-signature"),
        case("signed depth bomb", "/hooks/circleci")
            .body("[".repeat(5000))
            .h(
                "circleci-signature",
                v1(&o.circleci_secret, "[".repeat(5000).as_bytes()),
            )
            .expect(400, "invalid_json", "deeper"),
        case("signed payload without id", "/hooks/circleci")
            .body(r#"{"type": "job-completed"}"#)
            .h(
                "circleci-signature",
                v1(&o.circleci_secret, br#"{"type": "job-completed"}"#),
            )
            .expect(400, "missing_field", "`id`"),
        case("signed payload with a numeric id", "/hooks/circleci")
            .body(r#"{"id": 5}"#)
            .h(
                "circleci-signature",
                v1(&o.circleci_secret, br#"{"id": 5}"#),
            )
            .expect(400, "invalid_field", "not a CircleCI webhook payload"),
        // Bitbucket: allowlist + token + signature, all required.
        bb("push with a signature but no token")
            .h("x-hub-signature", &bb_sig)
            .expect(
                401,
                "unauthorized",
                "missing X-Hoist-Token header: sources.bitbucket requires every",
            ),
        bb("push with a token but no signature")
            .h(JIRA_TOKEN_HEADER, BB_TOKEN)
            .expect(401, "unauthorized", "missing X-Hub-Signature header"),
        bb("push signed with another secret")
            .h(JIRA_TOKEN_HEADER, BB_TOKEN)
            .h("x-hub-signature", hub("other", push))
            .expect(401, "unauthorized", "does not match"),
        bb("push signature in X-Hub-Signature-256")
            .h(JIRA_TOKEN_HEADER, BB_TOKEN)
            .h("x-hub-signature-256", &bb_sig)
            .expect(401, "unauthorized", "missing X-Hub-Signature header"),
        bb("push with every credential, from a refused IPv6")
            .peer("2001:db8:ffff::2")
            .h(JIRA_TOKEN_HEADER, BB_TOKEN)
            .h("x-hub-signature", &bb_sig)
            .expect(403, "forbidden", "2001:db8:ffff::2"),
        bb("push signed with Jira's secret")
            .h(JIRA_TOKEN_HEADER, BB_TOKEN)
            .h("x-hub-signature", hub(JIRA_SECRET, push))
            .expect(401, "unauthorized", "does not match"),
        {
            let body = webhook::tag_pushed("acme", REPO, "stg3.0.1", "abc1234");
            let sig = hub(&o.bitbucket_hook_secret, &body);
            bb("signed push of a tag on a short hash")
                .body(body)
                .h(JIRA_TOKEN_HEADER, BB_TOKEN)
                .h("x-hub-signature", sig)
                .expect(400, "invalid_field", "target.hash")
        },
        {
            let body = br#"{"push": {"changes": []}}"#.to_vec();
            let sig = hub(&o.bitbucket_hook_secret, &body);
            bb("signed push without a repository")
                .body(body)
                .h(JIRA_TOKEN_HEADER, BB_TOKEN)
                .h("x-hub-signature", sig)
                .expect(400, "missing_field", "repository.full_name")
        },
        {
            let body = b"\0not json".to_vec();
            let sig = hub(&o.bitbucket_hook_secret, &body);
            case(
                "signed other event whose body is not JSON (NUL byte)",
                "/hooks/bitbucket",
            )
            .h("x-event-key", "pullrequest:created")
            .body(body)
            .h(JIRA_TOKEN_HEADER, BB_TOKEN)
            .h("x-hub-signature", sig)
            .expect(400, "invalid_json", "not valid JSON")
        },
        // The read API.
        case("API without a token", "/api/releases")
            .get()
            .expect(401, "unauthorized", "Bearer"),
        case("API with a wrong token", "/api/releases")
            .get()
            .h("authorization", "Bearer nope")
            .expect(401, "unauthorized", "Bearer"),
        case("API with the token as Basic", "/api/releases")
            .get()
            .h("authorization", format!("Basic {API_TOKEN}"))
            .expect(401, "unauthorized", "Bearer"),
        case("API with a hook token", "/api/releases/1")
            .get()
            .h("authorization", format!("Bearer {token}"))
            .expect(401, "unauthorized", "Bearer"),
    ];
    t
}
