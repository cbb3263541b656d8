//! HMAC-SHA256 over a webhook body, as CircleCI, Jira, Bitbucket and Slack sign what they send,
//! and the Base64 of HTTP Basic credentials. The simulators sign on their own so that they share
//! no code with the Hoist that checks them.

use ring::hmac;

/// Hex HMAC-SHA256 of `body` under `secret`.
pub(crate) fn hmac_sha256_hex(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(hmac::sign(&key, body).as_ref())
}

/// Standard Base64 with padding (RFC 4648), as HTTP Basic credentials are written.
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{base64, hmac_sha256_hex};

    /// The samples of CircleCI's and GitHub's webhook documentation.
    #[test]
    fn the_vendors_published_vectors() {
        assert_eq!(
            hmac_sha256_hex("secret", b"hello world"),
            "734cc62f32841568f45715aeb9f4d7891324e6d948e4c6c60c0621cdac48623a"
        );
        assert_eq!(
            hmac_sha256_hex("It's a Secret to Everybody", b"Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            base64(b"me@acme.example:tok"),
            "bWVAYWNtZS5leGFtcGxlOnRvaw=="
        );
    }
}
