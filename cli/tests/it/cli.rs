//! The command line, run as a user would: check-config, next-tag, releases, retry, replay.

use std::process::Output;
use std::time::Duration;

use hoist_cli::stack::REPO;

use crate::process::{Hoist, Sims, eventually, free_port, hoist_cmd};

/// Runs a command without blocking the test's runtime (the simulators answer on it).
async fn run(config: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::from(hoist_cmd(config));
    cmd.args(args).output().await.expect("run hoist")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn check_config_reports_every_problem_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let sims = Sims::start().await;
    let good = sims.config_toml("127.0.0.1:8080", "sqlite://hoist.db", 30);
    let path = dir.path().join("good.toml");
    std::fs::write(&path, &good).unwrap();
    let o = run(&path, &["check-config"]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("ok (1 project(s), 1 environment(s))"));

    let bad = good
        .replace(
            "allow_ips = [\"127.0.0.0/8\", \"::1/128\"]",
            "allow_ips = [\"127.0.0.0/33\", \"fe80::/200\"]",
        )
        .replace(
            "tag = \"stg{major}.{minor}.{patch}\"",
            "tag = \"stg{major}.{patch}\"",
        )
        .replace(
            "env = \"HOIST_TEST_JIRA_TOKEN\"",
            "env = \"HOIST_TEST_SURELY_UNSET\"",
        )
        .replace(
            "default_env = \"stg\"",
            "default_env = \"prod\"\ncolour = \"blue\"",
        )
        .replace("poll_ms = 50", "poll_ms = 50\nturbo = true");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, &bad).unwrap();
    let o = run(&path, &["check-config"]).await;
    assert!(!o.status.success());
    let out = text(&o);
    for expected in [
        "sources.jira.allow_ips[0]: `127.0.0.0/33` is not a CIDR",
        "sources.jira.allow_ips[1]: `fe80::/200` is not a CIDR",
        "projects[0].environments.stg.tag: tag template `stg{major}.{patch}`",
        "sources.jira.token: environment variable HOIST_TEST_SURELY_UNSET is not set",
        "projects[0].default_env: `prod` is not one of this project's environments",
        "projects.0.colour: unknown key",
        "worker.turbo: unknown key",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
    assert!(out.contains("7 problem(s)"), "{out}");

    // An inline secret is refused without being echoed.
    let inline = good.replace(
        "token = { env = \"HOIST_TEST_JIRA_TOKEN\" }",
        "token = \"hunter2-inline\"",
    );
    let path = dir.path().join("inline.toml");
    std::fs::write(&path, &inline).unwrap();
    let o = run(&path, &["check-config"]).await;
    assert!(!o.status.success());
    assert!(
        text(&o).contains("inline secrets are refused"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("hunter2-inline"));
}

#[tokio::test]
async fn next_tag_releases_retry_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let sims = Sims::start().await;
    let c = sims.commit("base");
    sims.bitbucket.add_tag(REPO, "stg1.3.99", &c);
    let listen = format!("127.0.0.1:{}", free_port());
    let store = format!("sqlite://{}", dir.path().join("hoist.db").display());
    let config = sims.config_toml(&listen, &store, 30);
    let path = dir.path().join("cli.toml");
    std::fs::write(&path, &config).unwrap();

    let o = run(&path, &["next-tag", "--project", "payments-api"]).await;
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.starts_with("stg1.4.0\n"), "{out}");
    assert!(out.contains("rollover"), "{out}");
    assert_eq!(
        sims.bitbucket.tags(REPO).len(),
        1,
        "a dry run creates nothing"
    );

    // A release whose deploy fails for good, then is retried by hand.
    let h = Hoist::start(dir.path(), "cli", &config, &listen).await;
    let _ci = sims.circleci(&h.url, Duration::from_millis(50));
    sims.gate.faults().set_outage(Some(404));
    let commit = sims.commit("x");
    let (_, body) = h.assign(&sims, "PAY-60", &commit).await;
    let id = body["release"].as_i64().unwrap();
    assert!(
        eventually(
            Duration::from_secs(20),
            async || h.release(id).await["status"] == "failed"
        )
        .await
    );
    let detail = h.release(id).await;
    let deploy = detail["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "deploy")
        .unwrap()
        .clone();
    assert_eq!(deploy["state"], "failed");
    assert!(
        deploy["last_error"]
            .as_str()
            .unwrap()
            .contains("spinnaker_source"),
        "{deploy}"
    );

    let o = run(&path, &["releases"]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("PAY-60") && text(&o).contains("failed"),
        "{}",
        text(&o)
    );
    let o = run(&path, &["releases", "--id", &id.to_string()]).await;
    assert!(
        text(&o).contains("timeline:") && text(&o).contains("deploy"),
        "{}",
        text(&o)
    );

    sims.gate.faults().set_outage(None);
    let o = run(&path, &["retry", &deploy["id"].to_string()]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        eventually(
            Duration::from_secs(20),
            async || h.release(id).await["status"] == "deployed"
        )
        .await
    );
    assert_eq!(sims.gate.triggers().len(), 1);
    let o = run(&path, &["releases"]).await;
    assert!(text(&o).contains("median lead time"), "{}", text(&o));
    let o = run(&path, &["retry", "99999"]).await;
    assert!(!o.status.success());

    // Replay: a ticket whose commit was missing, after the commit appears.
    sims.bitbucket.faults().clear();
    let missing = hoist_sim::bitbucket::random_hash();
    let (_, body) = h.assign(&sims, "PAY-61", &missing).await;
    let id = body["release"].as_i64().unwrap();
    assert!(
        eventually(
            Duration::from_secs(20),
            async || h.release(id).await["status"] == "failed"
        )
        .await
    );
    sims.bitbucket.add_commit(REPO, &missing, "pushed late");
    let delivery = {
        let store = hoist::store::Store::connect(&hoist::store::Options {
            url: store.clone(),
            fsync: false,
            max_attempts: 5,
            schema: None,
            serve: false,
        })
        .await
        .unwrap();
        store
            .query_i64(&format!(
                "SELECT id AS n FROM deliveries WHERE release_id = {id}"
            ))
            .await
            .unwrap()
    };
    let o = run(&path, &["replay", &delivery.to_string()]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        eventually(
            Duration::from_secs(20),
            async || h.release(id).await["status"] == "deployed"
        )
        .await,
        "{}",
        h.release(id).await
    );
}

/// `qa` from `stg`, `prod` from `qa` with one approval of U1, as a user adds them to the file.
const ROAD: &str = r#"
[projects.environments.qa]
tag = "qa{major}.{minor}.{patch}"
promote_from = "stg"
spinnaker_source = "payments-api-qa"
parameters = { tag = "{tag}", image = "{build_tag}" }

[projects.environments.prod]
tag = "v{major}.{minor}.{patch}"
promote_from = "qa"
approvals = 1
approvers = ["U1"]
spinnaker_source = "payments-api-prod"
"#;

/// The release's deployment into `env`, once its status is `status`.
async fn deployment(h: &Hoist, id: i64, env: &str, status: &str) -> Option<serde_json::Value> {
    h.release(id).await["deployments"]
        .as_array()?
        .iter()
        .rev()
        .find(|d| d["env"] == env && d["status"] == status)
        .cloned()
}

#[tokio::test]
async fn promote_approve_and_rollback_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let sims = Sims::start().await;
    let listen = format!("127.0.0.1:{}", free_port());
    let store = crate::util::store_url()
        .await
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("hoist.db").display()));
    let config = sims.config_toml(&listen, &store, 30) + ROAD;
    let path = dir.path().join("hoist.toml");
    std::fs::write(&path, &config).unwrap();
    let h = Hoist::start(dir.path(), "road", &config, &listen).await;
    let _ci = sims.circleci(&h.url, Duration::from_millis(50));
    let wait = Duration::from_secs(20);

    let mut ids = Vec::new();
    for issue in ["PAY-70", "PAY-71"] {
        let commit = sims.commit(issue);
        let (_, body) = h.assign(&sims, issue, &commit).await;
        let id = body["release"].as_i64().unwrap();
        assert!(eventually(wait, async || h.release(id).await["status"] == "deployed").await);
        ids.push(id);
    }
    let (first, second) = (ids[0], ids[1]);
    let first_tag = h.release(first).await["tag"].as_str().unwrap().to_string();

    let o = run(
        &path,
        &["promote", &first_tag, "--to", "prod", "--as", "jess"],
    )
    .await;
    assert!(!o.status.success());
    assert!(text(&o).contains("not deployed in `qa`"), "{}", text(&o));
    let o = run(
        &path,
        &["promote", &first_tag, "--to", "qa", "--as", "jess"],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        eventually(wait, async || deployment(&h, first, "qa", "deployed")
            .await
            .is_some())
        .await
    );
    let o = run(
        &path,
        &["approve", &first.to_string(), "--env", "prod", "--as", "U2"],
    )
    .await;
    assert!(!o.status.success());
    assert!(text(&o).contains("not among the approvers"), "{}", text(&o));
    let o = run(
        &path,
        &["approve", &first.to_string(), "--env", "prod", "--as", "U1"],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("the promotion starts"), "{}", text(&o));
    assert!(
        eventually(wait, async || deployment(&h, first, "prod", "deployed")
            .await
            .is_some())
        .await
    );
    let prod = deployment(&h, first, "prod", "deployed").await.unwrap();
    assert_eq!(prod["tag"], first_tag.replace("stg", "v"));

    // stg runs the second release; a rollback brings the first one back, with its own tag.
    let o = run(
        &path,
        &[
            "rollback",
            "--project",
            "payments-api",
            "--env",
            "stg",
            "--as",
            "jess",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(&first_tag), "{}", text(&o));
    let back = async || {
        h.release(first).await["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["kind"] == "rollback" && d["status"] == "deployed" && d["env"] == "stg")
    };
    assert!(eventually(wait, back).await, "{}", h.release(first).await);
    let stg_triggers: Vec<String> = sims
        .gate
        .triggers()
        .iter()
        .filter(|t| t.source == "payments-api-stg")
        .map(|t| t.parameters["tag"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stg_triggers.last(), Some(&first_tag), "{stg_triggers:?}");
    let tags = sims.bitbucket.tags(REPO);
    assert_eq!(
        tags.iter().filter(|(n, _)| *n == first_tag).count(),
        1,
        "no new tag"
    );
    let events = h.release(second).await["events"].to_string();
    assert!(events.contains("rolled_back"), "{events}");

    let o = run(
        &path,
        &[
            "rollback",
            "--project",
            "payments-api",
            "--env",
            "prod",
            "--as",
            "jess",
        ],
    )
    .await;
    assert!(!o.status.success());
    assert!(text(&o).contains("nothing to roll back to"), "{}", text(&o));
}
