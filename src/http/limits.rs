//! Request guards in front of every hook and API route: a per-client rate limit (429 with
//! `Retry-After`), a bound on requests in flight (503 with `Retry-After`), and a timeout on the
//! whole request (503). Body size and read time are checked where the body is read
//! (`request::read_body`); the request head's read time by the server (`server.rs`).
//!
//! The rate limit is keyed by the *resolved* client address (behind trusted proxies, the client's,
//! not the proxy's), and an IPv6 client by its /64: one host usually holds a whole /64, so keying
//! by full address would let it mint a fresh budget per request.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use tokio::sync::Semaphore;

use super::error::ApiError;
use super::request::{client_ip, peer_ip};
use crate::config::LimitsConfig;

/// Forget idle clients' rate state every this many requests, so the table stays small.
const RETAIN_EVERY: u64 = 4096;

/// The shared state of the guards: one per process.
pub struct Guards {
    limits: LimitsConfig,
    trusted: Vec<IpNet>,
    rate: Option<DefaultKeyedRateLimiter<IpAddr>>,
    in_flight: Arc<Semaphore>,
    checked: AtomicU64,
}

impl Guards {
    pub fn new(limits: &LimitsConfig, trusted: &[IpNet]) -> Self {
        let rate = NonZeroU32::new(limits.rate_per_second).map(|per_second| {
            let burst = NonZeroU32::new(limits.rate_burst).unwrap_or(per_second);
            RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))
        });
        Self {
            limits: limits.clone(),
            trusted: trusted.to_vec(),
            rate,
            in_flight: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            checked: AtomicU64::new(0),
        }
    }

    /// 429 with the seconds until this client may send again, or `Ok`.
    pub fn check_rate(&self, client: IpAddr) -> Result<(), ApiError> {
        let Some(rate) = &self.rate else {
            return Ok(());
        };
        if self.checked.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            rate.retain_recent();
        }
        rate.check_key(&rate_key(client)).map_err(|not_until| {
            let wait = not_until.wait_time_from(rate.clock().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::debug!(client = %client, retry_after_s = secs, "rate limited");
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "more than {} requests at once or {} per second from {client}: retry later",
                    self.limits.rate_burst, self.limits.rate_per_second
                ),
            );
            e.retry_after = Some(secs.max(1));
            e
        })
    }

    /// Requests being handled now (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.limits.max_concurrent_requests - self.in_flight.available_permits()
    }

    /// Clients whose rate state Hoist holds (for tests and metrics).
    pub fn tracked_clients(&self) -> usize {
        self.rate.as_ref().map_or(0, |r| r.len())
    }
}

/// What the rate limit counts a client as: its IPv4 address, or its IPv6 /64.
pub fn rate_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// The middleware: rate limit, then a slot among the requests in flight, then the timeout.
pub async fn guard(State(guards): State<Arc<Guards>>, req: Request, next: Next) -> Response {
    let client = client_ip(req.headers(), peer_ip(req.extensions()), &guards.trusted);
    if let Err(e) = guards.check_rate(client) {
        return e.into_response();
    }
    let Ok(_slot) = guards.in_flight.clone().try_acquire_owned() else {
        tracing::warn!(
            max = guards.limits.max_concurrent_requests,
            "too many requests in flight; answering 503"
        );
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "Hoist is handling {} requests already: retry shortly",
                guards.limits.max_concurrent_requests
            ),
        );
        e.retry_after = Some(1);
        return e.into_response();
    };
    let timeout = guards.limits.request_timeout();
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout_s = timeout.as_secs(),
                "request timed out; answering 503"
            );
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "Hoist could not answer within {} s: retry (a redelivery is harmless)",
                    timeout.as_secs()
                ),
            );
            e.retry_after = Some(5);
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(rate_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(rate_key(ip("2001:db8:1:2::ffff")), ip("2001:db8:1:2::"));
        assert_eq!(rate_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(rate_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn a_burst_then_the_rate() {
        let limits = LimitsConfig {
            rate_per_second: 2,
            rate_burst: 3,
            ..LimitsConfig::default()
        };
        let g = Guards::new(&limits, &[]);
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert!(g.check_rate(a).is_ok());
        }
        let e = g.check_rate(a).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code, e.retry_after),
            (429, "rate_limited", Some(1))
        );
        // Another client has its own budget.
        assert!(g.check_rate(ip("192.0.2.2")).is_ok());
        assert_eq!(g.tracked_clients(), 2);
        let off = Guards::new(
            &LimitsConfig {
                rate_per_second: 0,
                ..LimitsConfig::default()
            },
            &[],
        );
        assert!((0..1000).all(|_| off.check_rate(a).is_ok()));
    }

    #[tokio::test]
    async fn a_request_past_its_timeout_answers_503() {
        let limits = LimitsConfig {
            request_timeout_secs: 1,
            ..LimitsConfig::default()
        };
        let guards = Arc::new(Guards::new(&limits, &[]));
        let app = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route_layer(axum::middleware::from_fn_with_state(guards, guard));
        let started = std::time::Instant::now();
        let resp = app
            .oneshot(Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "5");
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
    }
}
