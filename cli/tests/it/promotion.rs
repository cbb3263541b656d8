//! SPEC 13: promotion from one environment to the next, and its approvals. (Issue 21, under way:
//! the store's part so far.)

use hoist::domain::{Approval, EnvName, Via};

use crate::util::{WAIT, stack};

#[tokio::test]
async fn an_approval_counts_once_per_person() {
    let s = stack().await;
    let commit = s.commit("PAY-400 change");
    let (_, body) = s.assign("PAY-400", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let r = s
        .wait_release(id, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();
    let approval = |by: &str, via| Approval {
        release: r.id,
        env: EnvName::parse("prod").unwrap(),
        by: by.into(),
        via,
        at: r.received_at + 5,
    };
    assert!(
        s.hoist
            .store
            .approve(approval("U1", Via::Slack))
            .await
            .unwrap()
    );
    assert!(
        !s.hoist
            .store
            .approve(approval("U1", Via::Api))
            .await
            .unwrap(),
        "counted once"
    );
    assert!(
        s.hoist
            .store
            .approve(approval("U2", Via::Cli))
            .await
            .unwrap()
    );
    let given = s.hoist.store.approvals(r.id).await.unwrap();
    assert_eq!(
        given,
        [approval("U1", Via::Slack), approval("U2", Via::Cli)]
    );
    s.finish().await.unwrap();
}

/// The stack's project with a `qa` environment that receives releases deployed in `stg`.
fn with_qa(c: &mut hoist::config::ConfigFile) {
    let qa = hoist::config::file::EnvConfig {
        tag: "qa{major}.{minor}.{patch}".into(),
        promote_from: Some("stg".into()),
        spinnaker_source: Some("payments-api-qa".into()),
        spinnaker_application: Some("payments-api".into()),
        parameters: [("tag", "{tag}"), ("image", "{build_tag}")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    c.projects[0].environments.insert("qa".into(), qa);
}

#[tokio::test]
async fn a_promotion_tags_the_same_version_on_the_same_commit_and_deploys_it_once() {
    let s = crate::util::stack_with(hoist_cli::stack::StackOptions::default(), with_qa).await;
    let commit = s.commit("PAY-401 change");
    let (_, body) = s.assign("PAY-401", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let r = s
        .wait_release(id, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();
    assert_eq!(
        r.status,
        hoist::domain::ReleaseStatus::Deployed,
        "{:?}",
        r.error
    );
    let qa = &s.hoist.config.projects[0].environments["qa"];
    let deployments = s.hoist.store.deployments(r.id).await.unwrap();
    let changes = hoist::core::promote::request(
        &s.hoist.config,
        qa,
        &r,
        &deployments,
        &[],
        "jess",
        Via::Api,
        hoist::domain::now_ms(),
    )
    .unwrap();
    s.hoist.store.apply(changes.clone()).await.unwrap();
    // Asked again with what it knew then: the store refuses a second one.
    assert!(s.hoist.store.apply(changes).await.is_err(), "happens once");

    let promoted = async {
        loop {
            let all = s.hoist.store.deployments(r.id).await.unwrap();
            if let Some(d) = all
                .iter()
                .find(|d| d.env.as_str() == "qa" && d.status.as_str() == "deployed")
            {
                return d.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let d = tokio::time::timeout(WAIT, promoted)
        .await
        .expect("qa deployed");
    let stg_tag = r.tag.clone().unwrap();
    let qa_tag = format!("qa{}", stg_tag.as_str().trim_start_matches("stg"));
    assert_eq!(d.tag.as_str(), qa_tag, "one version everywhere");
    assert_eq!(
        (d.requested_by.as_deref(), d.requested_via),
        (Some("jess"), Some(Via::Api))
    );
    let tags = s.bitbucket.tags(hoist_cli::stack::REPO);
    assert!(
        tags.contains(&(qa_tag.clone(), r.full_commit.clone().unwrap().to_string())),
        "{tags:?}"
    );
    let triggers = s.gate.triggers();
    let qa_trigger: Vec<_> = triggers
        .iter()
        .filter(|t| t.source == "payments-api-qa")
        .collect();
    assert_eq!(qa_trigger.len(), 1);
    assert_eq!(qa_trigger[0].parameters["tag"], qa_tag.as_str());
    assert_eq!(
        qa_trigger[0].parameters["image"],
        stg_tag.as_str(),
        "the artifact built for stg"
    );
    let r = s.hoist.store.release(r.id).await.unwrap().unwrap();
    assert_eq!(
        r.status,
        hoist::domain::ReleaseStatus::Deployed,
        "the release's own status is its first environment's"
    );
    s.finish().await.unwrap();
}

/// The stack's project with `qa` (from `stg`) and `prod` (from `qa`, one approval of U1 or U2).
fn with_qa_and_prod(c: &mut hoist::config::ConfigFile) {
    with_qa(c);
    let prod = hoist::config::file::EnvConfig {
        tag: "v{major}.{minor}.{patch}".into(),
        promote_from: Some("qa".into()),
        approvals: 1,
        approvers: vec!["U1".into(), "U2".into()],
        spinnaker_source: Some("payments-api-prod".into()),
        spinnaker_application: Some("payments-api".into()),
        ..Default::default()
    };
    c.projects[0].environments.insert("prod".into(), prod);
}

async fn ask(
    s: &hoist_cli::stack::Stack,
    id: i64,
    what: &str,
    env: &str,
    by: &str,
) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/releases/{id}/{what}", s.url))
        .json(&serde_json::json!({"env": env, "by": by}))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn deployed_in(s: &hoist_cli::stack::Stack, id: i64, env: &str) -> hoist::domain::Deployment {
    let wait = async {
        loop {
            let all = s
                .hoist
                .store
                .deployments(hoist::domain::ReleaseId(id))
                .await
                .unwrap();
            if let Some(d) = all
                .iter()
                .find(|d| d.env.as_str() == env && d.status.as_str() == "deployed")
            {
                return d.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("not deployed in {env}"))
}

#[tokio::test]
async fn the_api_promotes_to_qa_and_an_approval_carries_it_to_prod() {
    let s =
        crate::util::stack_with(hoist_cli::stack::StackOptions::default(), with_qa_and_prod).await;
    let commit = s.commit("PAY-402 change");
    let (_, body) = s.assign("PAY-402", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    s.wait_release(id, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();

    let (status, answer) = ask(&s, id, "promote", "prod", "jess").await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "not_promotable");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not deployed in `qa`"),
        "{answer}"
    );
    let (status, answer) = ask(&s, id, "promote", "stg", "jess").await;
    assert_eq!(status, 409, "{answer}");
    let (status, answer) = ask(&s, id, "promote", "uat", "jess").await;
    assert_eq!(status, 404, "{answer}");

    let (status, answer) = ask(&s, id, "promote", "qa", "jess").await;
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = ask(&s, id, "promote", "qa", "sam").await;
    assert_eq!(
        (status, answer["promotion"].as_str()),
        (200, Some("already")),
        "{answer}"
    );
    deployed_in(&s, id, "qa").await;

    let (status, answer) = ask(&s, id, "approve", "prod", "U9").await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], "not_approver");
    let (status, answer) = ask(&s, id, "approve", "prod", "U1").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["promotion"], "started", "{answer}");
    let (_, again) = ask(&s, id, "approve", "prod", "U1").await;
    assert_eq!(again["counted"], false, "{again}");
    let d = deployed_in(&s, id, "prod").await;
    assert!(d.tag.as_str().starts_with('v'), "{}", d.tag);
    assert_eq!(
        s.gate
            .triggers()
            .iter()
            .filter(|t| t.source == "payments-api-prod")
            .count(),
        1
    );
    s.finish().await.unwrap();
}

/// `qa` promoted as soon as stg is deployed; `prod` after one approval of U1 or U2.
fn auto_qa_and_approved_prod(c: &mut hoist::config::ConfigFile) {
    with_qa_and_prod(c);
    c.projects[0].environments.get_mut("qa").unwrap().auto = true;
}

#[tokio::test]
async fn qa_follows_by_itself_and_a_click_approves_prod() {
    let s = crate::util::stack_with(
        hoist_cli::stack::StackOptions::default(),
        auto_qa_and_approved_prod,
    )
    .await;
    let commit = s.commit("PAY-403 change");
    let (_, body) = s.assign("PAY-403", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let qa = deployed_in(&s, id, "qa").await;
    assert_eq!(qa.requested_via, Some(Via::Auto), "nobody asked: auto");
    let button = s.button("Approve prod", WAIT).await.unwrap();
    assert_eq!(button.value, format!("{id}/prod"));

    // Someone not among the approvers: told alone, nothing changes.
    let (status, _) = s.click(&button, "U9", Default::default()).await.unwrap();
    assert_eq!(status, 200);
    s.settle(WAIT).await.unwrap();
    let told = s.slack.responses();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].ephemeral);
    assert!(
        told[0].body["text"]
            .as_str()
            .unwrap()
            .contains("`U9` is not among the approvers"),
        "{:?}",
        told[0].body
    );
    assert!(
        s.hoist
            .store
            .approvals(hoist::domain::ReleaseId(id))
            .await
            .unwrap()
            .is_empty()
    );

    // An approver: the message says so, and prod follows.
    let (status, _) = s.click(&button, "U1", Default::default()).await.unwrap();
    assert_eq!(status, 200);
    let prod = deployed_in(&s, id, "prod").await;
    assert_eq!(
        (prod.requested_by.as_deref(), prod.requested_via),
        (Some("U1"), Some(Via::Slack))
    );
    s.settle(WAIT).await.unwrap();
    let updated = s
        .slack
        .responses()
        .into_iter()
        .find(|r| !r.ephemeral)
        .expect("the message updated");
    let blocks = updated.body["blocks"].to_string();
    assert!(
        blocks.contains("Approved for prod by <@U1>; promotion started"),
        "{blocks}"
    );
    assert!(
        !blocks.contains("\"actions\""),
        "the button is gone: {blocks}"
    );

    // Slack retries the same click: counted once, answered once.
    let first = s
        .slack
        .clicks()
        .into_iter()
        .find(|c| c.user_id == "U1")
        .unwrap()
        .id;
    let retry = hoist_sim::slack::ClickOptions {
        retry: Some((1, "http_timeout")),
        same_as: Some(first),
        ..Default::default()
    };
    let answers = s.slack.responses().len();
    assert_eq!(s.click(&button, "U1", retry).await.unwrap().0, 200);
    s.settle(WAIT).await.unwrap();
    assert_eq!(s.slack.responses().len(), answers, "no second answer");
    assert_eq!(
        s.hoist
            .store
            .approvals(hoist::domain::ReleaseId(id))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.gate
            .triggers()
            .iter()
            .filter(|t| t.source == "payments-api-prod")
            .count(),
        1
    );
    s.finish().await.unwrap();
}

#[tokio::test]
async fn forged_stale_or_misshapen_clicks_change_nothing() {
    let s =
        crate::util::stack_with(hoist_cli::stack::StackOptions::default(), with_qa_and_prod).await;
    let commit = s.commit("PAY-404 change");
    let (_, body) = s.assign("PAY-404", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let button = s.button("Promote to qa", WAIT).await.unwrap();
    let url = format!("{}/hooks/slack", s.url);
    let forged = s
        .slack
        .click(&url, "not-the-secret", &button, "U1", Default::default())
        .await
        .unwrap();
    assert_eq!(forged.0, 401, "{}", forged.1);
    let stale = hoist_sim::slack::ClickOptions {
        timestamp: Some(hoist::domain::now_ms() / 1000 - 600),
        ..Default::default()
    };
    let (status, answer) = s.click(&button, "U1", stale).await.unwrap();
    assert_eq!(status, 401, "{answer}");
    assert!(answer.contains("replay"), "{answer}");
    let http = reqwest::Client::new();
    let json = http
        .post(&url)
        .json(&serde_json::json!({"payload": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status().as_u16(), 415);
    // Signed, but not Slack's shape.
    let ts = (hoist::domain::now_ms() / 1000).to_string();
    let body = "text=hello";
    let sig = hoist_sim::slack::sign(&s.options.slack_signing_secret, &ts, body);
    let odd = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(odd.status().as_u16(), 400);
    let all = s
        .hoist
        .store
        .deployments(hoist::domain::ReleaseId(id))
        .await
        .unwrap();
    assert!(
        all.iter().all(|d| d.env.as_str() == "stg"),
        "nothing promoted"
    );

    // The real button promotes.
    assert_eq!(
        s.click(&button, "U1", Default::default()).await.unwrap().0,
        200
    );
    // A click naming a release that does not exist (signed as Slack signs): told so, through
    // response_url.
    let mut payload = s.slack.clicks().last().unwrap().payload.clone();
    payload["actions"][0]["value"] = "999/qa".into();
    let form = format!(
        "payload={}",
        url::form_urlencoded::byte_serialize(payload.to_string().as_bytes()).collect::<String>()
    );
    let ts = (hoist::domain::now_ms() / 1000).to_string();
    let sig = hoist_sim::slack::sign(&s.options.slack_signing_secret, &ts, &form);
    let gone = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", sig)
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status().as_u16(), 200);
    deployed_in(&s, id, "qa").await;
    s.settle(WAIT).await.unwrap();
    let told: Vec<String> = s
        .slack
        .responses()
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    assert!(
        told.iter().any(|t| t.contains("no release 999")),
        "{told:?}"
    );
    assert!(
        told.iter()
            .any(|t| t.contains("Promotion to qa started by <@U1>")),
        "{told:?}"
    );
    s.finish().await.unwrap();
}

#[tokio::test]
async fn a_rollback_redeploys_the_release_before_with_its_own_tag() {
    let s = crate::util::stack_with(hoist_cli::stack::StackOptions::default(), with_qa).await;
    let mut ids = Vec::new();
    for issue in ["PAY-410", "PAY-411"] {
        let commit = s.commit(issue);
        let (_, body) = s.assign(issue, &commit).await.unwrap();
        let id = body["release"].as_i64().unwrap();
        s.wait_release(id, WAIT, |r| r.status.is_terminal())
            .await
            .unwrap();
        ids.push(id);
    }
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
    let answer: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(answer["release"], ids[0]);
    let wait = async {
        loop {
            let all = s
                .hoist
                .store
                .deployments(hoist::domain::ReleaseId(ids[0]))
                .await
                .unwrap();
            if let Some(d) = all
                .iter()
                .find(|d| d.kind.as_str() == "rollback" && d.status.as_str() == "deployed")
            {
                return d.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let d = tokio::time::timeout(WAIT, wait).await.expect("rolled back");
    assert_eq!(
        Some(&d.tag),
        s.hoist
            .store
            .release(hoist::domain::ReleaseId(ids[0]))
            .await
            .unwrap()
            .unwrap()
            .tag
            .as_ref()
    );
    let nothing = reqwest::Client::new()
        .post(format!(
            "{}/api/projects/payments-api/environments/qa/rollback",
            s.url
        ))
        .json(&serde_json::json!({"by": "jess"}))
        .send()
        .await
        .unwrap();
    assert_eq!(nothing.status().as_u16(), 409);
    s.finish().await.unwrap();
}
