//! The limits that only show on a real connection: a slow request head or body, idle keep-alive
//! connections, the bound on open connections, and the per-client rate limit, measured.

use std::time::{Duration, Instant};

use hoist_cli::stack::{JIRA_TOKEN_HEADER, StackOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::stack_with;

fn quick() -> StackOptions {
    StackOptions {
        auto_build: false,
        ..StackOptions::default()
    }
}

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection; answers what it sent and how long it took.
async fn read_until_closed(conn: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open for {limit:?}"),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_slow_request_head_or_an_idle_connection_is_closed() {
    let s = stack_with(quick(), |c| c.server.limits.header_timeout_secs = 1).await;
    // Half a request head, then silence (slowloris).
    let mut slow = TcpStream::connect(addr(&s.url)).await.unwrap();
    slow.write_all(b"POST /hooks/jira HTTP/1.1\r\nHost: hoist\r\nX-Slow: ")
        .await
        .unwrap();
    // Connected and silent.
    let mut idle = TcpStream::connect(addr(&s.url)).await.unwrap();
    // One complete request, then an idle keep-alive connection.
    let mut kept = TcpStream::connect(addr(&s.url)).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: hoist\r\n\r\n")
        .await
        .unwrap();
    let limit = Duration::from_secs(5);
    let ((slow_got, slow_after), (_, idle_after), (kept_got, kept_after)) = tokio::join!(
        read_until_closed(&mut slow, limit),
        read_until_closed(&mut idle, limit),
        read_until_closed(&mut kept, limit)
    );
    println!(
        "header timeout 1 s: slow head closed after {slow_after:?}, silent connection after {idle_after:?}, idle keep-alive after {kept_after:?}"
    );
    assert!(slow_got.is_empty(), "no answer to half a head: {slow_got}");
    assert!(kept_got.starts_with("HTTP/1.1 200"), "{kept_got}");
    for t in [slow_after, idle_after, kept_after] {
        assert!(
            t > Duration::from_millis(800) && t < Duration::from_secs(3),
            "{t:?}"
        );
    }
    s.finish().await.unwrap();
}

#[tokio::test]
async fn an_oversized_request_head_is_refused() {
    let s = stack_with(quick(), |_| {}).await;
    let mut conn = TcpStream::connect(addr(&s.url)).await.unwrap();
    let big = "a".repeat(hoist::http::MAX_HEAD_BYTES + 1024);
    let head = format!("GET /healthz HTTP/1.1\r\nHost: hoist\r\nX-Big: {big}\r\n\r\n");
    // The server may close before it has read everything: a failed write is fine.
    let _ = conn.write_all(head.as_bytes()).await;
    let (got, _) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 431"), "{got}");
    s.finish().await.unwrap();
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408() {
    let s = stack_with(quick(), |c| c.server.limits.body_timeout_secs = 1).await;
    let token = s.options.jira_token.clone();
    let mut conn = TcpStream::connect(addr(&s.url)).await.unwrap();
    let head = format!(
        "POST /hooks/jira HTTP/1.1\r\nHost: hoist\r\nContent-Type: application/json\r\n{JIRA_TOKEN_HEADER}: {token}\r\nContent-Length: 100\r\n\r\n{{\"repo\": "
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (got, after) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    println!("body timeout 1 s: answered after {after:?}");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("body_timeout"), "{got}");
    assert!(after < Duration::from_secs(3));
    s.finish().await.unwrap();
}

#[tokio::test]
async fn connections_beyond_the_bound_wait_their_turn() {
    let s = stack_with(quick(), |c| {
        c.server.limits.max_connections = 2;
        c.server.limits.header_timeout_secs = 1;
    })
    .await;
    let mut first = TcpStream::connect(addr(&s.url)).await.unwrap();
    let mut second = TcpStream::connect(addr(&s.url)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let mut third = TcpStream::connect(addr(&s.url)).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: hoist\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (got, _) = read_until_closed(&mut third, Duration::from_secs(5)).await;
    let waited = started.elapsed();
    println!("max_connections 2: a third connection was served after {waited:?}");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // Served only once the header timeout closed one of the two silent connections.
    assert!(waited >= Duration::from_millis(700), "{waited:?}");
    let _ = (first.shutdown().await, second.shutdown().await);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn the_rate_limit_allows_a_burst_then_the_rate_and_says_when_to_retry() {
    let s = stack_with(quick(), |_| {}).await;
    let limits = s.hoist.config.server.limits.clone();
    let client = reqwest::Client::new();
    let send = || async {
        let r = client
            .post(format!("{}/hooks/jira", s.url))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), retry)
    };
    let started = Instant::now();
    let mut first_429 = None;
    let mut retry_after = None;
    // Sequential requests on a loaded machine are slow enough for the bucket to refill a little
    // meanwhile: keep going until the limit answers (the bound below accounts for the refill).
    for i in 0..(limits.rate_burst as usize + 5_000) {
        let (status, retry) = send().await;
        match status {
            401 => {}
            429 => {
                first_429 = Some(i);
                retry_after = retry;
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let burst_ms = started.elapsed().as_millis();
    let first_429 = first_429.expect("the burst was limited");
    let retry_after: u64 = retry_after.unwrap().parse().unwrap();
    // Health checks are never limited.
    let health = client.get(format!("{}/healthz", s.url)).send().await;
    assert_eq!(health.unwrap().status().as_u16(), 200);
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let mut allowed_after_wait = 0;
    let again = Instant::now();
    while allowed_after_wait < 500 && send().await.0 == 401 {
        allowed_after_wait += 1;
    }
    let again_s = again.elapsed().as_secs_f64();
    println!(
        "rate limit {}/s, burst {}: {first_429} requests allowed in {burst_ms} ms, then 429 with Retry-After {retry_after}; {allowed_after_wait} allowed after waiting {retry_after} s",
        limits.rate_per_second, limits.rate_burst
    );
    // What the limiter may allow: the burst, plus the rate over the time the requests took.
    let rate = f64::from(limits.rate_per_second);
    let burst = limits.rate_burst as usize;
    let most = burst + (rate * (burst_ms as f64 / 1000.0 + 1.0)) as usize;
    assert!(first_429 >= burst && first_429 <= most, "{first_429}");
    let most_after = (rate * (retry_after as f64 + again_s + 1.0)) as usize;
    assert!(
        allowed_after_wait >= (rate / 2.0) as usize && allowed_after_wait <= most_after,
        "{allowed_after_wait}"
    );
    s.finish().await.unwrap();
}
