//! Deploy following (SPEC 12), on the Stack with Spinnaker's production schedule (`poll_min_ms`
//! 1000, `poll_max_secs` 30) and the worker's production poll (250 ms):
//!
//! - Gate calls per release: `n` releases go from ticket to trigger 0.5 s apart; each trigger starts
//!   one pipeline that succeeds `deploy` later (60 s in the full run). A release's calls are the
//!   GETs naming its event (the search) or its execution (`/pipelines/{id}`).
//! - Hoist's own time from Gate's answer saying `SUCCEEDED` (the simulator notes when it first
//!   answered a final status) to Slack receiving the `deployed` message in the release's thread
//!   (the Slack simulator's `ts`, microseconds of the same clock). It holds the store writes of
//!   the look, queuing the notice, and the notice's job and call.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use hoist::domain::ReleaseStatus;
use hoist_cli::stack::{Stack, StackOptions};
use hoist_sim::spinnaker::Outcome;

/// Between two tickets.
const SPACING: Duration = Duration::from_millis(500);

/// Prints one line and the `RESULT follow.{backend}.*` lines.
pub async fn follow(
    backend: &str,
    store_url: Option<String>,
    deploy: Duration,
    releases: usize,
) -> anyhow::Result<()> {
    let options = StackOptions {
        store_url,
        poll_ms: 250,
        deploy_timeout_secs: deploy.as_secs() * 2 + 60,
        ..StackOptions::default()
    };
    let stack = Stack::start_with(options, |c| {
        c.server.limits.rate_per_second = 0;
        let sp = c.spinnaker.as_mut().expect("the stack has a Gate");
        sp.poll_min_ms = 1_000;
        sp.poll_max_secs = 30;
        sp.start_timeout_secs = 120;
    })
    .await?;
    stack.gate.set_outcome(
        "payments-api-stg",
        Outcome::Succeed {
            pipelines: vec!["deploy-staging".into()],
            after: deploy,
        },
    );
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..releases {
        // Apart, so that each deploy's end is timed alone rather than queued behind the others.
        if i > 0 {
            tokio::time::sleep(SPACING).await;
        }
        let issue = format!("FOL-{i}");
        let commit = stack.commit(&format!("{issue}: a change"));
        let (status, body) = stack.assign(&issue, &commit).await?;
        ensure!(status == 202, "the ticket answered {status}: {body}");
        ids.push(body["release"].as_i64().context("no release id")?);
    }
    let wait = deploy + Duration::from_secs(90) + SPACING * releases as u32;
    let mut done = Vec::new();
    for id in &ids {
        let r = stack
            .wait_release(*id, wait, |r| r.status.is_terminal())
            .await?;
        ensure!(
            r.status == ReleaseStatus::Deployed,
            "release {id}: {:?}",
            r.error
        );
        done.push(r);
    }
    stack.settle(Duration::from_secs(30)).await?;
    let wall = started.elapsed();

    let requests = stack.gate.requests();
    let executions = stack.gate.executions();
    let finals: HashMap<String, i64> = stack.gate.final_answers().into_iter().collect();
    let messages = stack.slack.messages();
    let mut calls = Vec::new();
    let mut own = Vec::new();
    for r in &done {
        let event = r.deploy_event_id.clone().context("no event id")?;
        let execution = executions
            .iter()
            .find(|e| e["trigger"]["eventId"] == event.as_str())
            .context("no execution for the event")?;
        let id = execution["id"].as_str().unwrap_or_default();
        calls.push(
            requests
                .iter()
                .filter(|q| q.method == "GET")
                .filter(|q| {
                    q.path == format!("/pipelines/{id}")
                        || q.query.as_deref().is_some_and(|s| s.contains(&event))
                })
                .count(),
        );
        let answered = *finals.get(id).context("no final answer noted")?;
        let thread = r.slack_ts.clone().context("no Slack thread")?;
        let sent = messages
            .iter()
            .filter(|m| m.thread_ts.as_deref() == Some(thread.as_str()))
            .find(|m| m.text.as_deref().is_some_and(|t| t.contains(" deployed")))
            .context("no deployed message in the thread")?;
        let received = ts_micros(&sent.ts)?;
        own.push(Duration::from_micros((received - answered).max(0) as u64));
    }
    stack.stop().await?;
    calls.sort();
    own.sort();
    let mean = calls.iter().sum::<usize>() as f64 / calls.len().max(1) as f64;
    let p50 = own[own.len() / 2];
    let max = *own.last().unwrap_or(&Duration::ZERO);
    println!(
        "{backend:<10} {:>8} {:>9} {:>10} {:>8.2} {:>8} {:>13.2} ms {:>10.2} ms {:>8.1} s",
        format!("{} s", deploy.as_secs()),
        releases,
        calls[0],
        mean,
        calls[calls.len() - 1],
        p50.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        wall.as_secs_f64()
    );
    let k = |f: &str| format!("RESULT follow.{backend}.{f}");
    println!("{} {}", k("deploy_secs"), deploy.as_secs());
    println!("{} {}", k("releases"), releases);
    println!("{} {:.2}", k("calls_mean"), mean);
    println!("{} {}", k("calls_max"), calls[calls.len() - 1]);
    println!("{} {}", k("own_p50_us"), p50.as_micros());
    println!("{} {}", k("own_max_us"), max.as_micros());
    Ok(())
}

/// Slack's `ts` (`1503435956.000247`) as epoch microseconds.
fn ts_micros(ts: &str) -> anyhow::Result<i64> {
    let (secs, micros) = ts.split_once('.').context("a ts has a dot")?;
    Ok(secs.parse::<i64>()? * 1_000_000 + micros.parse::<i64>()?)
}

pub fn header() {
    println!(
        "{:<10} {:>8} {:>9} {:>10} {:>8} {:>8} {:>16} {:>13} {:>10}",
        "backend", "deploy", "releases", "calls min", "mean", "max", "own p50", "own max", "wall"
    );
}
