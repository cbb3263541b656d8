//! Signature headers: the input is `header \n body`. No header may panic a check, none but the true
//! signature may pass, and the true signature always passes.
#![no_main]

use hoist::config::Secret;
use hoist::sources::signature::{SignatureFormat, sign_hex, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (header, body) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let secret = Secret::new("fuzz-secret");
    let truth = sign_hex(&secret, body);
    let hub = SignatureFormat::Hub("X-Hub-Signature-256".into());
    let text = String::from_utf8_lossy(header);
    let names_truth = text.to_ascii_lowercase().contains(&truth);
    if verify(&hub, header, body, &secret).is_ok()
        || verify(&SignatureFormat::CircleCi, header, body, &secret).is_ok()
    {
        assert!(names_truth, "a forged signature passed: {text}");
    }
    assert!(verify(&hub, format!("sha256={truth}").as_bytes(), body, &secret).is_ok());
    assert!(
        verify(
            &SignatureFormat::CircleCi,
            format!("v0=x,v1={truth}").as_bytes(),
            body,
            &secret
        )
        .is_ok()
    );
});
