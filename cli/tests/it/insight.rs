//! SPEC 15, insight: the commit's time on a release, and the DORA figures of `GET /api/stats` and
//! `hoist stats`, checked against figures this test computes on its own from the releases' JSON.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use hoist::config::{ConfigFile, SecretRef};
use hoist_cli::stack::{REPO, Stack, StackOptions};
use hoist_sim::spinnaker::Outcome;
use serde_json::Value;

use crate::process::{Sims, hoist_cmd};
use crate::util::{WAIT, stack, stack_with};

/// `stg` from tickets, and `qa` promoted by itself once a release is deployed in `stg`.
fn stg_then_qa(c: &mut ConfigFile) {
    let qa = hoist::config::file::EnvConfig {
        tag: "qa{major}.{minor}.{patch}".into(),
        promote_from: Some("stg".into()),
        auto: true,
        spinnaker_source: Some("payments-api-qa".into()),
        spinnaker_application: Some("payments-api".into()),
        parameters: [("tag", "{tag}")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    c.projects[0].environments.insert("qa".into(), qa);
}

async fn get(s: &Stack, path: &str) -> (u16, Value) {
    let resp = reqwest::get(format!("{}{path}", s.url)).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A ticket for a new commit dated `committed`; answers the release once it ended in `stg`.
async fn ticket(s: &Stack, issue: &str, committed: DateTime<Utc>) -> i64 {
    let hash = hoist_sim::bitbucket::random_hash();
    s.bitbucket
        .add_commit_at(REPO, &hash, &format!("{issue} change"), committed);
    let (status, body) = s.assign(issue, &hash).await.unwrap();
    assert_eq!(status, 202, "{body}");
    let id = body["release"].as_i64().unwrap();
    s.wait_release(id, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();
    id
}

fn ms(v: &Value) -> Option<i64> {
    v.as_str()
        .map(|t| DateTime::parse_from_rfc3339(t).unwrap().timestamp_millis())
}

/// One deployment as the release JSON shows it, with its release's times.
#[derive(Debug, Clone)]
struct Seen {
    kind: String,
    status: String,
    triggered: bool,
    finished: i64,
    received: i64,
    committed: Option<i64>,
}

/// The linear-interpolation percentile, in seconds.
fn pct(mut v: Vec<i64>, q: f64) -> Option<f64> {
    v.sort();
    let last = v.len().checked_sub(1)?;
    let r = q * last as f64;
    let (lo, hi) = (v[r.floor() as usize] as f64, v[r.ceil() as usize] as f64);
    Some((lo + (hi - lo) * (r - r.floor())) / 1000.0)
}

/// The figures of README "DORA figures", worked out here from what the releases say.
fn expected(mut seen: Vec<Seen>) -> Value {
    seen.retain(|d| d.triggered && (d.status == "deployed" || d.status == "failed"));
    seen.sort_by_key(|d| d.finished);
    let rolled_back = |i: usize| {
        seen[i].status == "deployed" && seen.get(i + 1).is_some_and(|n| n.kind == "rollback")
    };
    let deploys = seen.iter().filter(|d| d.status == "deployed").count();
    let failed = seen.iter().filter(|d| d.status == "failed").count();
    let failures = failed + (0..seen.len()).filter(|&i| rolled_back(i)).count();
    let leads: Vec<&Seen> = seen
        .iter()
        .filter(|d| d.status == "deployed" && d.kind != "rollback")
        .collect();
    let from_ticket: Vec<i64> = leads.iter().map(|d| d.finished - d.received).collect();
    let from_commit: Vec<i64> = leads
        .iter()
        .filter_map(|d| d.committed.map(|c| d.finished - c))
        .collect();
    let mut restores = Vec::new();
    let mut down: Option<i64> = None;
    for d in &seen {
        match d.status.as_str() {
            "failed" => down = down.or(Some(d.finished)),
            _ => restores.extend(down.take().map(|f| d.finished - f)),
        }
    }
    let spread = |v: Vec<i64>| serde_json::json!({"count": v.len(), "median_secs": pct(v.clone(), 0.5), "p90_secs": pct(v, 0.9)});
    serde_json::json!({
        "deploys": deploys,
        "failures": failures,
        "ended": deploys + failed,
        "change_failure_rate": (!seen.is_empty()).then(|| failures as f64 / seen.len() as f64),
        "lead_time_from_ticket": spread(from_ticket),
        "lead_time_from_commit": spread(from_commit),
        "time_to_restore": spread(restores),
    })
}

/// Equal as JSON, numbers within a microsecond (the store's times are milliseconds).
fn close(got: &Value, want: &Value, path: &str) {
    match (got, want) {
        (Value::Object(_), Value::Object(w)) => {
            for (k, v) in w {
                close(&got[k], v, &format!("{path}.{k}"));
            }
        }
        (Value::Number(g), Value::Number(w)) => {
            let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
            assert!((g - w).abs() < 1e-6, "{path}: {g} != {w}");
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

#[tokio::test]
async fn dora_figures_match_what_the_releases_record() {
    let s = stack_with(StackOptions::default(), stg_then_qa).await;
    let now = Utc::now().trunc_subsecs(0);
    // A: deployed in stg, then qa. B: fails in stg. C: deployed in stg (restoring it), then qa.
    let a = ticket(&s, "PAY-701", now - chrono::Duration::hours(3)).await;
    s.wait_deployment(a, "qa", WAIT).await.unwrap();
    s.gate.set_outcome(
        "payments-api-stg",
        Outcome::FailAt {
            pipeline: "deploy-staging".into(),
            stage: "Deploy (Manifest)".into(),
            after: Duration::from_millis(100),
        },
    );
    let b = ticket(&s, "PAY-702", now - chrono::Duration::hours(2)).await;
    s.gate.set_outcome("payments-api-stg", Outcome::default());
    let c = ticket(&s, "PAY-703", now - chrono::Duration::minutes(30)).await;
    s.wait_deployment(c, "qa", WAIT).await.unwrap();
    // Then stg is rolled back to A: C counts as a failure.
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/api/projects/payments-api/environments/stg/rollback",
            s.url
        ))
        .json(&serde_json::json!({"by": "jess"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !s
        .hoist
        .store
        .deployments(hoist::domain::ReleaseId(a))
        .await
        .unwrap()
        .iter()
        .any(|d| d.kind.as_str() == "rollback" && d.status.is_final())
    {
        assert!(tokio::time::Instant::now() < deadline, "rolled back");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    s.settle(WAIT).await.unwrap();

    // What the releases say.
    let mut seen: Vec<(String, Seen)> = Vec::new();
    for (id, committed) in [
        (a, now - chrono::Duration::hours(3)),
        (b, now - chrono::Duration::hours(2)),
        (c, now - chrono::Duration::minutes(30)),
    ] {
        let (status, r) = get(&s, &format!("/api/releases/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(
            ms(&r["committed_at"]),
            Some(committed.timestamp_millis()),
            "Bitbucket's commit date is recorded"
        );
        for d in r["deployments"].as_array().unwrap() {
            seen.push((
                d["env"].as_str().unwrap().to_string(),
                Seen {
                    kind: d["kind"].as_str().unwrap().into(),
                    status: d["status"].as_str().unwrap().into(),
                    triggered: d["triggered_at"].is_string(),
                    finished: ms(&d["finished_at"]).unwrap(),
                    received: ms(&r["received_at"]).unwrap(),
                    committed: ms(&r["committed_at"]),
                },
            ));
        }
    }
    let of = |env: &str| -> Vec<Seen> {
        seen.iter()
            .filter(|(e, _)| e == env)
            .map(|(_, d)| d.clone())
            .collect()
    };
    let stg = expected(of("stg"));
    assert_eq!(
        (&stg["deploys"], &stg["failures"], &stg["ended"]),
        (&3.into(), &2.into(), &4.into()),
        "A, C and the rollback deployed; B failed and C was rolled back: {stg}"
    );
    assert_eq!(stg["time_to_restore"]["count"], 1);

    // The API agrees, pair by pair.
    let (status, one) = get(&s, "/api/stats?project=payments-api&env=stg&days=1").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["days"], 1);
    let figures = &one["stats"][0];
    close(figures, &stg, "stg");
    assert_eq!(figures["rolled_back"], 1);
    assert_eq!(figures["deploys_per_day"], 3.0);
    assert_eq!(one["stats"].as_array().unwrap().len(), 1);

    let (status, all) = get(&s, "/api/stats?daily=true").await;
    assert_eq!(status, 200, "{all}");
    let pairs: Vec<String> = all["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}/{}",
                f["project"].as_str().unwrap(),
                f["env"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        pairs,
        ["payments-api/stg", "payments-api/qa"],
        "along the road"
    );
    close(&all["stats"][1], &expected(of("qa")), "qa");
    assert_eq!(all["stats"][1]["deploys"], 2);
    assert_eq!(all["days"], 30);
    for f in all["stats"].as_array().unwrap() {
        let daily = f["daily"].as_array().unwrap();
        assert!(daily.len() == 30 || daily.len() == 31, "{}", daily.len());
        let sum = |k: &str| daily.iter().map(|d| d[k].as_u64().unwrap()).sum::<u64>();
        assert_eq!(sum("deploys"), f["deploys"].as_u64().unwrap());
        assert_eq!(sum("failures"), f["failures"].as_u64().unwrap());
        assert_eq!(
            daily.last().unwrap()["date"],
            Utc::now().format("%Y-%m-%d").to_string()
        );
    }

    // `hoist stats` reads the same from the store.
    let sims = Sims::start().await;
    let url = s
        .options
        .store_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", s.dir.path().join("hoist.db").display()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hoist.toml");
    std::fs::write(&path, sims.config_toml("127.0.0.1:1", &url, 30)).unwrap();
    let run = |args: &'static [&'static str]| {
        let mut cmd = tokio::process::Command::from(hoist_cmd(&path));
        cmd.arg("stats").args(args);
        async move { cmd.output().await.unwrap() }
    };
    let o = run(&[
        "--project",
        "payments-api",
        "--env",
        "stg",
        "--days",
        "1",
        "--json",
    ])
    .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cli: Value = serde_json::from_slice(&o.stdout).unwrap();
    close(&cli[0], &stg, "cli stg");
    let o = run(&["--days", "1"]).await;
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{table}");
    assert!(table.contains("FAILURE RATE"), "{table}");
    assert!(table.contains("50% (2/4)"), "{table}");
    for (args, names) in [
        (&["--days", "-1"][..], "`days`"),
        (&["--days", "100000"][..], "`days`"),
        (&["--project", "nope"][..], "no project `nope`"),
        (&["--env", "prod"][..], "no environment `prod`"),
    ] {
        let o = run(args).await;
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(names),
            "{args:?}: {err}"
        );
    }
    s.finish().await.unwrap();
}

#[tokio::test]
async fn stats_name_the_parameter_they_refuse() {
    let s = stack().await;
    for (query, parameter) in [
        ("days=-1", "days"),
        ("days=0", "days"),
        ("days=100000", "days"),
        ("days=abc", "days"),
        ("days=1.5", "days"),
        ("project=nope", "project"),
        ("project=payments-api&env=prod", "env"),
        ("env=prod", "env"),
        ("daily=maybe", "daily"),
    ] {
        let (status, body) = get(&s, &format!("/api/stats?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["parameter"], parameter, "{query}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("`{parameter}`")),
            "{query}: {body}"
        );
    }
    let (status, body) = get(&s, "/api/stats?project=payments-api&days=7").await;
    assert_eq!(status, 200, "{body}");
    let f = &body["stats"][0];
    assert_eq!(
        (f["deploys"].as_u64(), f["days"].as_u64()),
        (Some(0), Some(7))
    );
    assert_eq!(f["change_failure_rate"], Value::Null);
    // A proxy on the same host is not a loopback caller.
    let proxied = reqwest::Client::new()
        .get(format!("{}/api/stats", s.url))
        .header("x-forwarded-for", "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status().as_u16(), 403);
    s.finish().await.unwrap();
}

#[tokio::test]
async fn with_a_token_stats_need_it_before_any_parameter_is_read() {
    let s = stack_with(StackOptions::default(), |c| {
        c.server.api_token = Some(SecretRef::Value("api-token-9a8b".into()));
    })
    .await;
    let client = reqwest::Client::new();
    for query in ["", "?project=nope", "?days=-1"] {
        let resp = client
            .get(format!("{}/api/stats{query}", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{query}");
    }
    let resp = client
        .get(format!("{}/api/stats", s.url))
        .bearer_auth("api-token-9a8b")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    s.finish().await.unwrap();
}
