//! `[server.limits]`: how much a caller may send, how fast, and for how long.
//!
//! Every limit has a default that suits a webhook relay (small JSON bodies from a few senders);
//! [`LimitsConfig::check`] refuses values that would disable a protection by accident.

use serde::Deserialize;

/// Largest accepted webhook body by default (`server.limits.max_body_bytes`): SPEC 4.1's 1 MiB.
pub const MAX_BODY: usize = 1024 * 1024;
/// The largest `?wait` a hook accepts, in seconds; the request timeout must leave room for it.
pub const MAX_WAIT_SECS: u64 = 25;
/// serde_json refuses to nest deeper than this itself; a configured depth cannot exceed it.
pub const JSON_DEPTH_CEILING: usize = 128;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct LimitsConfig {
    /// Largest request body (413 beyond). SPEC 4.1: 1 MiB.
    pub max_body_bytes: usize,
    /// Deepest nesting of arrays and objects in a JSON body (400 beyond).
    pub json_max_depth: usize,
    /// Most JSON items (containers, elements, members) in a body (400 beyond), so that a body
    /// within the size limit cannot expand into hundreds of megabytes of parsed values.
    pub json_max_items: usize,
    /// Requests per second one client address may send on average (IPv6: per /64); 0 turns the
    /// rate limit off.
    pub rate_per_second: u32,
    /// Requests one client address may send at once before the average applies (429 beyond).
    pub rate_burst: u32,
    /// Requests handled at once by this process (503 beyond, with `Retry-After`).
    pub max_concurrent_requests: usize,
    /// Open connections; beyond, new connections wait in the kernel's accept queue.
    pub max_connections: usize,
    /// A client must send its whole request head within this (else the connection is closed);
    /// this also closes idle keep-alive connections.
    pub header_timeout_secs: u64,
    /// A client must send its whole body within this (408 beyond).
    pub body_timeout_secs: u64,
    /// A whole request, `?wait` included, must be answered within this (503 beyond).
    pub request_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: MAX_BODY,
            json_max_depth: 64,
            json_max_items: 100_000,
            rate_per_second: 20,
            rate_burst: 200,
            max_concurrent_requests: 128,
            max_connections: 1024,
            header_timeout_secs: 10,
            body_timeout_secs: 15,
            request_timeout_secs: 35,
        }
    }
}

impl LimitsConfig {
    /// Every problem, as (key under `server.limits`, message).
    pub fn check(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        let mut at_least = |key: &'static str, value: u64, min: u64, why: &str| {
            if value < min {
                p.push((key, format!("must be at least {min}{why}")));
            }
        };
        at_least(
            "max_body_bytes",
            self.max_body_bytes as u64,
            1024,
            " (webhook bodies are a few KiB to a few hundred KiB)",
        );
        at_least("json_max_depth", self.json_max_depth as u64, 8, "");
        at_least("json_max_items", self.json_max_items as u64, 100, "");
        at_least(
            "rate_burst",
            u64::from(self.rate_burst),
            u64::from(self.rate_per_second > 0),
            " while rate_per_second is set",
        );
        at_least(
            "max_concurrent_requests",
            self.max_concurrent_requests as u64,
            1,
            "",
        );
        at_least("max_connections", self.max_connections as u64, 1, "");
        at_least("header_timeout_secs", self.header_timeout_secs, 1, "");
        at_least("body_timeout_secs", self.body_timeout_secs, 1, "");
        at_least(
            "request_timeout_secs",
            self.request_timeout_secs,
            MAX_WAIT_SECS + 5,
            " so that `?wait` (up to 25 s) is never cut short",
        );
        if self.json_max_depth > JSON_DEPTH_CEILING {
            p.push((
                "json_max_depth",
                format!("must be at most {JSON_DEPTH_CEILING} (the JSON parser's own limit)"),
            ));
        }
        p
    }

    pub fn header_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.header_timeout_secs)
    }

    pub fn body_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.body_timeout_secs)
    }

    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.request_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_their_own_check() {
        assert_eq!(LimitsConfig::default().check(), vec![]);
    }

    #[test]
    fn values_that_disable_a_protection_are_refused() {
        let l = LimitsConfig {
            max_body_bytes: 10,
            json_max_depth: 500,
            rate_burst: 0,
            max_concurrent_requests: 0,
            header_timeout_secs: 0,
            request_timeout_secs: 10,
            ..LimitsConfig::default()
        };
        let keys: Vec<_> = l.check().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "max_body_bytes",
                "rate_burst",
                "max_concurrent_requests",
                "header_timeout_secs",
                "request_timeout_secs",
                "json_max_depth"
            ]
        );
        let off = LimitsConfig {
            rate_per_second: 0,
            rate_burst: 0,
            ..LimitsConfig::default()
        };
        assert_eq!(off.check(), vec![], "a rate limit can be turned off");
    }
}
