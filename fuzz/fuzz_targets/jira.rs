//! Jira bodies (Automation and native `jira:issue_updated`), after the JSON limits the HTTP layer
//! applies: no input may panic, overflow the stack or allocate without bound.
#![no_main]

use hoist::config::{AutomationFields, IssueFields};
use hoist::sources::{JsonLimits, jira};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = JsonLimits {
        max_depth: 64,
        max_items: 100_000,
    };
    let _ = limits.check(data);
    let issue_fields = IssueFields {
        repo: Some("/fields/customfield_10050".into()),
        commit: Some("/fields/customfield_10051".into()),
        env: Some("/fields/env".into()),
    };
    let _ = jira::parse(data, &AutomationFields::default(), &issue_fields);
});
