//! SPEC 13 and 14, the rest of the road: Jira write-back (comments, the transition, and what
//! Jira refuses), promotion by a Jira status, `build = true`, soak, a freeze window that opens
//! after the request, and one promotion however many ask for it at once.

use std::time::Duration;

use hoist::config::ConfigFile;
use hoist::domain::{DeploymentStatus, ReleaseId, Via};
use hoist_cli::stack::{APPROVERS, Stack, StackOptions, road};
use serde_json::Value;

use crate::util::{WAIT, stack_with};

fn writing_back() -> StackOptions {
    StackOptions {
        jira_write: true,
        ..StackOptions::default()
    }
}

async fn deployments(s: &Stack, id: i64) -> Vec<hoist::domain::Deployment> {
    s.hoist.store.deployments(ReleaseId(id)).await.unwrap()
}

/// Waits for the release's deployment into `env` to reach `status`.
async fn reaches(
    s: &Stack,
    id: i64,
    env: &str,
    status: DeploymentStatus,
) -> hoist::domain::Deployment {
    let wait = async {
        loop {
            if let Some(d) = deployments(s, id)
                .await
                .into_iter()
                .find(|d| d.env.as_str() == env && d.status == status)
            {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("release {id} did not reach {status} in {env}"))
}

async fn events(s: &Stack, id: i64) -> Vec<(String, String)> {
    s.hoist
        .store
        .events(ReleaseId(id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.step, e.message))
        .collect()
}

/// The text of an Atlassian Document: every text node, in order.
fn adf_text(doc: &Value) -> String {
    match doc {
        Value::Object(o) => match (o.get("text"), o.get("content")) {
            (Some(Value::String(t)), _) => t.clone(),
            (_, Some(c)) => adf_text(c),
            _ => String::new(),
        },
        Value::Array(a) => a.iter().map(adf_text).collect(),
        _ => String::new(),
    }
}

async fn post(s: &Stack, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", s.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn jira_hears_of_each_step_and_the_issue_moves_to_done_in_prod() {
    let s = stack_with(writing_back(), road).await;
    s.jira_cloud.add_issue("PAY-500", "In Progress");
    let commit = s.commit("PAY-500 change");
    let (_, body) = s.assign("PAY-500", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    reaches(&s, id, "qa", DeploymentStatus::Deployed).await;
    let button = s.button("Approve prod", WAIT).await.unwrap();
    assert_eq!(
        s.click(&button, APPROVERS[0], Default::default())
            .await
            .unwrap()
            .0,
        200
    );
    let prod = reaches(&s, id, "prod", DeploymentStatus::Deployed).await;
    s.settle(WAIT).await.unwrap();

    let comments: Vec<String> = s
        .jira_cloud
        .comments("PAY-500")
        .iter()
        .map(adf_text)
        .collect();
    // The default comment_on: tagged, then deployed in each environment.
    assert_eq!(comments.len(), 4, "{comments:#?}");
    assert!(comments[0].contains("tagged stg"), "{comments:#?}");
    for (i, env) in ["stg", "qa", "prod"].iter().enumerate() {
        let c = &comments[i + 1];
        assert!(c.contains(" deployed"), "{c}");
        assert!(c.contains(env) || c.contains(prod.tag.as_str()), "{c}");
    }
    assert!(comments[3].contains(prod.tag.as_str()), "{comments:#?}");
    // The document names the commit with a link.
    let first = &s.jira_cloud.comments("PAY-500")[0];
    assert!(first.to_string().contains("\"type\":\"link\""), "{first}");

    assert_eq!(
        s.jira_cloud.issue_status("PAY-500").as_deref(),
        Some("Done")
    );
    assert_eq!(
        s.jira_cloud.transitions_applied("PAY-500").len(),
        1,
        "moved once"
    );
    let timeline = events(&s, id).await;
    assert!(
        timeline
            .iter()
            .any(|(step, m)| step == "jira_transitioned" && m.contains("to `Done`")),
        "{timeline:#?}"
    );
    // Basic auth with the account's email and API token, never anything else.
    let requests = s.jira_cloud.requests();
    assert!(requests.len() >= 7, "{}", requests.len());
    s.finish().await.unwrap();
}

#[tokio::test]
async fn what_jira_refuses_is_a_warning_and_the_release_goes_on() {
    let s = stack_with(writing_back(), |c: &mut ConfigFile| {
        road(c);
        let stg = c.projects[0].environments.get_mut("stg").unwrap();
        stg.jira_transition = Some("Archived".into());
    })
    .await;
    // PAY-501 is unknown to Jira (404); PAY-502 exists, but its workflow has no "Archived".
    s.jira_cloud.add_issue("PAY-502", "In Progress");
    let mut ids = Vec::new();
    for issue in ["PAY-501", "PAY-502"] {
        let commit = s.commit(&format!("{issue} change"));
        let (_, body) = s.assign(issue, &commit).await.unwrap();
        ids.push(body["release"].as_i64().unwrap());
    }
    for id in &ids {
        reaches(&s, *id, "qa", DeploymentStatus::Deployed).await;
    }
    s.settle(WAIT).await.unwrap();

    let unknown = events(&s, ids[0]).await;
    let warnings: Vec<_> = unknown
        .iter()
        .filter(|(s, _)| s == "jira_warning")
        .collect();
    assert!(!warnings.is_empty(), "{unknown:#?}");
    assert!(
        warnings
            .iter()
            .any(|(_, m)| m.contains("PAY-501 does not exist")),
        "{warnings:#?}"
    );
    let known = events(&s, ids[1]).await;
    let no_transition = known
        .iter()
        .find(|(s, _)| s == "jira_warning")
        .unwrap_or_else(|| panic!("{known:#?}"));
    assert!(
        no_transition.1.contains("no transition named `Archived`"),
        "{no_transition:?}"
    );
    assert!(
        no_transition.1.contains("Ship it (to Done)"),
        "{no_transition:?}"
    );
    assert_eq!(
        s.jira_cloud.issue_status("PAY-502").as_deref(),
        Some("In Progress")
    );
    assert!(
        !s.jira_cloud.comments("PAY-502").is_empty(),
        "comments still made"
    );
    let slack_warnings = s
        .slack
        .messages()
        .iter()
        .filter(|m| m.text.as_deref().is_some_and(|t| t.contains("Archived")))
        .count();
    assert_eq!(slack_warnings, 1, "Slack told once");
    // Neither release suffered.
    for id in &ids {
        let r = s
            .hoist
            .store
            .release(ReleaseId(*id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.status.as_str(), "deployed", "{:?}", r.error);
    }
    // The comments on the unknown issue gave up: the only failed jobs are Jira's.
    let failed = s
        .hoist
        .store
        .jobs_in_state(hoist::domain::JobState::Failed)
        .await
        .unwrap();
    assert!(!failed.is_empty());
    assert!(
        failed.iter().all(|j| j.kind.starts_with("jira_")),
        "{failed:#?}"
    );
    s.expect_leftover_jobs();
    s.finish().await.unwrap();
}

/// `qa` takes releases when their Jira issue moves to "Ready for QA".
fn qa_on_status(c: &mut ConfigFile) {
    road(c);
    let qa = c.projects[0].environments.get_mut("qa").unwrap();
    qa.auto = false;
    qa.promote_on_status = Some("Ready for QA".into());
    c.sources.jira.secret = Some(hoist::config::SecretRef::Value("jira-hook-secret".into()));
}

#[tokio::test]
async fn an_issue_moved_to_ready_for_qa_promotes_its_release() {
    let s = stack_with(StackOptions::default(), qa_on_status).await;
    let commit = s.commit("PAY-510 change");
    let (_, body) = s.assign("PAY-510", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    s.wait_release(id, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();
    let hook = format!("{}/hooks/jira", s.url);
    let send = async |from: &str, to: &str, webhook: &str| {
        let mut event = hoist_sim::jira::issue_updated_status("PAY-510", from, to);
        event["user"] = serde_json::json!({"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Mia Krystof"});
        s.jira
            .send_native(&hook, Some("jira-hook-secret"), &event, webhook)
            .await
            .unwrap()
    };
    // Another status: recorded, nothing more.
    let (status, answer) = send("To Do", "In Progress", "wh-1").await;
    assert_eq!(status, 202, "{answer}");
    assert!(
        answer
            .to_string()
            .contains("no environment promotes on status"),
        "{answer}"
    );

    let (status, answer) = send("In Progress", "Ready for QA", "wh-2").await;
    assert_eq!(status, 202, "{answer}");
    let qa = reaches(&s, id, "qa", DeploymentStatus::Deployed).await;
    assert_eq!(
        (qa.requested_by.as_deref(), qa.requested_via),
        (Some("Mia Krystof"), Some(Via::Jira))
    );
    // Jira redelivers the same webhook, and someone moves the issue there again: once.
    assert_eq!(send("In Progress", "Ready for QA", "wh-2").await.0, 200);
    assert_eq!(send("In QA", "ready for qa", "wh-3").await.0, 202);
    s.settle(WAIT).await.unwrap();
    let qa_triggers = s
        .gate
        .triggers()
        .iter()
        .filter(|t| t.source == "payments-api-qa")
        .count();
    assert_eq!(qa_triggers, 1);

    // An issue whose release cannot go (its stg deploy failed): said in its timeline and in
    // Slack.
    s.gate.set_outcome(
        "payments-api-stg",
        hoist_sim::spinnaker::Outcome::FailAt {
            pipeline: "deploy-staging".into(),
            stage: "Deploy (Manifest)".into(),
            after: Duration::from_millis(50),
        },
    );
    let commit = s.commit("PAY-511 change");
    let (_, body) = s.assign("PAY-511", &commit).await.unwrap();
    let early = body["release"].as_i64().unwrap();
    s.wait_release(early, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();
    let mut event = hoist_sim::jira::issue_updated_status("PAY-511", "To Do", "Ready for QA");
    event["user"] = serde_json::json!({"displayName": "Mia Krystof"});
    let (status, _) = s
        .jira
        .send_native(&hook, Some("jira-hook-secret"), &event, "wh-4")
        .await
        .unwrap();
    assert_eq!(status, 202);
    s.settle(WAIT).await.unwrap();
    let timeline = events(&s, early).await;
    let refused = timeline
        .iter()
        .find(|(step, _)| step == "promotion_refused")
        .unwrap_or_else(|| panic!("{timeline:#?}"));
    assert!(
        refused
            .1
            .contains("Mia Krystof moved PAY-511 to `Ready for QA`, but release")
            && refused.1.contains("not deployed in `stg`"),
        "{refused:?}"
    );
    let told = s.slack.messages().iter().any(|m| {
        m.text
            .as_deref()
            .is_some_and(|t| t.contains("Mia Krystof moved PAY-511"))
    });
    assert!(told, "Slack told");
    s.finish().await.unwrap();
}

#[tokio::test]
async fn with_build_true_the_promoted_tag_is_built_before_its_deploy() {
    // CircleCI names the tag a tag pipeline built (`pipeline.vcs.tag`): how Hoist tells the
    // promotion's build from the first one, on the same commit.
    let options = StackOptions {
        include_tag: true,
        ..StackOptions::default()
    };
    let s = stack_with(options, |c: &mut ConfigFile| {
        road(c);
        c.projects[0].environments.get_mut("qa").unwrap().build = true;
    })
    .await;
    let commit = s.commit("PAY-520 change");
    let (_, body) = s.assign("PAY-520", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let qa = reaches(&s, id, "qa", DeploymentStatus::Deployed).await;
    let timeline = events(&s, id).await;
    let steps: Vec<&str> = timeline.iter().map(|(s, _)| s.as_str()).collect();
    let tagged = steps.iter().position(|s| *s == "promotion_tagged");
    let built = steps.iter().position(|s| *s == "promotion_built");
    let triggered = steps.iter().position(|s| *s == "promotion_triggered");
    assert!(
        tagged < built && built < triggered && tagged.is_some(),
        "{steps:?}"
    );
    let trigger = s
        .gate
        .triggers()
        .into_iter()
        .find(|t| t.source == "payments-api-qa")
        .unwrap();
    assert_eq!(
        trigger.parameters["image"],
        qa.tag.as_str(),
        "its own build"
    );
    // CircleCI built both tags: stg's and qa's.
    let built = s
        .circleci
        .sent()
        .iter()
        .filter(|w| w.body.contains(qa.tag.as_str()))
        .count();
    assert!(built > 0, "CircleCI built {}", qa.tag);

    // A failed build of the promoted tag: the promotion fails, nothing is triggered.
    let commit = s.commit("PAY-521 change");
    let (_, body) = s.assign("PAY-521", &commit).await.unwrap();
    let second = body["release"].as_i64().unwrap();
    s.wait_release(second, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();
    s.circleci.set_outcome("failed");
    let failed = reaches(&s, second, "qa", DeploymentStatus::Failed).await;
    assert!(
        failed
            .error
            .as_deref()
            .unwrap_or("")
            .contains("failed: not deployed"),
        "{:?}",
        failed.error
    );
    s.settle(WAIT).await.unwrap();
    let qa_triggers = s
        .gate
        .triggers()
        .iter()
        .filter(|t| t.source == "payments-api-qa")
        .count();
    assert_eq!(qa_triggers, 1, "only the first release's");
    s.finish().await.unwrap();
}

#[tokio::test]
async fn a_release_soaks_before_it_moves_on() {
    let s = stack_with(StackOptions::default(), |c: &mut ConfigFile| {
        road(c);
        c.projects[0].environments.get_mut("qa").unwrap().soak_secs = 2;
    })
    .await;
    let commit = s.commit("PAY-530 change");
    let (_, body) = s.assign("PAY-530", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let stg = reaches(&s, id, "stg", DeploymentStatus::Deployed).await;
    let (status, answer) = post(
        &s,
        &format!("/api/releases/{id}/promote"),
        serde_json::json!({"env": "qa", "by": "jess"}),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must soak in `stg` until"),
        "{answer}"
    );
    let qa = reaches(&s, id, "qa", DeploymentStatus::Deployed).await;
    let waited = qa.created_at - stg.finished_at.unwrap();
    assert!(waited >= 2_000, "promoted {waited} ms after the stg deploy");
    assert_eq!(qa.requested_via, Some(Via::Auto));
    s.finish().await.unwrap();
}

#[tokio::test]
async fn a_freeze_window_opening_after_the_request_calls_the_promotion_off() {
    // A window open now, from an hour ago to an hour from now (UTC).
    let now = chrono::Utc::now();
    let at = |t: chrono::DateTime<chrono::Utc>| t.format("%a %H:%M").to_string();
    let window = format!(
        "{} - {} UTC",
        at(now - chrono::Duration::hours(1)),
        at(now + chrono::Duration::hours(1))
    );
    let w = window.clone();
    let s = stack_with(StackOptions::default(), move |c: &mut ConfigFile| {
        road(c);
        let qa = c.projects[0].environments.get_mut("qa").unwrap();
        qa.auto = false;
        qa.freeze = vec![w];
    })
    .await;
    let commit = s.commit("PAY-540 change");
    let (_, body) = s.assign("PAY-540", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    reaches(&s, id, "stg", DeploymentStatus::Deployed).await;

    // Asked now: refused, saying which window.
    let (status, answer) = post(
        &s,
        &format!("/api/releases/{id}/promote"),
        serde_json::json!({"env": "qa", "by": "jess"}),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("freeze window `{window}` is open")),
        "{message}"
    );

    // Asked at a time outside the window (as if the request came before it opened): the
    // promotion is recorded, and its job, running inside the window, calls it off.
    let r = s.hoist.store.release(ReleaseId(id)).await.unwrap().unwrap();
    let qa = &s.hoist.config.projects[0].environments["qa"];
    let before = (now + chrono::Duration::hours(2)).timestamp_millis();
    let changes = hoist::core::promote::request(
        &s.hoist.config,
        qa,
        &r,
        &deployments(&s, id).await,
        &[],
        "jess",
        Via::Api,
        before,
    )
    .unwrap();
    s.hoist.store.apply(changes).await.unwrap();
    let off = reaches(&s, id, "qa", DeploymentStatus::Failed).await;
    assert!(
        off.error
            .as_deref()
            .unwrap_or("")
            .contains("called off: freeze window"),
        "{:?}",
        off.error
    );
    let told = async {
        while !s
            .slack
            .messages()
            .iter()
            .any(|m| m.text.as_deref().is_some_and(|t| t.contains("called off")))
        {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    tokio::time::timeout(WAIT, told).await.expect("Slack told");
    assert!(
        !s.bitbucket
            .tags(hoist_cli::stack::REPO)
            .iter()
            .any(|(t, _)| t.starts_with("qa")),
        "no tag made"
    );
    assert!(
        s.gate
            .triggers()
            .iter()
            .all(|t| t.source != "payments-api-qa")
    );
    // The look again when the window closes is queued for then.
    s.expect_leftover_jobs();
    s.finish().await.unwrap();
}

#[tokio::test]
async fn twenty_requests_at_once_make_one_promotion() {
    let s = stack_with(StackOptions::default(), |c: &mut ConfigFile| {
        road(c);
        c.projects[0].environments.get_mut("qa").unwrap().auto = false;
    })
    .await;
    let commit = s.commit("PAY-550 change");
    let (_, body) = s.assign("PAY-550", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    reaches(&s, id, "stg", DeploymentStatus::Deployed).await;
    let asks = (0..20).map(|i| {
        let s = &s;
        async move {
            post(
                s,
                &format!("/api/releases/{id}/promote"),
                serde_json::json!({"env": "qa", "by": format!("person-{i}")}),
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(asks).await;
    let started = answers.iter().filter(|(s, _)| *s == 202).count();
    let already = answers
        .iter()
        .filter(|(s, a)| *s == 200 && a["promotion"] == "already")
        .count();
    assert_eq!((started, already), (1, 19), "{answers:?}");
    reaches(&s, id, "qa", DeploymentStatus::Deployed).await;
    s.settle(WAIT).await.unwrap();
    let qa_tags = s
        .bitbucket
        .tags(hoist_cli::stack::REPO)
        .into_iter()
        .filter(|(t, _)| t.starts_with("qa"))
        .count();
    assert_eq!(qa_tags, 1);
    let triggers = s
        .gate
        .triggers()
        .iter()
        .filter(|t| t.source == "payments-api-qa")
        .count();
    assert_eq!(triggers, 1);
    s.finish().await.unwrap();
}

/// Two replicas on one PostgreSQL store are asked for the same promotion at once, ten times
/// each: one promotion, one tag, one trigger. (SQLite is one process's store: PostgreSQL only.)
#[tokio::test]
async fn two_replicas_asked_at_once_promote_once() {
    use crate::process::{Hoist, Sims, eventually, free_port};
    let Some(store) = crate::util::store_url().await else {
        println!("skipped: two replicas need PostgreSQL (HOIST_TEST_PG)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sims = Sims::start().await;
    let qa = r#"
[projects.environments.qa]
tag = "qa{major}.{minor}.{patch}"
promote_from = "stg"
spinnaker_source = "payments-api-qa"
parameters = { tag = "{tag}", image = "{build_tag}" }
"#;
    let (la, lb) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let config = |listen: &str| sims.config_toml(listen, &store, 20) + qa;
    let a = Hoist::start(dir.path(), "a", &config(&la), &la).await;
    let b = Hoist::start(dir.path(), "b", &config(&lb), &lb).await;
    let _ci = sims.circleci(&a.url, Duration::from_millis(50));
    let commit = sims.commit("PAY-560 change");
    let (code, body) = a.assign(&sims, "PAY-560", &commit).await;
    assert_eq!(code, 202, "{body}");
    let id = body["release"].as_i64().unwrap();
    let deployed = eventually(WAIT, async || a.release(id).await["status"] == "deployed").await;
    assert!(deployed, "{}", a.release(id).await);

    let client = reqwest::Client::new();
    let asks = (0..20).map(|i| {
        let url = if i % 2 == 0 { &a.url } else { &b.url };
        let request = client
            .post(format!("{url}/api/releases/{id}/promote"))
            .json(&serde_json::json!({"env": "qa", "by": format!("person-{i}")}));
        async move {
            let resp = request.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    });
    let answers = futures_util::future::join_all(asks).await;
    let started = answers.iter().filter(|(s, _)| *s == 202).count();
    let already = answers
        .iter()
        .filter(|(s, a)| *s == 200 && a["promotion"] == "already")
        .count();
    assert_eq!((started, already), (1, 19), "{answers:?}");
    let triggered = eventually(WAIT, async || {
        sims.gate
            .triggers()
            .iter()
            .any(|t| t.source == "payments-api-qa")
    })
    .await;
    assert!(triggered);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let qa_triggers = sims
        .gate
        .triggers()
        .iter()
        .filter(|t| t.source == "payments-api-qa")
        .count();
    assert_eq!(qa_triggers, 1);
    let qa_tags = sims
        .bitbucket
        .tags(hoist_cli::stack::REPO)
        .into_iter()
        .filter(|(t, _)| t.starts_with("qa"))
        .count();
    assert_eq!(qa_tags, 1);
}

#[tokio::test]
async fn a_tag_of_that_name_on_another_commit_fails_the_promotion_and_says_so() {
    let s = stack_with(StackOptions::default(), |c: &mut ConfigFile| {
        road(c);
        c.projects[0].environments.get_mut("qa").unwrap().auto = false;
    })
    .await;
    let commit = s.commit("PAY-570 change");
    let (_, body) = s.assign("PAY-570", &commit).await.unwrap();
    let id = body["release"].as_i64().unwrap();
    let r = s
        .wait_release(id, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();
    let qa_tag = format!("qa{}", r.tag.unwrap().as_str().trim_start_matches("stg"));
    let other = s.commit("someone else's work");
    s.bitbucket.add_tag(hoist_cli::stack::REPO, &qa_tag, &other);
    let (status, answer) = post(
        &s,
        &format!("/api/releases/{id}/promote"),
        serde_json::json!({"env": "qa", "by": "jess"}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let failed = reaches(&s, id, "qa", DeploymentStatus::Failed).await;
    let error = failed.error.unwrap_or_default();
    assert!(
        error.contains(&format!(
            "tag {qa_tag} already exists on commit {}",
            &other[..12]
        )),
        "{error}"
    );
    s.settle(WAIT).await.unwrap();
    assert!(
        s.gate
            .triggers()
            .iter()
            .all(|t| t.source != "payments-api-qa")
    );
    let tags = s.bitbucket.tags(hoist_cli::stack::REPO);
    assert!(
        tags.contains(&(qa_tag.clone(), other.clone())),
        "never renumbered or moved"
    );
    let timeline = events(&s, id).await;
    assert!(
        timeline
            .iter()
            .any(|(step, m)| step == "promotion_failed" && m.contains("already exists")),
        "{timeline:#?}"
    );
    let told = s.slack.messages().iter().any(|m| {
        m.text
            .as_deref()
            .is_some_and(|t| t.contains("promotion into qa failed"))
    });
    assert!(told, "Slack told");
    s.expect_leftover_jobs();
    s.finish().await.unwrap();
}
