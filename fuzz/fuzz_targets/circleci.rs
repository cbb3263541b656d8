//! CircleCI `job-completed` / `workflow-completed` bodies: no input may panic the parser.
#![no_main]

use hoist::sources::circleci;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = circleci::parse(data, Some("job-completed")) {
        let _ = event.status.as_deref().map(hoist::core::build::build_outcome);
    }
    let _ = circleci::parse(data, None);
});
