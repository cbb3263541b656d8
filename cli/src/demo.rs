//! `hoist demo`: the whole pipeline against built-in simulators, shown step by step.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::stack::{APPROVERS, REPO, Stack, StackOptions, road};
use hoist::domain::{DeploymentStatus, ReleaseStatus};
use hoist_sim::spinnaker::Outcome;

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Keep Hoist and the simulators running afterwards so you can post your own webhooks
    /// (curl lines are printed). Stop with Ctrl-C.
    #[arg(long)]
    pub keep_running: bool,
    /// Play a failed CircleCI build: the release is marked build-failed and nothing is deployed.
    #[arg(long)]
    pub fail_build: bool,
    /// Play a deploy that fails in Spinnaker: the pipeline ends TERMINAL at a stage, and Hoist
    /// reports the failure with the stage and a link to the execution.
    #[arg(long, conflicts_with = "fail_build")]
    pub fail_deploy: bool,
    /// Seconds the simulated Spinnaker pipeline takes.
    #[arg(long, default_value_t = 2.0)]
    pub deploy_secs: f64,
    /// Seconds the simulated CircleCI build takes.
    #[arg(long, default_value_t = 1.5)]
    pub build_secs: f64,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let options = StackOptions {
        build_delay: Duration::from_secs_f64(args.build_secs.clamp(0.0, 60.0)),
        retry_base_ms: 200,
        poll_ms: 50,
        // CircleCI starts watching once the repository's history is in place.
        auto_build: false,
        jira_write: true,
        ..StackOptions::default()
    };
    let started = Instant::now();
    let stack = Stack::start_with(options, road).await?;
    stack.jira_cloud.add_issue("PAY-123", "In Progress");
    if args.fail_build {
        stack.circleci.set_outcome("failed");
    }
    let deploy_time = Duration::from_secs_f64(args.deploy_secs.clamp(0.0, 60.0));
    stack.gate.set_outcome(
        "payments-api-stg",
        if args.fail_deploy {
            Outcome::FailAt {
                pipeline: "deploy-staging".into(),
                stage: "Deploy (Manifest)".into(),
                after: deploy_time,
            }
        } else {
            Outcome::Succeed {
                pipelines: vec!["deploy-staging".into()],
                after: deploy_time,
            }
        },
    );
    for (source, pipeline) in [
        ("payments-api-qa", "deploy-qa"),
        ("payments-api-prod", "deploy-production"),
    ] {
        stack.gate.set_outcome(
            source,
            Outcome::Succeed {
                pipelines: vec![pipeline.into()],
                after: deploy_time,
            },
        );
    }
    println!("Hoist demo: everything runs on this machine; no account anywhere.\n");
    println!(
        "  hoist            {}  (store: {})",
        stack.url, stack.hoist.config.store.url
    );
    println!(
        "  dashboard        {}/  (releases, each one's road, DORA at /dora)",
        stack.url
    );
    println!("  bitbucket (sim)  {}", stack.bitbucket.base_url());
    println!("  spinnaker (sim)  {}", stack.gate.url());
    println!("  slack (sim)      {}", stack.slack.api_url());
    println!("  jira (sim)       {}", stack.jira_cloud.base_url());
    println!(
        "  road             stg (from tickets) -> qa (auto) -> prod (1 approval of {}; Jira issue to Done)",
        APPROVERS.join(", ")
    );
    println!();

    // A repository with history: the highest stg tag is stg1.3.99, so the next is stg1.4.0
    // (patch rollover at 99), and the newest tag by date is not the highest version.
    let old = stack.commit("Initial import");
    for (i, name) in ["stg1.3.97", "stg1.3.98", "stg1.3.99", "stg1.2.40"]
        .iter()
        .enumerate()
    {
        let c = stack.commit(&format!("Release work {i}"));
        stack.bitbucket.add_tag(REPO, name, &c);
    }
    stack.bitbucket.add_tag(REPO, "stgfoo", &old);
    stack.circleci.watch(stack.bitbucket.subscribe());
    let commit = stack.commit("PAY-123: retry card authorisations on timeout");
    println!(
        "  repository acme/{REPO} has tags stg1.2.40, stg1.3.97, stg1.3.98, stg1.3.99, stgfoo"
    );
    println!("  new commit {} is ready for release\n", &commit[..7]);

    let printer = tokio::spawn(show_steps(
        stack.hoist.store.clone(),
        stack.slack.clone(),
        stack.gate.clone(),
        stack.circleci.clone(),
        stack.jira_cloud.clone(),
        started,
    ));
    let (status, body) = stack.assign("PAY-123", &commit).await?;
    line(
        started,
        "jira",
        &format!("PAY-123 assigned -> Automation POST /hooks/jira -> {status} {body}"),
    );
    let id = body["release"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("Hoist did not accept the ticket: {body}"))?;
    let done = stack
        .wait_release(id, Duration::from_secs(60), |r| r.status.is_terminal())
        .await?;
    let prod = if done.status == ReleaseStatus::Deployed {
        Some(to_prod(&stack, id, started).await?)
    } else {
        None
    };
    stack.settle(Duration::from_secs(10)).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    printer.abort();

    println!();
    let detail = hoist::report::detail(&stack.hoist.store, &done).await?;
    crate::print::release_detail(&detail);
    let jira_status = stack.jira_cloud.issue_status("PAY-123").unwrap_or_default();
    let ok = if args.fail_build {
        done.status == ReleaseStatus::BuildFailed && stack.gate.triggers().is_empty()
    } else if args.fail_deploy {
        done.status == ReleaseStatus::DeployFailed && stack.gate.triggers().len() == 1
    } else {
        done.status == ReleaseStatus::Deployed
            && prod.is_some_and(|d| d.status == DeploymentStatus::Deployed)
            && stack.gate.triggers().len() == 3
            && jira_status == "Done"
    };
    println!(
        "\n{} Slack message(s) in the release's thread; {} Spinnaker trigger(s); Jira PAY-123 has {} comment(s) and is in `{jira_status}`.",
        stack.slack.messages().len(),
        stack.gate.triggers().len(),
        stack.jira_cloud.comments("PAY-123").len()
    );

    println!(
        "Dashboard: {url}/releases/{id} (its road through stg, qa and prod), {url}/dora (the DORA figures){}",
        if args.keep_running {
            ""
        } else {
            "; run `hoist demo --keep-running` to look at them in a browser"
        },
        url = stack.url,
        id = done.id,
    );
    if args.keep_running {
        print_curl_lines(&stack);
        tokio::signal::ctrl_c().await?;
    }
    stack.stop().await?;
    if ok {
        println!(
            "demo: {}",
            if args.fail_build {
                "failed build reported, nothing deployed"
            } else if args.fail_deploy {
                "failed deploy reported, with its stage and where to look"
            } else {
                "ticket to production: stg, qa by itself, prod on one approval, Jira moved to Done"
            }
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "demo: the release ended as {} (error: {:?})",
            done.status, done.error
        );
        Ok(ExitCode::FAILURE)
    }
}

/// The release goes on by itself into qa; an approver clicks "Approve prod" in its Slack
/// thread (signed as Slack signs); it goes into prod.
async fn to_prod(
    stack: &Stack,
    id: i64,
    started: Instant,
) -> anyhow::Result<hoist::domain::Deployment> {
    let within = Duration::from_secs(60);
    let qa = stack.wait_deployment(id, "qa", within).await?;
    if qa.status != DeploymentStatus::Deployed {
        return Ok(qa);
    }
    let button = stack.button("Approve prod", within).await?;
    let user = APPROVERS[0];
    let (status, _) = stack.click(&button, user, Default::default()).await?;
    line(
        started,
        "slack",
        &format!(
            "{user} clicks \"{}\" in the release's thread -> signed POST /hooks/slack -> {status}",
            button.text
        ),
    );
    stack.wait_deployment(id, "prod", within).await
}

fn line(started: Instant, who: &str, what: &str) {
    println!(
        "{:>8.3}s  {:<10} {}",
        started.elapsed().as_secs_f64(),
        who,
        what
    );
}

/// Prints Hoist's timeline events, CircleCI's webhooks, Gate's triggers and Slack's messages as
/// they happen.
async fn show_steps(
    store: hoist::store::Store,
    slack: hoist_sim::slack::SlackSim,
    gate: hoist_sim::spinnaker::GateSim,
    circleci: hoist_sim::circleci::CircleCiSim,
    jira: hoist_sim::jira::JiraCloudSim,
    started: Instant,
) {
    let mut last_event = 0;
    let (mut slack_seen, mut gate_seen, mut ci_seen, mut jira_seen) = (0, 0, 0, 0);
    loop {
        if let Ok(events) = store.events_since(last_event).await {
            for (id, release, e) in events {
                last_event = id;
                line(
                    started,
                    "hoist",
                    &format!("release {release} {}: {}", e.step, e.message),
                );
            }
        }
        let sent = circleci.sent();
        for w in sent.iter().skip(ci_seen) {
            line(
                started,
                "circleci",
                &format!(
                    "{} ({}) signed -> POST /hooks/circleci -> {}",
                    w.event_type, w.id, w.status
                ),
            );
        }
        ci_seen = sent.len();
        let triggers = gate.triggers();
        for t in triggers.iter().skip(gate_seen) {
            line(
                started,
                "spinnaker",
                &format!(
                    "POST /webhooks/webhook/{} parameters {} -> eventId {}",
                    t.source, t.parameters, t.event_id
                ),
            );
        }
        gate_seen = triggers.len();
        let messages = slack.messages();
        for m in messages.iter().skip(slack_seen) {
            let thread = if m.thread_ts.is_some() {
                "in thread"
            } else {
                "new thread"
            };
            line(
                started,
                "slack",
                &format!("{thread}: {}", m.text.as_deref().unwrap_or("")),
            );
        }
        slack_seen = messages.len();
        let requests = jira.requests();
        for r in requests
            .iter()
            .skip(jira_seen)
            .filter(|r| r.method == "POST")
        {
            line(started, "jira", &format!("{} {}", r.method, r.path));
        }
        jira_seen = requests.len();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn print_curl_lines(stack: &Stack) {
    let commit = stack.commit("Another change, for you to release");
    println!(
        "\nStill running. Try it yourself (a new commit {commit} is in the simulated repository):\n"
    );
    println!(
        "  curl -s -X POST {}/hooks/jira -H 'Content-Type: application/json' -H '{}: {}' \\\n    -d '{{\"repo\": \"{REPO}\", \"commit\": \"{commit}\", \"issue\": \"PAY-124\"}}'\n",
        stack.url,
        crate::stack::JIRA_TOKEN_HEADER,
        stack.options.jira_token
    );
    println!(
        "  curl -s '{}/hooks/jira?wait=10' ...    # same, answering 201 with the tag once it exists",
        stack.url
    );
    println!(
        "  curl -s {}/api/releases | python3 -m json.tool",
        stack.url
    );
    println!(
        "  curl -s {}/api/releases/1 | python3 -m json.tool\n",
        stack.url
    );
    println!(
        "  open {}/ in a browser on this machine: the dashboard (loopback callers are signed in)\n",
        stack.url
    );
    println!("(The demo's secrets are throwaway values. Ctrl-C stops everything.)");
}
