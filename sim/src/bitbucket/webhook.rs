//! Bitbucket Cloud's outbound `repo:push` webhook, as Bitbucket sends it when someone pushes a
//! tag: the real captured payload (`fixtures/bitbucket-webhook-repo-push-tag-created.json`) with
//! the repository, tag and commit replaced, signed like Bitbucket signs.

use serde_json::Value;

use crate::sign::hmac_sha256_hex;

const TAG_CREATED: &str =
    include_str!("../../../fixtures/bitbucket-webhook-repo-push-tag-created.json");

/// The body of a push that created tag `name` on `hash` in `workspace/repo`.
pub fn tag_pushed(workspace: &str, repo: &str, name: &str, hash: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(TAG_CREATED).expect("the fixture is JSON");
    let full_name = format!("{workspace}/{repo}");
    v["repository"]["full_name"] = full_name.clone().into();
    v["repository"]["name"] = repo.into();
    let new = &mut v["push"]["changes"][0]["new"];
    new["name"] = name.into();
    new["target"]["hash"] = hash.into();
    serde_json::to_vec(&v).expect("serialisable")
}

/// The headers Bitbucket sends with a push: event key, delivery id, attempt, and the signature.
pub fn headers(secret: &str, body: &[u8], request_uuid: &str) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".into()),
        ("user-agent", "Bitbucket-Webhooks/2.0".into()),
        ("x-event-key", "repo:push".into()),
        ("x-request-uuid", request_uuid.into()),
        ("x-attempt-number", "1".into()),
        (
            "x-hub-signature",
            format!("sha256={}", hmac_sha256_hex(secret, body)),
        ),
    ]
}
