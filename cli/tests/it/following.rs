//! SPEC 12 and 11 together: following deploys is durable work. A `hoist serve` killed with -9
//! while it follows deploys loses none and repeats none; two replicas on one PostgreSQL store
//! share the following, one look at a deployment at a time.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use hoist_sim::spinnaker::{GateSim, Outcome};

use crate::process::{Hoist, Sims, eventually, free_port};
use crate::util::store_url;

const SOURCE: &str = "payments-api-stg";

async fn status(h: &Hoist, id: i64) -> String {
    h.release(id).await["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn all_are(h: &Hoist, ids: &[i64], wanted: &[&str]) -> bool {
    for id in ids {
        if !wanted.contains(&status(h, *id).await.as_str()) {
            return false;
        }
    }
    true
}

/// The shortest time between two looks at one execution (its `GET /pipelines/{id}`) or one
/// event (its search): two followers at once would show as looks a few ms apart.
fn shortest_gap_between_looks(gate: &GateSim) -> Duration {
    let mut looks: HashMap<String, Vec<Instant>> = HashMap::new();
    for r in gate.requests().into_iter().filter(|r| r.method == "GET") {
        let key = match r.path.strip_prefix("/pipelines/") {
            Some(id) => id.to_string(),
            None => r.query.clone().unwrap_or_default(),
        };
        looks.entry(key).or_default().push(r.at);
    }
    looks
        .values_mut()
        .flat_map(|at| {
            at.sort();
            at.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
        })
        .min()
        .unwrap_or(Duration::MAX)
}

/// Every release deployed once, at Gate's end time, with its one execution recorded.
async fn each_deployed_once(h: &Hoist, sims: &Sims, ids: &[i64]) {
    let triggers = sims.gate.triggers();
    assert_eq!(triggers.len(), ids.len(), "one trigger each: {triggers:?}");
    let executions = sims.gate.executions();
    let end_of: HashMap<String, i64> = executions
        .iter()
        .map(|e| {
            (
                e["trigger"]["eventId"].as_str().unwrap().to_string(),
                e["endTime"].as_i64().unwrap(),
            )
        })
        .collect();
    for id in ids {
        let r = h.release(*id).await;
        assert_eq!(r["status"], "deployed", "{r}");
        let deployments = r["deployments"].as_array().unwrap();
        assert_eq!(deployments.len(), 1, "{r}");
        let d = &deployments[0];
        assert_eq!(d["status"], "deployed");
        assert_eq!(d["executions"].as_array().unwrap().len(), 1, "{d}");
        assert_eq!(d["executions"][0]["status"], "SUCCEEDED");
        let event = d["event_id"].as_str().unwrap();
        let end = end_of[event];
        let deployed_at = chrono::DateTime::parse_from_rfc3339(r["deployed_at"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        assert_eq!(deployed_at, end, "deployed at Gate's endTime");
        assert_eq!(
            r["lead_time_ms"].as_i64(),
            Some(
                end - {
                    chrono::DateTime::parse_from_rfc3339(r["received_at"].as_str().unwrap())
                        .unwrap()
                        .timestamp_millis()
                }
            )
        );
    }
    let tags: BTreeSet<&str> = triggers
        .iter()
        .map(|t| t.parameters["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags.len(), ids.len(), "distinct tags: {tags:?}");
}

#[tokio::test]
async fn kill_9_while_deploys_are_followed_loses_none_and_repeats_none() {
    let dir = tempfile::tempdir().unwrap();
    let sims = Sims::start().await;
    sims.gate.set_outcome(
        SOURCE,
        Outcome::Succeed {
            pipelines: vec!["deploy-staging".into()],
            after: Duration::from_millis(2500),
        },
    );
    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{listen}");
    let _ci = sims.circleci(&url, Duration::from_millis(100));
    let store = match store_url().await {
        Some(pg) => pg,
        None => format!("sqlite://{}", dir.path().join("hoist.db").display()),
    };
    let config = sims.config_toml(&listen, &store, 2);
    let mut h = Hoist::start(dir.path(), "before", &config, &listen).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        let commit = sims.commit(&format!("c{i}"));
        let (code, body) = h.assign(&sims, &format!("PAY-{i}"), &commit).await;
        assert_eq!(code, 202, "{body}");
        ids.push(body["release"].as_i64().unwrap());
    }
    let following = eventually(Duration::from_secs(30), async || {
        all_are(&h, &ids, &["deploy_triggered", "deploy_started"]).await
    })
    .await;
    assert!(following, "not every deploy was being followed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let looks_before = sims.gate.request_count() - ids.len();
    h.kill9();

    let restarted = Instant::now();
    let h = Hoist::start(dir.path(), "after", &config, &listen).await;
    let done = eventually(Duration::from_secs(30), async || {
        all_are(&h, &ids, &["deployed"]).await
    })
    .await;
    assert!(done, "not every deploy ended after the restart");
    println!(
        "kill -9 with 8 deploys followed ({looks_before} looks made): every one deployed {:?} after the restart",
        restarted.elapsed()
    );
    each_deployed_once(&h, &sims, &ids).await;
    let gap = shortest_gap_between_looks(&sims.gate);
    assert!(gap >= Duration::from_millis(40), "two looks {gap:?} apart");
    let deployed_messages = sims
        .slack
        .messages()
        .iter()
        .filter(|m| m.text.as_deref().is_some_and(|t| t.contains(" deployed")))
        .count();
    assert!(
        deployed_messages >= ids.len(),
        "{deployed_messages} deployed messages"
    );
}

/// Two replicas on one PostgreSQL store follow the same deploys; one dies midway. (SQLite is
/// one process's store: this runs on PostgreSQL only.)
#[tokio::test]
async fn two_replicas_follow_each_deploy_one_look_at_a_time() {
    let Some(store) = store_url().await else {
        println!("skipped: two replicas need PostgreSQL (HOIST_TEST_PG)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sims = Sims::start().await;
    sims.gate.set_outcome(
        SOURCE,
        Outcome::Succeed {
            pipelines: vec!["deploy-staging".into()],
            after: Duration::from_millis(3000),
        },
    );
    let (la, lb) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let mut a = Hoist::start(dir.path(), "a", &sims.config_toml(&la, &store, 2), &la).await;
    let b = Hoist::start(dir.path(), "b", &sims.config_toml(&lb, &store, 2), &lb).await;
    let _ci = sims.circleci(&b.url, Duration::from_millis(100));
    let mut ids = Vec::new();
    for i in 0..12 {
        let commit = sims.commit(&format!("c{i}"));
        let replica = if i % 2 == 0 { &a } else { &b };
        let (code, body) = replica.assign(&sims, &format!("PAY-{i}"), &commit).await;
        assert_eq!(code, 202, "{body}");
        ids.push(body["release"].as_i64().unwrap());
    }
    let following = eventually(Duration::from_secs(30), async || {
        all_are(&b, &ids, &["deploy_triggered", "deploy_started"]).await
    })
    .await;
    assert!(following, "not every deploy was being followed");
    tokio::time::sleep(Duration::from_millis(800)).await;
    a.kill9();
    let done = eventually(Duration::from_secs(30), async || {
        all_are(&b, &ids, &["deployed"]).await
    })
    .await;
    assert!(done, "replica b did not end every deploy");
    each_deployed_once(&b, &sims, &ids).await;
    let gap = shortest_gap_between_looks(&sims.gate);
    println!("two replicas: the closest two looks at one deploy were {gap:?} apart");
    assert!(gap >= Duration::from_millis(40), "two looks {gap:?} apart");
}
