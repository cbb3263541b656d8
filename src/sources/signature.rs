//! HMAC-SHA256 webhook signatures over the raw body, compared in constant time.
//!
//! - CircleCI: `circleci-signature: v1=<hex>`, a comma-separated list of versioned signatures;
//!   only `v1` exists.
//! - Bitbucket and Jira admin webhooks: `X-Hub-Signature: sha256=<hex>`.
//! - GitHub: `X-Hub-Signature-256: sha256=<hex>` (the same format under another name).
//!
//! The expected MAC is computed once per request, whatever the number of signatures a header
//! lists, so a header cannot make Hoist hash a large body many times.

use ring::hmac;
use subtle::ConstantTimeEq;

use super::refusal::AuthError;
use crate::config::Secret;

/// Most entries read from a `circleci-signature` list (CircleCI sends one per version).
pub const MAX_SIGNATURES: usize = 8;

pub use crate::config::SignatureFormat;

/// Checks a presented signature header's value against the body, in `format`.
pub fn verify(
    format: &SignatureFormat,
    value: &[u8],
    body: &[u8],
    secret: &Secret,
) -> Result<(), AuthError> {
    let value = std::str::from_utf8(value).map_err(|_| {
        AuthError::Unauthorized(format!("{} is not readable text", format.header()))
    })?;
    match format {
        SignatureFormat::CircleCi => verify_circleci(Some(value), body, secret),
        SignatureFormat::Hub(h) => verify_hub(Some(value), h, body, secret),
    }
}

/// HMAC-SHA256 with ring's SHA-256, which picks the fastest code this CPU runs (SHA extensions,
/// AVX2, SSSE3): RustCrypto's `sha2` has only the SHA extensions or portable code, and without
/// them hashing a 1.5 KB body was 18% of a webhook's time on the request threads.
fn mac(secret: &Secret, body: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    let tag = hmac::sign(&key, body);
    tag.as_ref()
        .try_into()
        .expect("an HMAC-SHA256 tag is 32 bytes")
}

/// Hex HMAC-SHA256 of `body` (for simulators and tests that sign).
pub fn sign_hex(secret: &Secret, body: &[u8]) -> String {
    hex::encode(mac(secret, body))
}

/// Whether a hex signature equals the expected MAC, in time independent of where they differ.
fn matches(expected: &[u8; 32], hex_sig: &str) -> bool {
    let mut sig = [0u8; 32];
    hex::decode_to_slice(hex_sig.trim(), &mut sig).is_ok() && bool::from(sig.ct_eq(expected))
}

/// CircleCI's `circleci-signature`: any matching `v1` entry passes.
pub fn verify_circleci(
    header: Option<&str>,
    body: &[u8],
    secret: &Secret,
) -> Result<(), AuthError> {
    let header = header.ok_or_else(|| {
        AuthError::Unauthorized("missing circleci-signature header: set the webhook's secret in CircleCI to sources.circleci.secret".into())
    })?;
    let entries: Vec<&str> = header.split(',').collect();
    if entries.len() > MAX_SIGNATURES {
        return Err(AuthError::Unauthorized(format!(
            "circleci-signature lists more than {MAX_SIGNATURES} signatures"
        )));
    }
    let v1: Vec<&str> = entries
        .iter()
        .filter_map(|part| part.trim().split_once('='))
        .filter(|(version, _)| *version == "v1")
        .map(|(_, sig)| sig)
        .collect();
    if v1.is_empty() {
        return Err(AuthError::Unauthorized(
            "circleci-signature has no v1 signature".into(),
        ));
    }
    let expected = mac(secret, body);
    // Every entry is compared (no early exit), so the time does not tell which one matched.
    let ok = v1
        .iter()
        .fold(false, |ok, sig| matches(&expected, sig) | ok);
    if ok {
        Ok(())
    } else {
        Err(AuthError::Unauthorized(
            "circleci-signature does not match the body: check sources.circleci.secret".into(),
        ))
    }
}

/// `sha256=<hex>` in `header_name` (Bitbucket, Jira admin webhooks, GitHub).
pub fn verify_hub(
    header: Option<&str>,
    header_name: &str,
    body: &[u8],
    secret: &Secret,
) -> Result<(), AuthError> {
    let header =
        header.ok_or_else(|| AuthError::Unauthorized(format!("missing {header_name} header")))?;
    let sig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or_else(|| AuthError::Unauthorized(format!("{header_name} must be sha256=<hex>")))?;
    if matches(&mac(secret, body), sig) {
        Ok(())
    } else {
        Err(AuthError::Unauthorized(format!(
            "{header_name} does not match the body: check the source's secret"
        )))
    }
}

/// How far a Slack request's timestamp may be from now, either way: older ones are replays.
pub const SLACK_MAX_SKEW_SECS: i64 = 5 * 60;

/// Slack's request signature: `X-Slack-Signature: v0=<hex HMAC-SHA256 of
/// "v0:{X-Slack-Request-Timestamp}:{raw body}">`, the timestamp within five minutes of `now`.
pub fn verify_slack(
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    secret: &Secret,
    now_secs: i64,
) -> Result<(), AuthError> {
    let ts = timestamp.ok_or_else(|| {
        AuthError::Unauthorized("missing X-Slack-Request-Timestamp header".into())
    })?;
    let sig = signature
        .ok_or_else(|| AuthError::Unauthorized("missing X-Slack-Signature header".into()))?;
    let when: i64 = ts.trim().parse().map_err(|_| {
        AuthError::Unauthorized("X-Slack-Request-Timestamp is not a number of seconds".into())
    })?;
    if (now_secs - when).abs() > SLACK_MAX_SKEW_SECS {
        return Err(AuthError::Unauthorized(format!(
            "X-Slack-Request-Timestamp is {} s from now, more than {SLACK_MAX_SKEW_SECS}: a replay, or a clock to fix",
            now_secs - when
        )));
    }
    let hex_sig = sig
        .trim()
        .strip_prefix("v0=")
        .ok_or_else(|| AuthError::Unauthorized("X-Slack-Signature must be v0=<hex>".into()))?;
    let mut base = Vec::with_capacity(body.len() + ts.len() + 4);
    base.extend_from_slice(b"v0:");
    base.extend_from_slice(ts.as_bytes());
    base.push(b':');
    base.extend_from_slice(body);
    if matches(&mac(secret, &base), hex_sig) {
        Ok(())
    } else {
        Err(AuthError::Unauthorized(
            "X-Slack-Signature does not match the body: check sources.slack.signing_secret (the app's Signing Secret)".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_docs_vector_and_its_window() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../fixtures/slack-signature-vector.json"))
                .unwrap();
        let secret = Secret::new(v["signing_secret"].as_str().unwrap());
        let ts = v["headers"]["X-Slack-Request-Timestamp"].as_str().unwrap();
        let sig = v["headers"]["X-Slack-Signature"].as_str().unwrap();
        let body = v["body"].as_str().unwrap().as_bytes();
        let now = v["test_clock_now_epoch_s"].as_i64().unwrap();
        assert!(verify_slack(Some(ts), Some(sig), body, &secret, now).is_ok());
        assert!(verify_slack(Some(ts), Some(sig), body, &secret, now + 300).is_ok());
        let stale = verify_slack(Some(ts), Some(sig), body, &secret, now + 301).unwrap_err();
        assert!(stale.to_string().contains("replay"), "{stale}");
        let mut forged = body.to_vec();
        forged[0] ^= 1;
        assert!(verify_slack(Some(ts), Some(sig), &forged, &secret, now).is_err());
        assert!(verify_slack(None, Some(sig), body, &secret, now).is_err());
        assert!(verify_slack(Some(ts), Some("a2114d"), body, &secret, now).is_err());
    }

    #[test]
    fn circleci_docs_vector() {
        let s = Secret::new("secret");
        let sig = "v1=734cc62f32841568f45715aeb9f4d7891324e6d948e4c6c60c0621cdac48623a";
        assert!(verify_circleci(Some(sig), b"hello world", &s).is_ok());
        assert!(verify_circleci(Some(&format!("v0=00,{sig}")), b"hello world", &s).is_ok());
        assert!(verify_circleci(Some(&format!("v1=00, {sig}")), b"hello world", &s).is_ok());
        assert!(verify_circleci(Some(sig), b"hello world!", &s).is_err());
        assert!(verify_circleci(Some("v2=734cc62f"), b"hello world", &s).is_err());
        assert!(verify_circleci(None, b"hello world", &s).is_err());
        assert!(verify_circleci(Some(sig), b"hello world", &Secret::new("other")).is_err());
        assert!(verify_circleci(Some(&sig[..40]), b"hello world", &s).is_err());
        let many = [sig; MAX_SIGNATURES + 1].join(",");
        assert!(verify_circleci(Some(&many), b"hello world", &s).is_err());
    }

    #[test]
    fn bitbucket_fixture_vector() {
        let body = include_bytes!("../../fixtures/bitbucket-webhook-repo-push-signed.json");
        assert_eq!(body.len(), 14_515);
        let s = Secret::new("Gkvl$k$wyNpQAF42");
        let h = "sha256=f205c729821c6954aff2afe72b965c34015b4baf96ea8ddc2cc44999c014a035";
        assert!(verify_hub(Some(h), "X-Hub-Signature", body, &s).is_ok());
        assert_eq!(sign_hex(&s, body), h["sha256=".len()..]);
        let sha1 = h.replace("sha256=", "sha1=");
        assert!(verify_hub(Some(&sha1), "X-Hub-Signature", body, &s).is_err());
        assert!(verify_hub(Some(h), "X-Hub-Signature", &body[..100], &s).is_err());
        assert!(verify_hub(Some(&h[..40]), "X-Hub-Signature", body, &s).is_err());
    }

    /// GitHub's published test values ("Validating webhook deliveries", docs.github.com).
    #[test]
    fn github_docs_vector() {
        let s = Secret::new("It's a Secret to Everybody");
        let h = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let format = SignatureFormat::Hub("X-Hub-Signature-256".into());
        assert!(verify(&format, h.as_bytes(), b"Hello, World!", &s).is_ok());
        assert!(verify(&format, h.as_bytes(), b"Hello, World?", &s).is_err());
        assert!(verify(&format, b"sha256=\xff", b"Hello, World!", &s).is_err());
    }
}
