//! Load: the pool of signed webhooks, the constant-rate generator, and starting servers.

use std::io::{BufRead, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hoist_sim::circleci::{CircleCiSim, CircleCiSimConfig, PayloadShape, sign};
use http_body_util::{BodyExt, Full};

// ---------------------------------------------------------------------------------------------
// pool

pub fn pool(
    out: &std::path::Path,
    parts: usize,
    count: usize,
    secret: &str,
    slug: &str,
    job: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(parts > 0, "--parts must be at least 1");
    let (org, name) = slug
        .rsplit_once('/')
        .map(|(a, b)| (a.rsplit('/').next().unwrap_or(a), b))
        .context("--slug looks like bitbucket/acme/payments-api")?;
    let sim = CircleCiSim::new(CircleCiSimConfig {
        hoist_url: "http://127.0.0.1:9/hooks/circleci".into(),
        secret: secret.into(),
        project_slug: slug.into(),
        project_name: name.into(),
        org_name: org.into(),
        vcs_provider: "bitbucket".into(),
        repo_url: format!("https://bitbucket.org/{org}/{name}"),
        job_name: job.into(),
        workflow_name: "build-and-deploy".into(),
        delay: Duration::ZERO,
        shape: PayloadShape::Vcs,
        include_tag: false,
    });
    const ID: &str = "@@ID@@";
    const AT: &str = "@@AT@@";
    const COMMIT: &str = "@@COMMIT@@";
    let (event, mut payload) = sim
        .build_events(None, COMMIT, "success")
        .into_iter()
        .next()
        .context("the simulator builds job-completed first")?;
    anyhow::ensure!(event == "job-completed", "unexpected first event {event}");
    payload["id"] = serde_json::json!(ID);
    payload["happened_at"] = serde_json::json!(AT);
    let template = serde_json::to_string(&payload)?;
    let mut files = (0..parts)
        .map(|i| {
            let path = format!("{}.{i}", out.display());
            std::fs::File::create(&path)
                .map(|f| BufWriter::with_capacity(1 << 20, f))
                .with_context(|| format!("create {path}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut bytes = 0usize;
    // Events as CircleCI stamps them (`happened_at`, in milliseconds), each 50 us after the one
    // before: a stream of 20,000 a second, read in about that order.
    let start = chrono::Utc::now();
    for i in 0..count {
        let at = start + chrono::Duration::microseconds(50 * i as i64);
        let body = template
            .replace(ID, &uuid::Uuid::new_v4().to_string())
            .replace(AT, &at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .replace(COMMIT, &hoist_sim::bitbucket::random_hash());
        let signature = sign(secret, body.as_bytes());
        let hex = signature.trim_start_matches("v1=");
        let f = &mut files[i % parts];
        writeln!(f, "{hex}\t{body}")?;
        bytes += body.len();
    }
    for mut f in files {
        f.flush()?;
    }
    println!(
        "{count} bodies of {} bytes on average",
        bytes / count.max(1)
    );
    Ok(())
}

/// Reads up to `n` requests from the pool, round-robin over its parts (wrapping around).
fn read_pool(
    prefix: &std::path::Path,
    parts: usize,
    n: usize,
) -> anyhow::Result<(Vec<(String, Bytes)>, bool)> {
    let mut readers = (0..parts)
        .map(|i| {
            let path = format!("{}.{i}", prefix.display());
            std::fs::File::open(&path)
                .map(|f| std::io::BufReader::with_capacity(1 << 20, f).lines())
                .with_context(|| format!("open {path}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(n);
    let mut exhausted = vec![false; parts];
    while out.len() < n && exhausted.iter().any(|e| !e) {
        for (i, r) in readers.iter_mut().enumerate() {
            if out.len() >= n || exhausted[i] {
                continue;
            }
            match r.next() {
                Some(line) => {
                    let line = line?;
                    let (sig, body) = line.split_once('\t').context("pool line without a tab")?;
                    out.push((sig.to_string(), Bytes::from(body.to_string())));
                }
                None => exhausted[i] = true,
            }
        }
    }
    anyhow::ensure!(!out.is_empty(), "empty pool {}", prefix.display());
    let wrapped = out.len() < n;
    let have = out.len();
    for i in 0..(n - have) {
        let again = out[i % have].clone();
        out.push(again);
    }
    Ok((out, wrapped))
}

// ---------------------------------------------------------------------------------------------
// pace

struct Due {
    index: usize,
    released: Instant,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    non_2xx: u64,
    errors: u64,
    last: Option<Instant>,
}

pub fn pace(
    url: &str,
    pool: &std::path::Path,
    parts: usize,
    rate: f64,
    duration: f64,
    connections: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        rate > 0.0 && duration > 0.0,
        "rate and duration must be > 0"
    );
    let total = (rate * duration).round().max(1.0) as usize;
    let (requests, wrapped) = read_pool(pool, parts, total)?;
    let url: url::Url = url.parse().context("--url")?;
    let addr: SocketAddr = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port_or_known_default().unwrap_or(80)
    )
    .parse()
    .context("--url must name an IP address")?;
    let authority = format!("{}:{}", addr.ip(), addr.port());
    let path = url.path().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (tally, elapsed) = rt.block_on(async move {
        let requests = Arc::new(requests);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Due>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let mut tasks = tokio::task::JoinSet::new();
        let (connected, mut all_connected) = tokio::sync::mpsc::channel::<()>(connections);
        for _ in 0..connections {
            let rx = rx.clone();
            let requests = requests.clone();
            let connected = connected.clone();
            let (authority, path) = (authority.clone(), path.clone());
            tasks.spawn(async move {
                let sender = connect(addr).await.ok();
                let _ = connected.send(()).await;
                connection(sender, addr, &authority, &path, rx, requests).await
            });
        }
        for _ in 0..connections {
            all_connected.recv().await;
        }
        // Released from a thread of its own, which sleeps until the next request is due (at
        // least 100 us): tokio's timer ticks in whole milliseconds, which would send bursts.
        let start = Instant::now();
        std::thread::spawn(move || {
            let mut released = 0usize;
            while released < total {
                let now = Instant::now();
                let due = (((now - start).as_secs_f64() * rate) as usize).min(total);
                while released < due {
                    let _ = tx.send(Due {
                        index: released,
                        released: now,
                    });
                    released += 1;
                }
                let next = start + Duration::from_secs_f64((released + 1) as f64 / rate);
                let wait = next.saturating_duration_since(Instant::now());
                std::thread::sleep(wait.max(Duration::from_micros(100)));
            }
        });
        let mut tally = Tally::default();
        let deadline = tokio::time::sleep(Duration::from_secs_f64(duration + 60.0));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                joined = tasks.join_next() => match joined {
                    Some(Ok(t)) => {
                        tally.latencies_us.extend(t.latencies_us);
                        tally.non_2xx += t.non_2xx;
                        tally.errors += t.errors;
                        tally.last = tally.last.max(t.last);
                    }
                    Some(Err(e)) => anyhow::bail!("connection task: {e}"),
                    None => break,
                },
                _ = &mut deadline => anyhow::bail!("answers still missing 60 s after the last request"),
            }
        }
        let elapsed = tally.last.map(|l| l - start).unwrap_or_default();
        Ok::<_, anyhow::Error>((tally, elapsed))
    })?;
    let mut lat = tally.latencies_us;
    lat.sort_unstable();
    let pct = |p: f64| -> u32 {
        if lat.is_empty() {
            return 0;
        }
        let i = ((p / 100.0) * lat.len() as f64).ceil() as usize;
        lat[i.clamp(1, lat.len()) - 1]
    };
    let answered = lat.len() as u64;
    println!(
        "RESULT requests={answered} rps={:.1} offered_rps={rate:.1} p50_us={} p99_us={} max_us={} non2xx={} errors={} wrapped={}",
        answered as f64 / elapsed.as_secs_f64().max(1e-9),
        pct(50.0),
        pct(99.0),
        lat.last().copied().unwrap_or(0),
        tally.non_2xx,
        tally.errors,
        u8::from(wrapped),
    );
    Ok(())
}

type Rx = Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Due>>>;

/// One keep-alive connection (opened before the clock starts): takes the next due request, sends it, records its latency;
/// reconnects after an error.
async fn connection(
    mut sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
    addr: SocketAddr,
    authority: &str,
    path: &str,
    rx: Rx,
    requests: Arc<Vec<(String, Bytes)>>,
) -> Tally {
    let mut tally = Tally::default();
    loop {
        let Some(due) = rx.lock().await.recv().await else {
            return tally;
        };
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            sender = connect(addr).await.ok();
        }
        let Some(s) = sender.as_mut() else {
            tally.errors += 1;
            continue;
        };
        let (sig, body) = &requests[due.index];
        let request = hyper::Request::post(path)
            .header("host", authority)
            .header("content-type", "application/json")
            .header("circleci-event-type", "job-completed")
            .header("circleci-signature", format!("v1={sig}"))
            .header("x-signature", sig.as_str())
            .body(Full::new(body.clone()))
            .expect("a valid request");
        let answer = async {
            s.ready().await?;
            let response = s.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        };
        match answer.await {
            Ok(status) => {
                let now = Instant::now();
                tally
                    .latencies_us
                    .push((now - due.released).as_micros().min(u32::MAX as u128) as u32);
                tally.last = Some(now);
                if !status.is_success() {
                    tally.non_2xx += 1;
                }
            }
            Err(_) => {
                tally.errors += 1;
                sender = None;
            }
        }
    }
}

async fn connect(
    addr: SocketAddr,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

// ---------------------------------------------------------------------------------------------
// spawn

pub fn spawn(
    ready: &str,
    log: &std::path::Path,
    pidfile: &std::path::Path,
    timeout: f64,
    command: &[String],
) -> anyhow::Result<()> {
    let url: url::Url = ready.parse().context("--ready")?;
    let addr: SocketAddr = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port_or_known_default().unwrap_or(80)
    )
    .parse()
    .context("--ready must name an IP address")?;
    let out = std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
    let err = out.try_clone()?;
    let (program, args) = command.split_first().context("no command")?;
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("start {program}"))?;
    std::fs::write(pidfile, child.id().to_string())?;
    let deadline = started + Duration::from_secs_f64(timeout);
    loop {
        if health(addr, url.path()) == Some(200) {
            break;
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "{program} exited ({status}) before {ready} answered; see {}",
                log.display()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("{ready} did not answer 200 within {timeout} s");
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    println!("ready_ms {:.1}", started.elapsed().as_secs_f64() * 1000.0);
    // The server keeps running; the harness stops it by its pid.
    Ok(())
}

/// The status of `GET path`, or `None` if nothing answers yet.
fn health(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
