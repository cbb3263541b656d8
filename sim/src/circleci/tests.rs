//! Tests of the CircleCI simulator against a tiny receiver standing in for Hoist.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};

use super::{CircleCiSim, CircleCiSimConfig, PayloadShape, sign};
use crate::bitbucket::{BitbucketSim, SimAuth, random_hash};

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// An axum receiver on port 0 that keeps what it gets and answers 202.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/hooks/circleci",
            post(
                |State(r): State<Received>, headers: HeaderMap, body: Bytes| async move {
                    r.lock().unwrap().push((headers, body));
                    (
                        axum::http::StatusCode::ACCEPTED,
                        "{\"status\":\"accepted\"}",
                    )
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/circleci", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

fn config(hoist_url: String, shape: PayloadShape, include_tag: bool) -> CircleCiSimConfig {
    CircleCiSimConfig {
        hoist_url,
        secret: "s3cret".into(),
        project_slug: "bitbucket/acme/payments-api".into(),
        project_name: "payments-api".into(),
        org_name: "acme".into(),
        vcs_provider: "bitbucket".into(),
        repo_url: "https://bitbucket.org/acme/payments-api".into(),
        job_name: "build".into(),
        workflow_name: "build-and-deploy".into(),
        delay: Duration::from_millis(50),
        shape,
        include_tag,
    }
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn signature_matches_circlecis_documented_vector() {
    assert_eq!(
        sign("secret", b"hello world"),
        "v1=734cc62f32841568f45715aeb9f4d7891324e6d948e4c6c60c0621cdac48623a"
    );
}

#[tokio::test]
async fn a_build_sends_job_then_workflow_signed_like_circleci() {
    let (url, received) = receiver().await;
    let sim = CircleCiSim::new(config(url, PayloadShape::Vcs, true));
    let commit = random_hash();
    let sent = sim
        .send_build(Some("stg1.2.3"), &commit, "success")
        .await
        .unwrap();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|s| s.status == 202));
    assert_ne!(sent[0].id, sent[1].id);
    assert_eq!(sim.sent(), sent);

    let received = received.lock().unwrap().clone();
    let fixtures = [
        include_str!("../../../fixtures/circleci-job-completed.json"),
        include_str!("../../../fixtures/circleci-workflow-completed.json"),
    ];
    for (i, (event_type, (headers, body))) in ["job-completed", "workflow-completed"]
        .iter()
        .zip(&received)
        .enumerate()
    {
        assert_eq!(headers["circleci-event-type"], *event_type);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["user-agent"], "CircleCI-Webhook/1.0");
        assert_eq!(headers["circleci-signature"], sign("s3cret", body).as_str());
        let event: Value = serde_json::from_slice(body).unwrap();
        let fixture: Value = serde_json::from_str(fixtures[i]).unwrap();
        assert_eq!(keys(&event), keys(&fixture), "{event_type} top-level keys");
        assert_eq!(keys(&event["pipeline"]), keys(&fixture["pipeline"]));
        assert_eq!(event["type"], *event_type);
        assert_eq!(event["id"], json!(sent[i].id));
        assert_eq!(event["project"]["slug"], "bitbucket/acme/payments-api");
        assert_eq!(event["organization"]["name"], "acme");
        let vcs = &event["pipeline"]["vcs"];
        assert_eq!(vcs["revision"], json!(commit));
        assert_eq!(vcs["provider_name"], "bitbucket");
        assert_eq!(vcs["tag"], "stg1.2.3");
        assert!(vcs.get("branch").is_none());
        assert_eq!(event["pipeline"]["number"], 1);
        let workflow_url = format!(
            "https://app.circleci.com/pipelines/bitbucket/acme/payments-api/1/workflows/{}",
            event["workflow"]["id"].as_str().unwrap()
        );
        assert_eq!(event["workflow"]["url"], json!(workflow_url));
    }
    let job: Value = serde_json::from_slice(&received[0].1).unwrap();
    assert_eq!(job["job"]["name"], "build");
    assert_eq!(job["job"]["status"], "success");
    assert!(job["workflow"].get("status").is_none());
    let workflow: Value = serde_json::from_slice(&received[1].1).unwrap();
    assert_eq!(workflow["workflow"]["name"], "build-and-deploy");
    assert_eq!(workflow["workflow"]["status"], "success");
    assert!(workflow.get("job").is_none());
}

#[tokio::test]
async fn without_include_tag_the_payload_names_neither_tag_nor_branch() {
    let sim = CircleCiSim::new(config("http://unused".into(), PayloadShape::Vcs, false));
    let events = sim.build_events(Some("stg1.2.3"), &random_hash(), "failed");
    let vcs = &events[0].1["pipeline"]["vcs"];
    assert!(vcs.get("tag").is_none() && vcs.get("branch").is_none());
    assert_eq!(events[0].1["job"]["status"], "failed");
    let again = sim.build_events(None, &random_hash(), "error");
    assert_eq!(again[0].1["pipeline"]["number"], 2);
    assert_eq!(again[0].1["job"]["status"], "failed");
    assert_eq!(again[1].1["workflow"]["status"], "error");
}

#[tokio::test]
async fn gitlab_projects_carry_trigger_parameters_instead_of_vcs() {
    let mut config = config(
        "http://unused".into(),
        PayloadShape::TriggerParameters,
        true,
    );
    config.vcs_provider = "gitlab".into();
    let sim = CircleCiSim::new(config);
    let commit = random_hash();
    for (_, event) in sim.build_events(Some("stg1.0.0"), &commit, "success") {
        let pipeline = &event["pipeline"];
        assert!(pipeline.get("vcs").is_none());
        assert_eq!(pipeline["trigger"]["type"], "gitlab");
        let params = &pipeline["trigger_parameters"];
        assert_eq!(params["git"]["checkout_sha"], json!(commit));
        assert_eq!(params["git"]["tag"], "stg1.0.0");
        assert_eq!(params["git"]["ref"], "refs/tags/stg1.0.0");
        assert_eq!(params["gitlab"]["checkout_sha"], json!(commit));
        assert_eq!(params["circleci"]["trigger_type"], "gitlab");
    }
    let mut github = super::CircleCiSimConfig {
        vcs_provider: "github".into(),
        include_tag: false,
        ..sim.config().clone()
    };
    github.project_slug = "circleci/abc/def".into();
    let events = CircleCiSim::new(github).build_events(Some("stg1.0.0"), &commit, "success");
    let params = &events[1].1["pipeline"]["trigger_parameters"];
    assert_eq!(params["git"]["tag"], "");
    assert_eq!(params["github_app"]["checkout_sha"], json!(commit));
    assert!(params.get("gitlab").is_none());
}

#[tokio::test]
async fn watch_builds_each_new_tag_of_its_repository() {
    let (url, received) = receiver().await;
    let sim = CircleCiSim::new(config(url, PayloadShape::Vcs, false));
    let bitbucket = BitbucketSim::start("acme", SimAuth::None).await.unwrap();
    let mut deliveries = sim.subscribe();
    sim.set_outcome("canceled");
    sim.watch(bitbucket.subscribe());
    let commit = random_hash();
    bitbucket.add_tag("other-repo", "stg9.9.9", &random_hash());
    bitbucket.add_tag("payments-api", "stg1.0.0", &commit);

    for expected in ["job-completed", "workflow-completed"] {
        let delivery = tokio::time::timeout(Duration::from_secs(5), deliveries.recv())
            .await
            .expect("a delivery within 5 s")
            .unwrap();
        assert_eq!(delivery.event_type, expected);
        assert_eq!(delivery.status, 202);
    }
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 2);
    let job: Value = serde_json::from_slice(&received[0].1).unwrap();
    assert_eq!(job["pipeline"]["vcs"]["revision"], json!(commit));
    assert_eq!(job["job"]["status"], "canceled");
}

#[tokio::test]
async fn the_same_event_can_be_resent_byte_for_byte() {
    let (url, received) = receiver().await;
    let sim = CircleCiSim::new(config(url, PayloadShape::Vcs, true));
    let (event_type, event) = sim.build_events(None, &random_hash(), "success").remove(1);
    let body = serde_json::to_vec(&event).unwrap();
    for _ in 0..3 {
        let sent = sim.send_raw(&event_type, body.clone()).await.unwrap();
        assert_eq!(sent.id, event["id"].as_str().unwrap());
    }
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|(_, b)| b[..] == body[..]));
}

#[tokio::test]
async fn an_unreachable_hoist_is_an_error() {
    let sim = CircleCiSim::new(config(
        "http://127.0.0.1:9/hooks/circleci".into(),
        PayloadShape::Vcs,
        true,
    ));
    assert!(
        sim.send_build(Some("stg1"), &random_hash(), "success")
            .await
            .is_err()
    );
    assert!(sim.sent().is_empty());
}

/// The keys of every object in `v`, recursively, as `path.key`.
fn key_paths(v: &Value, at: &str, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let path = format!("{at}.{k}");
                out.insert(path.clone());
                key_paths(child, &path, out);
            }
        }
        Value::Array(a) => {
            for child in a {
                key_paths(child, at, out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_api_lists_builds_delivered_or_lost_in_circlecis_shapes() {
    let (url, received) = receiver().await;
    let sim = CircleCiSim::new(config(url, PayloadShape::Vcs, false));
    let api = sim.serve_api("token-1").await.unwrap();
    sim.send_build(Some("stg1.0.0"), &random_hash(), "success")
        .await
        .unwrap();
    sim.set_delivering(false);
    for i in 0..24 {
        sim.record_build(Some(&format!("stg1.0.{}", i + 1)), &random_hash(), "failed");
    }
    assert_eq!(
        received.lock().unwrap().len(),
        2,
        "lost builds send nothing"
    );

    let client = reqwest::Client::new();
    let get = |path: String, token: &'static str| {
        let client = client.clone();
        async move {
            let resp = client
                .get(path)
                .header("Circle-Token", token)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let base = api.base_url();
    let (status, body) = get(
        format!("{base}/project/bitbucket/acme/payments-api/pipeline"),
        "nope",
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("You must log in first."))
    );

    let (status, first) = get(
        format!("{base}/project/bitbucket/acme/payments-api/pipeline"),
        "token-1",
    )
    .await;
    assert_eq!(status, 200);
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    assert_eq!(items[0]["vcs"]["tag"], "stg1.0.24", "newest first");
    let next = first["next_page_token"].as_str().unwrap();
    let (_, second) = get(
        format!("{base}/project/bitbucket/acme/payments-api/pipeline?page-token={next}"),
        "token-1",
    )
    .await;
    let rest = second["items"].as_array().unwrap();
    assert_eq!(rest.len(), 5);
    assert!(second["next_page_token"].is_null());
    let oldest = &rest[4];
    assert_eq!(oldest["vcs"]["tag"], "stg1.0.0");

    let (_, workflows) = get(
        format!(
            "{base}/pipeline/{}/workflow",
            oldest["id"].as_str().unwrap()
        ),
        "token-1",
    )
    .await;
    let wf = &workflows["items"][0];
    assert_eq!(
        (wf["name"].as_str(), wf["status"].as_str()),
        (Some("build-and-deploy"), Some("success"))
    );
    let (_, jobs) = get(
        format!("{base}/workflow/{}/job", wf["id"].as_str().unwrap()),
        "token-1",
    )
    .await;
    assert_eq!(jobs["items"][0]["name"], "build");

    // Every key the sim answers is one CircleCI's documented examples have.
    for (answer, fixture) in [
        (
            &first,
            include_str!("../../../fixtures/circleci-api-pipelines.json"),
        ),
        (
            &workflows,
            include_str!("../../../fixtures/circleci-api-workflows.json"),
        ),
        (
            &jobs,
            include_str!("../../../fixtures/circleci-api-jobs.json"),
        ),
    ] {
        let fixture: Value = serde_json::from_str(fixture).unwrap();
        let (mut ours, mut theirs) = (Default::default(), Default::default());
        key_paths(answer, "", &mut ours);
        key_paths(&fixture, "", &mut theirs);
        let extra: Vec<_> = ours.difference(&theirs).collect();
        assert!(extra.is_empty(), "keys CircleCI does not send: {extra:?}");
    }
}
