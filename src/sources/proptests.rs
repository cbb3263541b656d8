//! Property tests: no input panics a parser, a signature check or the client-address logic, and
//! the JSON limits hold for any body. (The fuzz targets in `fuzz/` run the same entry points
//! with coverage guidance; these run in the normal suite.)

use std::net::IpAddr;

use proptest::prelude::*;

use super::auth::{SignatureFormat, client_ip};
use super::{JsonLimits, bitbucket, circleci, jira};
use crate::config::{AutomationFields, IssueFields, Secret};

/// Text made of JSON's pieces and the field names the parsers look for, so that cases get past
/// the JSON syntax into the parsers' own logic.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "null",
        "1",
        "-0.5e3",
        "\"\"",
        "\"x\"",
        "\"\\u00e9\\\"\"",
        "\"repo\"",
        "\"commit\"",
        "\"issue\"",
        "\"env\"",
        "\"abcdef1234567\"",
        "\"PAY-1\"",
        "\"webhookEvent\"",
        "\"jira:issue_updated\"",
        "\"changelog\"",
        "\"items\"",
        "\"assignee\"",
        "\"to\"",
        "\"key\"",
        "\"fields\"",
        "\"id\"",
        "\"type\"",
        "\"job-completed\"",
        "\"pipeline\"",
        "\"vcs\"",
        "\"revision\"",
        "\"job\"",
        "\"status\"",
        "\"push\"",
        "\"changes\"",
        "\"new\"",
        "\"tag\"",
        "\"name\"",
        "\"target\"",
        "\"hash\"",
        "\"repository\"",
        "\"full_name\"",
        "\"0123456789abcdef0123456789abcdef01234567\"",
    ];
    proptest::collection::vec(proptest::sample::select(PIECES), 0..80)
        .prop_map(|p| p.concat().into_bytes())
}

fn fields() -> (AutomationFields, IssueFields) {
    (
        AutomationFields::default(),
        IssueFields {
            repo: Some("/fields/repo".into()),
            commit: Some("/fields/commit".into()),
            env: Some("/fields/env".into()),
        },
    )
}

fn every_parser(body: &[u8]) {
    let (a, i) = fields();
    let _ = jira::parse(body, &a, &i);
    let _ = circleci::parse(body, Some("job-completed"));
    let _ = bitbucket::parse_push(body);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_bytes_panic_a_parser(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        every_parser(&body);
    }

    #[test]
    fn no_json_like_text_panics_a_parser(body in jsonish()) {
        every_parser(&body);
    }

    #[test]
    fn a_mutated_sample_never_panics_a_parser(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        for sample in [
            include_bytes!("../../fixtures/bitbucket-webhook-repo-push-tag-created.json").as_slice(),
            include_bytes!("../../fixtures/circleci-job-completed.json"),
            include_bytes!("../../fixtures/jira-webhook-issue-updated-assignee-trimmed.json"),
        ] {
            let mut body = sample.to_vec();
            for (at, byte) in &flips {
                let i = at.index(body.len());
                body[i] = *byte;
            }
            every_parser(&body);
        }
    }

    #[test]
    fn json_limits_bound_depth_and_items(body in jsonish(), depth in 1usize..16, items in 1usize..64) {
        let limits = JsonLimits { max_depth: depth, max_items: items };
        if limits.check(&body).is_ok() && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
            prop_assert!(nesting(&v) <= depth);
        }
    }

    #[test]
    fn no_header_panics_a_signature_check(header in proptest::collection::vec(any::<u8>(), 0..200), body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let secret = Secret::new("s");
        for format in [SignatureFormat::CircleCi, SignatureFormat::Hub("X-Hub-Signature-256".into())] {
            prop_assert!(super::signature::verify(&format, &header, &body, &secret).is_err());
        }
    }

    #[test]
    fn a_forwarded_for_from_an_untrusted_peer_never_counts(peer in any::<IpAddr>(), header in ".{0,200}") {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer = if let IpAddr::V4(v4) = peer && v4.octets()[0] == 10 { IpAddr::V4([11, 0, 0, 1].into()) } else { peer };
        prop_assert_eq!(client_ip(peer, [header.as_str()], &trusted), peer.to_canonical());
    }

    #[test]
    fn behind_a_trusted_proxy_the_client_is_a_hop_or_the_proxy(header in "[0-9a-f:., \\[\\]]{0,120}") {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.1.1.1".parse().unwrap();
        let client = client_ip(peer, [header.as_str()], &trusted);
        let hops: Vec<IpAddr> = header.split(',').filter_map(|h| any_address(h.trim())).collect();
        prop_assert!(client == peer || hops.contains(&client), "{client} from {header:?}");
    }
}

/// Every way an address can be written in a forwarding header (the test's own reading).
fn any_address(h: &str) -> Option<IpAddr> {
    let ip = h
        .parse::<IpAddr>()
        .ok()
        .or_else(|| h.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| h.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(ip.to_canonical())
}

fn nesting(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(nesting).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(nesting).max().unwrap_or(0),
        _ => 0,
    }
}
