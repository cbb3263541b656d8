//! Who is looking at the dashboard, and whether a form really came from it (SPEC 15).
//!
//! - With `server.api_token`, `/signin` takes a name and the token and answers with a session
//!   cookie (`HttpOnly; SameSite=Strict; Path=/`, 12 hours): `<name>.<expiry>.<signature>`, the
//!   name in URL-safe base64 and the signature an HMAC-SHA256 under a key derived from the token,
//!   so every replica checks it alone and changing the token signs everyone out. Nothing else is
//!   stored; signing out clears the cookie in that browser.
//! - Without a token, as for `/api`: direct loopback callers only (not through a proxy), signed in
//!   as `local` until they give a name at `/signin` (then a cookie signed under a key made at
//!   start); anyone else is refused.
//! - Every form that changes something carries a token bound to the session (an HMAC of the
//!   cookie) and must come from this origin (`Origin`, or `Sec-Fetch-Site` when a browser sends
//!   no `Origin`); otherwise nothing is done. The cookie's `SameSite=Strict` is a third guard.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use crate::config::Config;
use crate::domain::now_ms;

pub const COOKIE: &str = "hoist_session";
const LIFETIME_MS: i64 = 12 * 3600 * 1000;
/// The name of a loopback caller without a session when no token is set.
pub const LOCAL: &str = "local";

/// The key sessions and form tokens are signed with.
#[derive(Clone)]
pub struct Keys(hmac::Key);

impl Keys {
    /// Derived from `server.api_token` when set (the same on every replica), else random.
    pub fn new(config: &Config) -> Keys {
        let seed: Vec<u8> = match &config.server.api_token {
            Some(token) => {
                let k = hmac::Key::new(hmac::HMAC_SHA256, token.expose().as_bytes());
                hmac::sign(&k, b"hoist dashboard sessions")
                    .as_ref()
                    .to_vec()
            }
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        Keys(hmac::Key::new(hmac::HMAC_SHA256, &seed))
    }

    fn sign(&self, what: &str) -> String {
        hex::encode(hmac::sign(&self.0, what.as_bytes()).as_ref())
    }

    fn verify(&self, what: &str, signature: &str) -> bool {
        hex::decode(signature).is_ok_and(|sig| hmac::verify(&self.0, what.as_bytes(), &sig).is_ok())
    }

    /// The token of a form shown to someone not signed in (the sign-in form): bound to no
    /// session, so the origin check is what guards it.
    pub fn form_token(&self) -> String {
        self.sign("csrf.signin")
    }

    /// A new session cookie's value for `name`.
    pub fn session(&self, name: &str) -> String {
        let body = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(name),
            now_ms() + LIFETIME_MS
        );
        let sig = self.sign(&format!("session.{body}"));
        format!("{body}.{sig}")
    }

    /// The name in a session cookie that this key signed and that has not expired.
    fn name_in(&self, value: &str) -> Option<String> {
        let (body, sig) = value.rsplit_once('.')?;
        if !self.verify(&format!("session.{body}"), sig) {
            return None;
        }
        let (name, expiry) = body.split_once('.')?;
        if expiry.parse::<i64>().ok()? < now_ms() {
            return None;
        }
        String::from_utf8(URL_SAFE_NO_PAD.decode(name).ok()?).ok()
    }
}

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    /// What the session's forms carry.
    pub csrf: String,
    /// Whether the name came from a session cookie (so signing out means something).
    pub has_session: bool,
}

/// Why a request is not answered with data.
pub enum Denied {
    /// Send them to `/signin`.
    SignIn,
    /// No token is configured and the caller is not on loopback: nobody can sign in from here.
    Forbidden,
}

/// The value of cookie `name` in the request.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Who is asking: a valid session, or (no token configured) a direct loopback caller.
pub fn viewer(
    keys: &Keys,
    config: &Config,
    headers: &HeaderMap,
    loopback: bool,
) -> Result<Viewer, Denied> {
    let token_set = config.server.api_token.is_some();
    if !token_set && !loopback {
        return Err(Denied::Forbidden);
    }
    let session = cookie(headers, COOKIE);
    match session.and_then(|v| keys.name_in(v).map(|n| (v, n))) {
        Some((value, name)) => Ok(Viewer {
            name,
            csrf: keys.sign(&format!("csrf.{value}")),
            has_session: true,
        }),
        None if !token_set => Ok(Viewer {
            name: LOCAL.into(),
            csrf: keys.sign("csrf.local"),
            has_session: false,
        }),
        None => Err(Denied::SignIn),
    }
}

/// Whether a form's token is the viewer's.
pub fn csrf_ok(viewer: &Viewer, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    viewer.csrf.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// Whether a POST came from a page of this origin: its `Origin` names the host it was sent to,
/// or, without `Origin`, the browser says `Sec-Fetch-Site: same-origin`. A request with neither
/// (not a browser's form) is refused too: forms are for browsers; scripts use `/api`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        return matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h));
    }
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "same-origin")
}

/// The `Set-Cookie` value for a session (or, with `None`, one that clears it).
pub fn set_cookie(value: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(v) => format!(
            "{COOKIE}={v}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
            LIFETIME_MS / 1000
        ),
        None => format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"),
    }
}

/// A name fit to record as who asked: 1 to 64 characters, no control characters.
pub fn valid_name(name: &str) -> Option<String> {
    let name = name.trim();
    (!name.is_empty() && name.chars().count() <= 64 && !name.chars().any(char::is_control))
        .then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn keys() -> Keys {
        Keys(hmac::Key::new(hmac::HMAC_SHA256, b"k"))
    }

    #[test]
    fn a_session_names_its_person_and_refuses_tampering() {
        let k = keys();
        let v = k.session("jess");
        assert_eq!(k.name_in(&v).as_deref(), Some("jess"));
        let forged = v.replacen(
            &URL_SAFE_NO_PAD.encode("jess"),
            &URL_SAFE_NO_PAD.encode("boss"),
            1,
        );
        assert_eq!(k.name_in(&forged), None);
        let other = Keys(hmac::Key::new(hmac::HMAC_SHA256, b"other"));
        assert_eq!(other.name_in(&v), None);
        assert_eq!(k.name_in("garbage"), None);
    }

    #[test]
    fn an_expired_session_is_refused() {
        let k = keys();
        let body = format!("{}.{}", URL_SAFE_NO_PAD.encode("jess"), now_ms() - 1);
        let value = format!("{body}.{}", k.sign(&format!("session.{body}")));
        assert_eq!(k.name_in(&value), None);
    }

    #[test]
    fn forms_must_come_from_this_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!same_origin(&h), "neither Origin nor Sec-Fetch-Site");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&h));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; hoist_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(valid_name("  jess "), Some("jess".into()));
        assert_eq!(valid_name(""), None);
        assert_eq!(valid_name("a\nb"), None);
        assert_eq!(valid_name(&"x".repeat(65)), None);
    }
}
