//! Promotion (SPEC 13): Hoist's own time from a signed Slack click on "Approve prod" to its
//! outbound call creating the prod tag in Bitbucket. Each release goes stg -> qa by itself
//! (`auto`); then an approver clicks, signed as Slack signs. The time runs from just before the
//! click is sent to the Bitbucket simulator receiving `POST .../refs/tags` for the prod tag (one
//! clock): it holds the signature check, the approval and the promotion written, the promote
//! job's claim, and the tag call's sending. Releases one at a time, so each is timed alone.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use hoist_cli::stack::{APPROVERS, Stack, StackOptions, road};
use hoist_sim::spinnaker::Outcome;

/// Prints one line and the `RESULT click.{backend}.*` lines.
pub async fn click(
    backend: &str,
    store_url: Option<String>,
    releases: usize,
) -> anyhow::Result<()> {
    let options = StackOptions {
        store_url,
        poll_ms: 250,
        ..StackOptions::default()
    };
    let stack = Stack::start_with(options, |c| {
        road(c);
        c.server.limits.rate_per_second = 0;
    })
    .await?;
    for source in ["payments-api-stg", "payments-api-qa", "payments-api-prod"] {
        stack.gate.set_outcome(
            source,
            Outcome::Succeed {
                pipelines: vec!["deploy".into()],
                after: Duration::from_millis(50),
            },
        );
    }
    let within = Duration::from_secs(60);
    let mut own = Vec::new();
    for i in 0..releases {
        let issue = format!("CLK-{i}");
        let commit = stack.commit(&format!("{issue}: a change"));
        let (status, body) = stack.assign(&issue, &commit).await?;
        ensure!(status == 202, "the ticket answered {status}: {body}");
        let id = body["release"].as_i64().context("no release id")?;
        let value = format!("{id}/prod");
        let deadline = Instant::now() + within;
        let button = loop {
            if let Some(b) = stack.slack.buttons().into_iter().find(|b| b.value == value) {
                break b;
            }
            ensure!(Instant::now() < deadline, "no prod button for release {id}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        stack.settle(within).await?;
        let sent = Instant::now();
        let (status, _) = stack
            .click(&button, APPROVERS[0], Default::default())
            .await?;
        ensure!(status == 200, "the click answered {status}");
        let prod = stack.wait_deployment(id, "prod", within).await?;
        let tag = format!("\"{}\"", prod.tag);
        let created = stack
            .bitbucket
            .requests()
            .into_iter()
            .find(|r| r.method == "POST" && r.path.ends_with("/refs/tags") && r.body.contains(&tag))
            .context("no tag creation for the prod tag")?;
        own.push(created.at.saturating_duration_since(sent));
    }
    stack.stop().await?;
    own.sort();
    let p50 = own[own.len() / 2];
    let max = *own.last().unwrap_or(&Duration::ZERO);
    println!(
        "{backend:<10} {:>9} {:>13.2} ms {:>10.2} ms",
        releases,
        p50.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    let k = |f: &str| format!("RESULT click.{backend}.{f}");
    println!("{} {}", k("releases"), releases);
    println!("{} {}", k("own_p50_us"), p50.as_micros());
    println!("{} {}", k("own_max_us"), max.as_micros());
    Ok(())
}

pub fn header() {
    println!(
        "{:<10} {:>9} {:>16} {:>13}",
        "backend", "releases", "own p50", "own max"
    );
}
