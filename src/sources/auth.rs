//! Who may call a source: its allowlist, then the credentials it requires (SPEC 4.2).
//!
//! Every check runs on the raw request before the body is parsed, so nothing about the body (nor
//! whether the project it names exists) is revealed to a caller that fails them. Secrets are
//! compared in constant time ([`Secret::ct_eq`]; signatures in [`super::signature`]).

use std::net::IpAddr;

pub use super::address::{canonical, check_ip, client_ip};
pub use super::refusal::AuthError;
pub use super::signature::{SignatureFormat, sign_hex, verify_circleci, verify_hub};
pub use crate::config::SourceAuth as SourceChecks;
use crate::config::{Require, Secret};

/// A credential header as the request carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    Absent,
    One(&'a [u8]),
    /// The header came more than once: refused, since two parsers may not agree on which counts.
    Many,
}

/// The credential headers of one request.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub signature: Presented<'a>,
    pub token: Presented<'a>,
}

/// Applies a source's checks: the allowlist (403), then its credentials (401).
///
/// With `require = "any"`, at least one configured credential must be presented and every one
/// presented must be valid; with `"all"`, every configured one; with `"none"`, the allowlist alone
/// decides. A source with no credential configured refuses everyone unless it says `"none"`.
pub fn check(
    checks: &SourceChecks,
    client: IpAddr,
    presented: Credentials<'_>,
    body: &[u8],
) -> Result<(), AuthError> {
    check_ip(client, &checks.allow)?;
    if checks.require == Require::Nothing {
        return Ok(());
    }
    if checks.secret.is_none() && checks.token.is_none() {
        return Err(AuthError::Unauthorized(format!(
            "this endpoint refuses every request: {} has no secret or token configured",
            checks.name
        )));
    }
    let mut passed = 0;
    let mut missing: Vec<&str> = Vec::new();
    if let Some(secret) = &checks.secret {
        let header = checks.signature.header();
        match presented.signature {
            Presented::Absent => missing.push(header),
            Presented::Many => return Err(duplicated(header)),
            Presented::One(value) => {
                super::signature::verify(&checks.signature, value, body, secret)?;
                passed += 1;
            }
        }
    }
    if let (Some(token), Some(header)) = (&checks.token, &checks.token_header) {
        match presented.token {
            Presented::Absent => missing.push(header),
            Presented::Many => return Err(duplicated(header)),
            Presented::One(value) => {
                verify_token(Some(value), header, token)?;
                passed += 1;
            }
        }
    }
    match checks.require {
        Require::All if !missing.is_empty() => Err(AuthError::Unauthorized(format!(
            "missing {} header: {} requires every configured credential",
            missing.join(" and "),
            checks.name
        ))),
        Require::Any if passed == 0 => Err(AuthError::Unauthorized(format!(
            "missing {} header",
            missing.join(" or ")
        ))),
        _ => Ok(()),
    }
}

fn duplicated(header: &str) -> AuthError {
    AuthError::Unauthorized(format!("{header} must be sent once, not several times"))
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
    use Presented::{Absent, Many, One};

    fn checks(require: Require, secret: bool, token: bool) -> SourceChecks {
        SourceChecks {
            name: "sources.test",
            allow: vec!["192.0.2.0/24".parse().unwrap()],
            secret: secret.then(|| Secret::new("s3cret")),
            signature: SignatureFormat::default(),
            token_header: token.then(|| "X-Hoist-Token".into()),
            token: token.then(|| Secret::new("t0ken")),
            require,
        }
    }

    fn run(c: &SourceChecks, signature: Presented, token: Presented) -> Result<(), String> {
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        check(c, client, Credentials { signature, token }, b"body").map_err(|e| e.to_string())
    }

    #[test]
    fn every_combination_of_require_and_credentials() {
        let sig = format!("sha256={}", sign_hex(&Secret::new("s3cret"), b"body"));
        let good_sig = One(sig.as_bytes());
        let bad_sig = One(b"sha256=00");
        let good_tok = One(b"t0ken");
        let bad_tok = One(b"t0ken2");
        let any = checks(Require::Any, true, true);
        assert_eq!(run(&any, good_sig, Absent), Ok(()));
        assert_eq!(run(&any, Absent, good_tok), Ok(()));
        assert_eq!(run(&any, good_sig, good_tok), Ok(()));
        assert!(
            run(&any, good_sig, bad_tok)
                .unwrap_err()
                .contains("wrong X-Hoist-Token")
        );
        assert!(
            run(&any, bad_sig, good_tok)
                .unwrap_err()
                .contains("does not match")
        );
        let e = run(&any, Absent, Absent).unwrap_err();
        assert!(
            e.contains("missing X-Hub-Signature or X-Hoist-Token"),
            "{e}"
        );
        let all = checks(Require::All, true, true);
        assert_eq!(run(&all, good_sig, good_tok), Ok(()));
        let e = run(&all, good_sig, Absent).unwrap_err();
        assert!(
            e.contains("missing X-Hoist-Token header: sources.test requires every"),
            "{e}"
        );
        assert!(
            run(&all, Absent, good_tok)
                .unwrap_err()
                .contains("X-Hub-Signature")
        );
        assert!(run(&all, good_sig, Many).unwrap_err().contains("sent once"));
        assert!(run(&all, Many, good_tok).unwrap_err().contains("sent once"));
        let none = checks(Require::Nothing, false, false);
        assert_eq!(run(&none, Absent, Absent), Ok(()));
        let unconfigured = checks(Require::Any, false, false);
        let e = run(&unconfigured, good_sig, good_tok).unwrap_err();
        assert!(e.contains("sources.test has no secret or token"), "{e}");
    }

    #[test]
    fn the_allowlist_comes_first() {
        let c = checks(Require::Any, false, true);
        let outside: IpAddr = "198.51.100.1".parse().unwrap();
        let presented = Credentials {
            signature: Absent,
            token: One(b"t0ken"),
        };
        assert_eq!(
            check(&c, outside, presented, b""),
            Err(AuthError::Forbidden(outside))
        );
    }

    #[test]
    fn tokens() {
        let t = Secret::new("tok");
        assert!(verify_token(Some(b"tok"), "X-Hoist-Token", &t).is_ok());
        assert!(verify_token(Some(b"tok2"), "X-Hoist-Token", &t).is_err());
        assert!(verify_token(Some(b"to"), "X-Hoist-Token", &t).is_err());
        assert!(verify_token(None, "X-Hoist-Token", &t).is_err());
    }
}
