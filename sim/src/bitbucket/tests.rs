//! Tests of the Bitbucket simulator, through a real HTTP client.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{BitbucketSim, SimAuth, random_hash};
use crate::Fault;

const TOKEN: &str = "tok3n";

async fn sim_with_repo() -> (BitbucketSim, reqwest::Client, String) {
    let sim = BitbucketSim::start("acme", SimAuth::Bearer(TOKEN.into()))
        .await
        .unwrap();
    let hash = random_hash();
    sim.add_commit("payments-api", &hash, "Add payments\n");
    (sim, reqwest::Client::new(), hash)
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).bearer_auth(TOKEN).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create(client: &reqwest::Client, sim: &BitbucketSim, body: Value) -> (u16, Value) {
    let url = format!(
        "{}/repositories/acme/payments-api/refs/tags",
        sim.base_url()
    );
    let response = client
        .post(url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn names(page: &Value) -> Vec<String> {
    page["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn commit_by_full_and_short_hash_in_bitbuckets_shape() {
    let (sim, client, hash) = sim_with_repo().await;
    let base = sim.base_url();
    for sha in [hash.clone(), hash[..7].to_string()] {
        let (status, commit) = get(
            &client,
            &format!("{base}/repositories/acme/payments-api/commit/{sha}"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(commit["hash"], json!(hash));
        assert_eq!(commit["type"], "commit");
        assert_eq!(commit["message"], "Add payments\n");
        assert_eq!(commit["repository"]["full_name"], "acme/payments-api");
        assert!(
            commit["links"]["self"]["href"]
                .as_str()
                .unwrap()
                .starts_with(&base)
        );
        assert!(commit["date"].as_str().unwrap().ends_with("+00:00"));
    }
    let (status, error) = get(
        &client,
        &format!(
            "{base}/repositories/acme/payments-api/commit/{}",
            random_hash()
        ),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["message"], "Commit not found");
    let (status, error) = get(
        &client,
        &format!("{base}/repositories/acme/nope/commit/{hash}"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("You may not have access")
    );
}

#[tokio::test]
async fn pages_follow_next_until_it_is_absent() {
    let (sim, client, hash) = sim_with_repo().await;
    for patch in 0..25 {
        sim.add_tag("payments-api", &format!("stg1.0.{patch}"), &hash);
    }
    sim.add_tag("payments-api", "qa1.0.0", &hash);
    let mut url = format!(
        "{}/repositories/acme/payments-api/refs/tags?q={}&pagelen=10&sort=-name",
        sim.base_url(),
        "name%20~%20%22stg%22"
    );
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (status, page) = get(&client, &url).await;
        assert_eq!(status, 200);
        pages += 1;
        assert_eq!(page["size"], 25);
        assert_eq!(page["page"], pages);
        seen.extend(names(&page));
        match page["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with("http://127.0.0.1:"), "absolute: {next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    assert_eq!(seen[0], "stg1.0.24");
    assert_eq!(seen[24], "stg1.0.0");

    sim.omit_size(true);
    let (_, page) = get(
        &client,
        &format!(
            "{}/repositories/acme/payments-api/refs/tags",
            sim.base_url()
        ),
    )
    .await;
    assert!(page.get("size").is_none());
    assert_eq!(page["pagelen"], 10);
}

#[tokio::test]
async fn q_filters_and_sort_is_natural() {
    let (sim, client, hash) = sim_with_repo().await;
    for name in ["stg1.9.0", "stg1.10.0", "STG1.2.0", "qa1.0.0", "stg1.9.10"] {
        sim.add_tag("payments-api", name, &hash);
    }
    let list = format!(
        "{}/repositories/acme/payments-api/refs/tags",
        sim.base_url()
    );
    let (_, page) = get(&client, &format!("{list}?q=name+~+%22stg%22&sort=name")).await;
    assert_eq!(
        names(&page),
        ["STG1.2.0", "stg1.9.0", "stg1.9.10", "stg1.10.0"]
    );
    let (_, page) = get(&client, &format!("{list}?q=name+%3D+%22stg1.9.0%22")).await;
    assert_eq!(names(&page), ["stg1.9.0"]);
    let (_, page) = get(
        &client,
        &format!("{list}?q=name+~+%22stg%22+AND+name+~+%22.9.%22&sort=-name"),
    )
    .await;
    assert_eq!(names(&page), ["stg1.9.10", "stg1.9.0"]);
    let (status, error) = get(&client, &format!("{list}?q=target.hash+%3D+%22{hash}%22")).await;
    assert_eq!(status, 400);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid query")
    );

    let (status, tag) = get(&client, &format!("{list}/stg1.10.0")).await;
    assert_eq!(status, 200);
    assert_eq!(tag["target"]["hash"], json!(hash));
    let (status, _) = get(&client, &format!("{list}/stg9.9.9")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn tag_names_with_slashes_and_escapes_are_found() {
    let (sim, client, hash) = sim_with_repo().await;
    sim.add_tag(
        "payments-api",
        r#"release/v1 "x""#.replace(' ', "-").as_str(),
        &hash,
    );
    let url = format!(
        "{}/repositories/acme/payments-api/refs/tags/release/v1-%22x%22",
        sim.base_url()
    );
    let (status, tag) = get(&client, &url).await;
    assert_eq!(status, 200);
    assert_eq!(tag["name"], r#"release/v1-"x""#);
    assert_eq!(tag["message"], "release/v1-\"x\"\n");
}

#[tokio::test]
async fn create_answers_201_then_400_when_the_tag_exists_or_the_hash_is_bad() {
    let (sim, client, hash) = sim_with_repo().await;
    let mut events = sim.subscribe();
    let (status, tag) = create(
        &client,
        &sim,
        json!({"name": "stg1.2.3", "target": {"hash": hash}}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(tag["name"], "stg1.2.3");
    assert_eq!(tag["type"], "tag");
    assert_eq!(tag["target"]["hash"], json!(hash));
    // A lightweight tag made through the API has no message, date or tagger.
    assert!(tag["message"].is_null() && tag["date"].is_null() && tag["tagger"].is_null());
    let event = events.try_recv().unwrap();
    assert_eq!(
        (event.repo.as_str(), event.name.as_str()),
        ("payments-api", "stg1.2.3")
    );

    let (status, error) = create(
        &client,
        &sim,
        json!({"name": "stg1.2.3", "target": {"hash": hash}}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["message"], "tag \"stg1.2.3\" already exists");

    for bad in [hash[..12].to_string(), random_hash(), "zz".repeat(20)] {
        let (status, error) = create(
            &client,
            &sim,
            json!({"name": "stg1.2.4", "target": {"hash": bad}}),
        )
        .await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(error["type"], "error");
    }
    let (status, _) = create(&client, &sim, json!({"target": {"hash": hash}})).await;
    assert_eq!(status, 400);
    let (status, _) = create(&client, &sim, json!({"name": "stg1.2.4"})).await;
    assert_eq!(status, 400);
    assert_eq!(sim.tags("payments-api"), [("stg1.2.3".to_string(), hash)]);
}

#[tokio::test]
async fn a_tag_made_by_hand_just_before_the_create_wins() {
    let (sim, client, hash) = sim_with_repo().await;
    sim.race_next_create("payments-api", "stg1.0.1", &hash);
    let (status, error) = create(
        &client,
        &sim,
        json!({"name": "stg1.0.1", "target": {"hash": hash}}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["message"], "tag \"stg1.0.1\" already exists");
    let (status, _) = create(
        &client,
        &sim,
        json!({"name": "stg1.0.2", "target": {"hash": hash}}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(sim.tags("payments-api").len(), 2);
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_401() {
    let (sim, client, hash) = sim_with_repo().await;
    let url = format!(
        "{}/repositories/acme/payments-api/commit/{hash}",
        sim.base_url()
    );
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    let response = client.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(response.status(), 401);

    let basic = BitbucketSim::start(
        "acme",
        SimAuth::Basic {
            user: "me@acme.example".into(),
            password: "api-token".into(),
        },
    )
    .await
    .unwrap();
    basic.add_commit("payments-api", &hash, "x");
    let url = format!(
        "{}/repositories/acme/payments-api/commit/{hash}",
        basic.base_url()
    );
    let ok = client
        .get(&url)
        .basic_auth("me@acme.example", Some("api-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let bad = client
        .get(&url)
        .basic_auth("me@acme.example", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
}

#[tokio::test]
async fn injected_faults_come_in_order_then_service_resumes() {
    let (sim, client, hash) = sim_with_repo().await;
    let url = format!(
        "{}/repositories/acme/payments-api/commit/{hash}",
        sim.base_url()
    );
    sim.faults().push(Fault::Status(503), 1);
    sim.faults().push(
        Fault::RateLimited {
            retry_after_secs: 7,
        },
        1,
    );
    sim.faults()
        .push(Fault::Delay(Duration::from_millis(200)), 1);

    let (status, error) = get(&client, &url).await;
    assert_eq!(status, 503);
    assert_eq!(error["type"], "error");

    let response = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");

    let started = Instant::now();
    let (status, _) = get(&client, &url).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));

    let (status, _) = get(&client, &url).await;
    assert_eq!(status, 200);
    assert_eq!(sim.request_count(), 4);
    assert_eq!(
        sim.requests()[0].path,
        format!("/2.0/repositories/acme/payments-api/commit/{hash}")
    );
    assert_eq!(
        sim.requests()[0].header("authorization"),
        Some("Bearer tok3n")
    );

    sim.faults().set_outage(Some(500));
    assert_eq!(get(&client, &url).await.0, 500);
    assert_eq!(get(&client, &url).await.0, 500);
    sim.faults().set_outage(None);
    assert_eq!(get(&client, &url).await.0, 200);
    sim.reset_requests();
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn a_dropped_connection_is_a_transport_error_not_a_response() {
    let (sim, client, hash) = sim_with_repo().await;
    let url = format!(
        "{}/repositories/acme/payments-api/commit/{hash}",
        sim.base_url()
    );
    // Warm a keep-alive connection first, so the drop happens on a reused one too.
    assert_eq!(get(&client, &url).await.0, 200);
    sim.faults().push(Fault::Drop, 1);
    let error = client
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap_err();
    assert!(error.status().is_none(), "{error:?}");
    assert_eq!(get(&client, &url).await.0, 200);
    let fresh = reqwest::Client::new();
    sim.faults().push(Fault::Drop, 1);
    assert!(fresh.get(&url).bearer_auth(TOKEN).send().await.is_err());
}

#[tokio::test]
async fn the_server_stops_when_the_last_handle_is_dropped() {
    let (sim, client, hash) = sim_with_repo().await;
    let url = format!(
        "{}/repositories/acme/payments-api/commit/{hash}",
        sim.base_url()
    );
    assert_eq!(get(&client, &url).await.0, 200);
    let clone = sim.clone();
    drop(sim);
    assert_eq!(get(&client, &url).await.0, 200);
    drop(clone);
    tokio::task::yield_now().await;
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
}
