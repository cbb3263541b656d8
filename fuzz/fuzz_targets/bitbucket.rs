//! Bitbucket `repo:push` bodies: no input may panic the parser, and every tag it returns carries a
//! full 40-hex commit hash.
#![no_main]

use hoist::sources::bitbucket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(push) = bitbucket::parse_push(data) {
        for tag in &push.tags {
            assert_eq!(tag.commit.len(), 40);
            assert!(tag.commit.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
});
