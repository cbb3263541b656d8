//! Who may call: client address, IP allowlists, HMAC signatures and shared tokens.
//!
//! Every check runs on the raw request before the body is parsed. Comparisons of secrets are
//! constant-time (`subtle`, via `Mac::verify_slice` and [`Secret::ct_eq`]).

use std::net::IpAddr;

use hmac::{Hmac, KeyInit, Mac};
use ipnet::IpNet;
use sha2::Sha256;

use crate::config::Secret;

/// Why a caller was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("source address {0} is not allowed")]
    Forbidden(IpAddr),
    #[error("{0}")]
    Unauthorized(String),
}

/// The client's address: the socket peer, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` hop that is not itself a trusted proxy. A header from an untrusted peer is
/// ignored, so it cannot be spoofed.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.iter().any(|n| n.contains(&peer)) {
        return peer;
    }
    let hops: Vec<IpAddr> = forwarded_for
        .into_iter()
        .flat_map(|h| h.split(','))
        .filter_map(|h| parse_hop(h.trim()))
        .collect();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        client = hop;
        if !trusted.iter().any(|n| n.contains(&hop)) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, optionally `[v6]:port` or `v4:port`.
fn parse_hop(h: &str) -> Option<IpAddr> {
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = h.parse::<std::net::SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    None
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) compare as the IPv4 address they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// An empty allowlist allows everyone.
pub fn check_ip(ip: IpAddr, allow: &[IpNet]) -> Result<(), AuthError> {
    if allow.is_empty() || allow.iter().any(|n| n.contains(&ip)) {
        Ok(())
    } else {
        Err(AuthError::Forbidden(ip))
    }
}

fn mac(secret: &Secret) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes keys of any length")
}

/// Hex HMAC-SHA256 of `body` (for simulators and tests that sign).
pub fn sign_hex(secret: &Secret, body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

fn verify_hex(secret: &Secret, body: &[u8], hex_sig: &str) -> bool {
    let Ok(sig) = hex::decode(hex_sig.trim()) else {
        return false;
    };
    let mut m = mac(secret);
    m.update(body);
    m.verify_slice(&sig).is_ok()
}

/// CircleCI's `circleci-signature`: a comma-separated list of `version=hex`; `v1` is HMAC-SHA256
/// of the raw body. Any matching `v1` entry passes.
pub fn verify_circleci(
    header: Option<&str>,
    body: &[u8],
    secret: &Secret,
) -> Result<(), AuthError> {
    let header = header.ok_or_else(|| {
        AuthError::Unauthorized("missing circleci-signature header: set the webhook's secret in CircleCI to sources.circleci.secret".into())
    })?;
    let mut saw_v1 = false;
    for part in header.split(',') {
        if let Some((version, sig)) = part.trim().split_once('=')
            && version == "v1"
        {
            saw_v1 = true;
            if verify_hex(secret, body, sig) {
                return Ok(());
            }
        }
    }
    Err(AuthError::Unauthorized(if saw_v1 {
        "circleci-signature does not match the body: check sources.circleci.secret".into()
    } else {
        "circleci-signature has no v1 signature".into()
    }))
}

/// `X-Hub-Signature: sha256=<hex>` (Bitbucket, Jira admin webhooks) and GitHub's
/// `X-Hub-Signature-256` (same format).
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
    if verify_hex(secret, body, sig) {
        Ok(())
    } else {
        Err(AuthError::Unauthorized(format!(
            "{header_name} does not match the body: check the source's secret"
        )))
    }
}

/// A shared token in a configured header, compared in constant time.
pub fn verify_token(
    presented: Option<&[u8]>,
    header_name: &str,
    token: &Secret,
) -> Result<(), AuthError> {
    match presented {
        None => Err(AuthError::Unauthorized(format!(
            "missing {header_name} header"
        ))),
        Some(p) if token.ct_eq(p) => Ok(()),
        Some(_) => Err(AuthError::Unauthorized(format!("wrong {header_name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn circleci_docs_vector() {
        let s = Secret::new("secret");
        let sig = "v1=734cc62f32841568f45715aeb9f4d7891324e6d948e4c6c60c0621cdac48623a";
        assert!(verify_circleci(Some(sig), b"hello world", &s).is_ok());
        assert!(verify_circleci(Some(&format!("v0=00,{sig}")), b"hello world", &s).is_ok());
        assert!(verify_circleci(Some(sig), b"hello world!", &s).is_err());
        assert!(verify_circleci(Some("v2=734cc62f"), b"hello world", &s).is_err());
        assert!(verify_circleci(None, b"hello world", &s).is_err());
        assert!(verify_circleci(Some(sig), b"hello world", &Secret::new("other")).is_err());
    }

    #[test]
    fn bitbucket_fixture_vector() {
        let body = include_bytes!("../../fixtures/bitbucket-webhook-repo-push-signed.json");
        assert_eq!(body.len(), 14_515);
        let s = Secret::new("Gkvl$k$wyNpQAF42");
        let h = "sha256=f205c729821c6954aff2afe72b965c34015b4baf96ea8ddc2cc44999c014a035";
        assert!(verify_hub(Some(h), "X-Hub-Signature", body, &s).is_ok());
        assert!(
            verify_hub(
                Some(&h.replace("sha256=", "sha1=")),
                "X-Hub-Signature",
                body,
                &s
            )
            .is_err()
        );
        assert!(verify_hub(Some(h), "X-Hub-Signature", &body[..100], &s).is_err());
    }

    #[test]
    fn client_address_resolution() {
        let trusted = nets(&["10.0.0.0/8", "fd00::/8"]);
        let peer: IpAddr = "10.1.1.1".parse().unwrap();
        let untrusted: IpAddr = "203.0.113.9".parse().unwrap();
        // Untrusted peer: header ignored.
        assert_eq!(client_ip(untrusted, ["1.2.3.4"], &trusted), untrusted);
        // Trusted peer: right-most untrusted hop.
        assert_eq!(
            client_ip(peer, ["1.2.3.4, 198.51.100.7, 10.2.2.2"], &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(peer, ["1.2.3.4", "198.51.100.7"], &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // All hops trusted: the left-most.
        assert_eq!(
            client_ip(peer, ["10.3.3.3"], &trusted),
            "10.3.3.3".parse::<IpAddr>().unwrap()
        );
        // No header: the peer.
        assert_eq!(client_ip(peer, [], &trusted), peer);
        // Garbage hops are skipped.
        assert_eq!(
            client_ip(peer, ["nonsense, 198.51.100.7"], &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // IPv4-mapped IPv6 peer compares as IPv4.
        let mapped: IpAddr = "::ffff:10.1.1.1".parse().unwrap();
        assert_eq!(
            client_ip(mapped, ["[2001:db8::1]:443"], &trusted),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn allowlists() {
        let allow = nets(&["13.52.5.96/28", "2401:1d80:3000::/36"]);
        assert!(check_ip("13.52.5.100".parse().unwrap(), &allow).is_ok());
        assert!(check_ip("13.52.5.112".parse().unwrap(), &allow).is_err());
        assert!(check_ip("2401:1d80:3000::1".parse().unwrap(), &allow).is_ok());
        assert!(check_ip(canonical("::ffff:13.52.5.100".parse().unwrap()), &allow).is_ok());
        assert!(check_ip("1.1.1.1".parse().unwrap(), &[]).is_ok());
    }

    #[test]
    fn tokens() {
        let t = Secret::new("tok");
        assert!(verify_token(Some(b"tok"), "X-Hoist-Token", &t).is_ok());
        assert!(verify_token(Some(b"tok2"), "X-Hoist-Token", &t).is_err());
        assert!(verify_token(None, "X-Hoist-Token", &t).is_err());
    }
}
