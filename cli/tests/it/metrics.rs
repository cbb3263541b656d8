//! SPEC 15: `GET /metrics`, scraped as Prometheus would after real releases: every family with
//! its TYPE, counters that move, no ticket, commit or tag in any label, and access as for `/api`.

use std::collections::BTreeMap;
use std::time::Duration;

use hoist::config::{ConfigFile, SecretRef};
use hoist_cli::stack::{Stack, StackOptions};

use crate::util::{WAIT, stack, stack_with};

/// One sample line: the series (name and labels) and its value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The text's samples, and its `# TYPE` lines as family -> type.
fn parse(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let (family, kind) = t.split_once(' ').unwrap();
            types.insert(family.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once("=\"").unwrap();
                (k.to_string(), v.trim_end_matches('"').to_string())
            })
            .collect();
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value: value.parse().unwrap(),
        });
    }
    (samples, types)
}

/// The value of the series `name` whose labels include `with` (0 when there is none).
fn value(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

async fn scrape(s: &Stack) -> (u16, String, String) {
    let resp = reqwest::get(format!("{}/metrics", s.url)).await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

/// Scrapes until `ready` holds of the samples (counts are made just after each commit).
async fn scrape_until(s: &Stack, ready: impl Fn(&[Sample]) -> bool) -> (Vec<Sample>, String) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _, text) = scrape(s).await;
        assert_eq!(status, 200, "{text}");
        let (samples, _) = parse(&text);
        if ready(&samples) {
            return (samples, text);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn stg_then_qa(c: &mut ConfigFile) {
    let qa = hoist::config::file::EnvConfig {
        tag: "qa{major}.{minor}.{patch}".into(),
        promote_from: Some("stg".into()),
        auto: true,
        spinnaker_source: Some("payments-api-qa".into()),
        spinnaker_application: Some("payments-api".into()),
        ..Default::default()
    };
    c.projects[0].environments.insert("qa".into(), qa);
}

/// A ticket for a new commit, deployed in stg and promoted into qa by itself.
async fn released(s: &Stack, issue: &str) -> (i64, String) {
    let commit = s.commit(&format!("{issue} change"));
    let (status, body) = s.assign(issue, &commit).await.unwrap();
    assert_eq!(status, 202, "{body}");
    let id = body["release"].as_i64().unwrap();
    s.wait_deployment(id, "qa", WAIT).await.unwrap();
    (id, commit)
}

#[tokio::test]
async fn metrics_count_a_road_with_every_family_and_no_release_in_a_label() {
    let s = stack_with(StackOptions::default(), stg_then_qa).await;
    let (status, ct, text) = scrape(&s).await;
    assert_eq!(status, 200, "{text}");
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    // Before anything happened: the queue and the build, families with no series yet are left out.
    let (_, types) = parse(&text);
    assert_eq!(types.len(), 2, "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains(&format!(
            "hoist_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );

    let (_, first) = released(&s, "PAY-801").await;
    // A redelivered push and a hook without its token.
    let tag = s.commit("hand-made");
    for _ in 0..2 {
        let (status, _) = s.push_tag("stg9.0.0", &tag, "uuid-801").await.unwrap();
        assert!(status == 200 || status == 202);
    }
    let json = [("content-type", "application/json")];
    let (status, _) = crate::util::post(&s, "/hooks/jira", &json, &b"{}"[..]).await;
    assert_eq!(status, 401);
    s.settle(WAIT).await.unwrap();
    let deployed = |env: &'static str| {
        move |x: &[Sample]| {
            value(
                x,
                "hoist_releases_total",
                &[("environment", env), ("outcome", "deployed")],
            )
        }
    };
    let (samples, text) = scrape_until(&s, |x| deployed("qa")(x) >= 1.0).await;
    let (_, types) = parse(&text);
    for (family, kind) in [
        ("hoist_webhooks", "counter"),
        ("hoist_releases", "counter"),
        ("hoist_step_duration_seconds", "histogram"),
        ("hoist_lead_time_seconds", "histogram"),
        ("hoist_jobs", "gauge"),
        ("hoist_outbound_requests", "counter"),
        ("hoist_build", "info"),
    ] {
        assert_eq!(types.get(family).map(String::as_str), Some(kind), "{text}");
    }
    assert_eq!(deployed("stg")(&samples), 1.0, "{text}");
    let count = |name: &str, with: &[(&str, &str)]| value(&samples, name, with);
    assert_eq!(
        count(
            "hoist_webhooks_total",
            &[("source", "jira"), ("outcome", "accepted")]
        ),
        1.0
    );
    assert_eq!(
        count(
            "hoist_webhooks_total",
            &[("source", "jira"), ("outcome", "refused:unauthorized")]
        ),
        1.0
    );
    assert_eq!(
        count(
            "hoist_webhooks_total",
            &[("source", "bitbucket"), ("outcome", "duplicate")]
        ),
        1.0
    );
    assert!(count("hoist_webhooks_total", &[("source", "circleci")]) >= 2.0);
    for step in ["tag", "build", "deploy"] {
        assert!(
            count("hoist_step_duration_seconds_count", &[("step", step)]) >= 1.0,
            "{step}: {text}"
        );
    }
    assert_eq!(
        count("hoist_step_duration_seconds_count", &[("step", "deploy")]),
        2.0,
        "stg and qa"
    );
    for env in ["stg", "qa"] {
        assert_eq!(
            count(
                "hoist_lead_time_seconds_count",
                &[("project", "payments-api"), ("environment", env)]
            ),
            1.0,
            "{env}"
        );
    }
    for service in ["bitbucket", "spinnaker"] {
        assert!(
            count("hoist_outbound_requests_total", &[("service", service)]) >= 2.0,
            "{service}: {text}"
        );
    }
    assert!(count("hoist_outbound_requests_total", &[("status", "201")]) >= 1.0);
    assert_eq!(count("hoist_jobs", &[("state", "queued")]), 0.0);
    assert_eq!(count("hoist_jobs", &[("state", "running")]), 0.0);

    // Counters move with the next release.
    let (id, second) = released(&s, "PAY-802").await;
    s.settle(WAIT).await.unwrap();
    let (after, text) = scrape_until(&s, |x| deployed("qa")(x) >= 2.0).await;
    assert_eq!(deployed("stg")(&after), 2.0, "{text}");
    assert!(
        value(&after, "hoist_outbound_requests_total", &[])
            > count("hoist_outbound_requests_total", &[])
    );
    assert_eq!(
        value(
            &after,
            "hoist_webhooks_total",
            &[("source", "jira"), ("outcome", "accepted")]
        ),
        2.0
    );

    // Nothing of a release is a label: no issue, commit or tag.
    let r = s.hoist.store.release(id.into()).await.unwrap().unwrap();
    let mut forbidden = vec![
        "PAY-801".to_string(),
        "PAY-802".to_string(),
        "stg9.0.0".to_string(),
        r.tag.as_ref().unwrap().to_string(),
    ];
    for d in s.hoist.store.deployments(r.id).await.unwrap() {
        forbidden.push(d.tag.to_string());
    }
    for sha in [&first, &second, &tag] {
        forbidden.push(sha[..7].to_string());
    }
    for sample in &after {
        for (k, v) in &sample.labels {
            for f in &forbidden {
                assert!(!v.contains(f.as_str()), "{} {k}={v} holds {f}", sample.name);
            }
        }
    }
    s.finish().await.unwrap();
}

#[tokio::test]
async fn metrics_answer_as_the_api_does() {
    let s = stack().await;
    let proxied = reqwest::Client::new()
        .get(format!("{}/metrics", s.url))
        .header("x-forwarded-for", "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status().as_u16(), 403);
    s.finish().await.unwrap();

    let s = stack_with(StackOptions::default(), |c| {
        c.server.api_token = Some(SecretRef::Value("api-token-7c6d".into()));
    })
    .await;
    let (status, _, _) = scrape(&s).await;
    assert_eq!(status, 401);
    let resp = reqwest::Client::new()
        .get(format!("{}/metrics", s.url))
        .bearer_auth("api-token-7c6d")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("# TYPE hoist_jobs gauge")
    );
    s.finish().await.unwrap();
}
