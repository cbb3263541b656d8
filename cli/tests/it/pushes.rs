//! Bitbucket `repo:push` webhooks (SPEC 4.1, 4.2, 10): tags people push by hand are recorded, so
//! the next version Hoist allocates skips them; redeliveries change nothing; the vendor's signed
//! sample passes with its published secret and fails when one byte changes.

use hoist::domain::ReleaseStatus;
use hoist_cli::stack::{REPO, StackOptions};

use crate::util::{WAIT, count, post, stack_with};

const SIGNED: &[u8] = include_bytes!("../../../fixtures/bitbucket-webhook-repo-push-signed.json");
const SIGNED_SECRET: &str = "Gkvl$k$wyNpQAF42";
const SIGNED_HEADER: &str =
    "sha256=f205c729821c6954aff2afe72b965c34015b4baf96ea8ddc2cc44999c014a035";

fn quick() -> StackOptions {
    StackOptions {
        auto_build: false,
        ..StackOptions::default()
    }
}

async fn tag_rows(s: &hoist_cli::stack::Stack) -> Vec<(String, String, String)> {
    let project = hoist::domain::ProjectName::parse(hoist_cli::stack::PROJECT).unwrap();
    let env = hoist::domain::EnvName::parse("stg").unwrap();
    s.hoist
        .store
        .known_tags(&project, &env)
        .await
        .unwrap()
        .into_iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.commit.to_string(),
                t.origin.to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_hand_pushed_tag_is_recorded_and_the_next_version_skips_it() {
    let s = stack_with(quick(), |_| {}).await;
    let pushed_on = s.commit("tagged by hand");
    let (status, answer) = s
        .push_tag("stg1.4.0", &pushed_on, "{uuid-1}")
        .await
        .unwrap();
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["recorded"], serde_json::json!(["stg1.4.0"]));
    assert_eq!(
        tag_rows(&s).await,
        [("stg1.4.0".into(), pushed_on.clone(), "push".into())]
    );

    // Bitbucket resends on 5xx: the same X-Request-UUID changes nothing.
    let (status, answer) = s
        .push_tag("stg1.4.0", &pushed_on, "{uuid-1}")
        .await
        .unwrap();
    assert_eq!(
        (status, &answer["duplicate"]),
        (200, &serde_json::json!(true))
    );
    assert_eq!(count(&s, "deliveries").await, 1);

    // A tag outside every family is acknowledged, not recorded.
    let (status, answer) = s
        .push_tag("simple-tag", &pushed_on, "{uuid-2}")
        .await
        .unwrap();
    assert_eq!(status, 202);
    assert_eq!(answer["not_in_a_family"], serde_json::json!(["simple-tag"]));
    assert_eq!(tag_rows(&s).await.len(), 1);

    // The repository itself does not list stg1.4.0 (Hoist only heard of it): the next release
    // still gets the version after it.
    assert!(s.bitbucket.tags(REPO).is_empty());
    let next = s.commit("PAY-7");
    let (_, body) = s.assign("PAY-7", &next).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let r = s
        .wait_release(id, WAIT, |r| r.status != ReleaseStatus::Received)
        .await
        .unwrap();
    assert_eq!(r.tag.as_deref(), Some("stg1.4.1"), "{:?}", r.error);

    // A ticket for the hand-tagged commit reuses its tag instead of minting another.
    let (_, body) = s.assign("PAY-8", &pushed_on).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let r = s
        .wait_release(id, WAIT, |r| r.status != ReleaseStatus::Received)
        .await
        .unwrap();
    assert_eq!((r.tag.as_deref(), r.tag_reused), (Some("stg1.4.0"), true));
    s.finish().await.unwrap();
}

#[tokio::test]
async fn the_vendors_signed_push_passes_with_its_published_secret() {
    let s = stack_with(
        StackOptions {
            bitbucket_hook_secret: SIGNED_SECRET.into(),
            ..quick()
        },
        |_| {},
    )
    .await;
    let headers = |sig: &'static str| {
        [
            ("content-type", "application/json"),
            ("x-event-key", "repo:push"),
            ("x-request-uuid", "{3f1c2b7e-0000-4000-8000-000000000001}"),
            ("x-hub-signature", sig),
        ]
    };
    let mut tampered = SIGNED.to_vec();
    let at = tampered.len() / 2;
    tampered[at] ^= 1;
    let (status, answer) = post(&s, "/hooks/bitbucket", &headers(SIGNED_HEADER), tampered).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(count(&s, "deliveries").await, 0);

    let (status, answer) = post(&s, "/hooks/bitbucket", &headers(SIGNED_HEADER), SIGNED).await;
    assert_eq!(status, 202, "{answer}");
    // A branch push to a repository no project names: recorded and acknowledged with the reason.
    let reason = answer["ignored"].as_str().unwrap();
    assert!(reason.contains("nfalco79/test-repos"), "{reason}");
    assert_eq!(count(&s, "deliveries").await, 1);
    assert_eq!(count(&s, "tags").await, 0);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn other_bitbucket_events_are_acknowledged_and_ignored() {
    let s = stack_with(quick(), |_| {}).await;
    let body = br#"{"repository": {"full_name": "acme/payments-api"}}"#;
    let sig = hoist_sim::jira::sign(&s.options.bitbucket_hook_secret, body);
    let headers = [
        ("content-type", "application/json"),
        ("x-event-key", "pullrequest:created"),
        ("x-hub-signature", sig.as_str()),
    ];
    let (status, answer) = post(&s, "/hooks/bitbucket", &headers, body.to_vec()).await;
    assert_eq!(status, 202, "{answer}");
    assert!(
        answer["ignored"]
            .as_str()
            .unwrap()
            .contains("not repo:push")
    );
    assert_eq!(count(&s, "tags").await, 0);
    s.finish().await.unwrap();
}

/// The simulator's push body is one Hoist's parser reads back (this check lived in the
/// simulator's unit tests until the simulators left the `hoist` crate).
#[test]
fn a_simulated_pushed_tag_parses_back() {
    let hash = "0123456789abcdef0123456789abcdef01234567";
    let body = hoist_sim::bitbucket::webhook::tag_pushed("acme", "api", "stg1.2.3", hash);
    let push = hoist::sources::bitbucket::parse_push(&body).unwrap();
    assert_eq!(push.repository, "acme/api");
    assert_eq!(push.tags[0].name, "stg1.2.3");
    assert_eq!(push.tags[0].commit.as_str(), hash);
}
