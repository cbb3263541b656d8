//! HMAC-SHA256 over a webhook body, as CircleCI, Jira and Bitbucket sign what they send. The
//! simulators sign on their own so that they share no code with the Hoist that checks them.

use ring::hmac;

/// Hex HMAC-SHA256 of `body` under `secret`.
pub(crate) fn hmac_sha256_hex(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(hmac::sign(&key, body).as_ref())
}

#[cfg(test)]
mod tests {
    use super::hmac_sha256_hex;

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
}
