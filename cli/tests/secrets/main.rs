//! SPEC 4.2: secrets never appear in logs (at any level), error bodies, the API, `check-config`
//! output, `Debug` output or panic messages.
//!
//! This test binary installs a TRACE-level subscriber for every target (Hoist, hyper, reqwest,
//! sqlx, ...) that writes to a buffer, and a panic hook that writes there too. It then plays the
//! suite's scenarios with known secret values: a whole ticket -> deploy pass with faults on the way
//! (so errors are logged and stored), native and Automation Jira webhooks, a Bitbucket push, the
//! read API, many bad requests, and `hoist check-config` on good and bad files. Every log line and
//! every answer is searched for every secret value.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hoist::config::SecretRef;
use hoist::domain::ReleaseStatus;
use hoist_cli::stack::{JIRA_TOKEN_HEADER, REPO, Stack, StackOptions};
use hoist_sim::Fault;

const WAIT: Duration = Duration::from_secs(30);

/// Everything logged or panicked in this process.
fn capture() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_ansi(false)
            .with_writer(move || Sink(writer.clone()))
            .init();
        let panics = buf.clone();
        std::panic::set_hook(Box::new(move |info| {
            let _ = writeln!(Sink(panics.clone()), "PANIC {info}");
            // The secrets here are the test's own: a failure may show them.
            eprintln!("PANIC {info}");
        }));
        buf
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every answer Hoist gave, as text (status, headers and body).
#[derive(Default)]
struct Answers(Vec<String>);

impl Answers {
    async fn send(&mut self, req: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = format!("{:?}", resp.headers());
        let text = resp.text().await.unwrap_or_default();
        self.0.push(format!("{status} {headers} {text}"));
        (status, serde_json::from_str(&text).unwrap_or_default())
    }
}

struct Secrets {
    options: StackOptions,
    jira_hook: String,
    api: String,
    gate: String,
    dir: tempfile::TempDir,
}

impl Secrets {
    fn new(slack_bot: bool) -> Self {
        let options = StackOptions {
            auto_build: true,
            slack_bot,
            jira_token: "S3CRET-jira-token-71a9".into(),
            circleci_secret: "S3CRET-circleci-secret-2b8c".into(),
            bitbucket_token: "S3CRET-bitbucket-token-9d0e".into(),
            slack_token: "xoxb-S3CRET-slack-token-4f1a".into(),
            bitbucket_hook_secret: "S3CRET-bitbucket-hook-5c2b".into(),
            ..StackOptions::default()
        };
        Self {
            options,
            jira_hook: "S3CRET-jira-hook-secret-6d3c".into(),
            api: "S3CRET-api-token-7e4d".into(),
            gate: "Bearer S3CRET-gate-header-8f5e".into(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn all(&self) -> Vec<String> {
        let o = &self.options;
        vec![
            o.jira_token.clone(),
            o.circleci_secret.clone(),
            o.bitbucket_token.clone(),
            o.slack_token.clone(),
            o.bitbucket_hook_secret.clone(),
            self.jira_hook.clone(),
            self.api.clone(),
            self.gate.clone(),
            // The secret part of a Slack incoming-webhook URL.
            hoist_sim::slack::WEBHOOK_PATH.into(),
        ]
    }

    /// A file holding `value`, as a `{ file = ... }` reference.
    fn file(&self, name: &str, value: &str) -> SecretRef {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        SecretRef::File(path.display().to_string())
    }

    async fn stack(&self) -> Stack {
        let jira_hook = self.file("jira-hook", &self.jira_hook);
        let api = self.file("api", &self.api);
        let gate = self.gate.clone();
        let s = Stack::start_with(self.options.clone(), |c| {
            c.sources.jira.secret = Some(jira_hook);
            c.server.api_token = Some(api);
            c.spinnaker
                .as_mut()
                .unwrap()
                .headers
                .insert("Authorization".into(), SecretRef::Value(gate));
        })
        .await
        .expect("stack starts");
        s.gate.require_header("Authorization", &self.gate);
        s
    }
}

/// A ticket becomes a deploy, through faults on Bitbucket, Gate and Slack.
async fn full_pass(s: &Stack, secrets: &Secrets, answers: &mut Answers) {
    let client = reqwest::Client::new();
    s.bitbucket.faults().push(Fault::Status(503), 1);
    s.gate.faults().push(Fault::Status(500), 1);
    s.slack.faults().push(Fault::Drop, 1);
    s.slack.faults().push(
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        1,
    );
    let commit = s.commit("PAY-90 change");
    let body = hoist_sim::jira::automation_body(REPO, &commit, "PAY-90", None);
    let (status, answer) = answers
        .send(
            client
                .post(format!("{}/hooks/jira?wait=10", s.url))
                .header("content-type", "application/json")
                .header(JIRA_TOKEN_HEADER, &secrets.options.jira_token)
                .json(&body),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["release"].as_i64().unwrap();
    let r = s
        .wait_release(id, WAIT, |r| r.status.is_terminal())
        .await
        .unwrap();
    assert_eq!(r.status, ReleaseStatus::Deployed, "{:?}", r.error);
    s.settle(WAIT).await.unwrap();

    // A native Jira webhook, signed.
    let other = s.commit("PAY-91");
    let fields = serde_json::json!({"customfield_10050": REPO, "customfield_10051": other});
    let native = hoist_sim::jira::issue_updated_assignee("PAY-91", fields, Some("me"));
    let (status, answer) = s
        .jira
        .send_native(
            &format!("{}/hooks/jira", s.url),
            Some(&secrets.jira_hook),
            &native,
            "wh-1",
        )
        .await
        .unwrap();
    answers.0.push(format!("{status} {answer}"));
    assert_eq!(status, 202, "{answer}");

    // A tag pushed by hand.
    let (status, answer) = s.push_tag("stg7.0.0", &other, "{push-1}").await.unwrap();
    answers.0.push(format!("{status} {answer}"));
    assert_eq!(status, 202, "{answer}");

    // The read API, with its token.
    for path in ["/api/releases".to_string(), format!("/api/releases/{id}")] {
        let (status, _) = answers
            .send(
                client
                    .get(format!("{}{path}", s.url))
                    .bearer_auth(&secrets.api),
            )
            .await;
        assert_eq!(status, 200);
    }
}

/// Requests that must fail, some carrying near-misses of the secrets.
async fn bad_requests(s: &Stack, secrets: &Secrets, answers: &mut Answers) {
    let client = reqwest::Client::new();
    let o = &secrets.options;
    let url = |p: &str| format!("{}{p}", s.url);
    let json = "application/json";
    let near = |v: &str| format!("{}x", &v[..v.len() - 1]);
    let body = br#"{"repo": "payments-api", "commit": "abcdef1"}"#.to_vec();
    let requests = vec![
        client
            .post(url("/hooks/jira"))
            .header("content-type", json)
            .body(body.clone()),
        client
            .post(url("/hooks/jira"))
            .header("content-type", json)
            .header(JIRA_TOKEN_HEADER, near(&o.jira_token))
            .body(body.clone()),
        client
            .post(url("/hooks/jira"))
            .header("content-type", json)
            .header(JIRA_TOKEN_HEADER, &o.jira_token)
            .header(JIRA_TOKEN_HEADER, "x")
            .body(body.clone()),
        client
            .post(url("/hooks/jira"))
            .header("content-type", json)
            .header("x-hub-signature", "sha256=00")
            .body(body.clone()),
        client
            .post(url("/hooks/jira"))
            .header("content-type", "text/plain")
            .header(JIRA_TOKEN_HEADER, &o.jira_token)
            .body(body.clone()),
        client
            .post(url("/hooks/jira"))
            .header("content-type", json)
            .header(JIRA_TOKEN_HEADER, &o.jira_token)
            .body("[".repeat(1000)),
        client
            .post(url("/hooks/jira"))
            .header("content-type", json)
            .header(JIRA_TOKEN_HEADER, &o.jira_token)
            .body(r#"{"repo": "nothing", "commit": "abcdef1"}"#),
        client
            .post(url("/hooks/circleci"))
            .header("content-type", json)
            .header(
                "circleci-signature",
                hoist_sim::circleci::sign(&near(&o.circleci_secret), b"{}"),
            )
            .body("{}"),
        client
            .post(url("/hooks/circleci"))
            .header("content-type", json)
            .header(
                "circleci-signature",
                hoist_sim::circleci::sign(&o.circleci_secret, b"{}"),
            )
            .body("{}"),
        client
            .post(url("/hooks/bitbucket"))
            .header("content-type", json)
            .header("x-event-key", "repo:push")
            .header(
                "x-hub-signature",
                hoist_sim::jira::sign(&near(&o.bitbucket_hook_secret), b"{}"),
            )
            .body("{}"),
        client
            .post(url("/hooks/bitbucket"))
            .header("content-type", json)
            .header("x-event-key", "repo:push")
            .header(
                "x-hub-signature",
                hoist_sim::jira::sign(&o.bitbucket_hook_secret, b"{}"),
            )
            .body("{}"),
        client.get(url("/api/releases")),
        client
            .get(url("/api/releases"))
            .bearer_auth(near(&secrets.api)),
        client
            .get(url("/api/releases/999"))
            .bearer_auth(&secrets.api),
        client
            .post(url("/api/jobs/999/retry"))
            .bearer_auth(&secrets.api),
        client.get(url("/nowhere")),
    ];
    for req in requests {
        let (status, answer) = answers.send(req).await;
        assert!((400..500).contains(&status), "{status} {answer}");
    }
}

/// `hoist check-config` on a good file (secrets in env and file references) and on bad ones.
fn check_config_outputs(secrets: &Secrets) -> Vec<String> {
    let o = &secrets.options;
    let token_file = secrets.dir.path().join("jira-token");
    std::fs::write(&token_file, &o.jira_token).unwrap();
    let good = format!(
        r#"
[server]
api_token = {{ env = "HOIST_SECRETS_TEST_API" }}
[bitbucket]
workspace = "acme"
auth = {{ bearer = {{ env = "HOIST_SECRETS_TEST_BB" }} }}
[sources.jira]
token_header = "X-Hoist-Token"
token = {{ file = "{}" }}
[sources.circleci]
secret = {{ env = "HOIST_SECRETS_TEST_CIRCLECI" }}
[[projects]]
name = "api"
repo = "api"
[projects.environments.stg]
tag = "stg{{major}}.{{minor}}.{{patch}}"
"#,
        token_file.display()
    );
    let inline = good.replace(
        "{ env = \"HOIST_SECRETS_TEST_CIRCLECI\" }",
        &format!("\"{}\"", o.circleci_secret),
    );
    let broken = format!(
        "{good}\n[sources.bitbucket]\nsecret = \"{}\" oops\n",
        o.bitbucket_hook_secret
    );
    let mut outputs = Vec::new();
    for (name, text, ok) in [
        ("good", &good, true),
        ("inline", &inline, false),
        ("broken", &broken, false),
    ] {
        let path = secrets.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
            .args(["--config", path.to_str().unwrap(), "check-config"])
            .env("HOIST_SECRETS_TEST_API", &secrets.api)
            .env("HOIST_SECRETS_TEST_BB", &o.bitbucket_token)
            .env("HOIST_SECRETS_TEST_CIRCLECI", &o.circleci_secret)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.success(), ok, "check-config {name}: {text}");
        outputs.push(text);
    }
    assert!(
        outputs[1].contains("inline secrets are refused"),
        "{}",
        outputs[1]
    );
    outputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_logs_answers_or_output() {
    let log = capture();
    tracing::trace!("capture installed");
    let mut answers = Answers::default();
    let mut everything_secret = Vec::new();
    let mut debug_views = Vec::new();
    for slack_bot in [true, false] {
        let secrets = Secrets::new(slack_bot);
        let s = secrets.stack().await;
        full_pass(&s, &secrets, &mut answers).await;
        bad_requests(&s, &secrets, &mut answers).await;
        debug_views.push(format!("{:?}", s.hoist.config));
        debug_views.extend(check_config_outputs(&secrets));
        everything_secret.extend(secrets.all());
        s.finish().await.unwrap();
    }
    let logs = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    let lines = logs.lines().count();
    println!(
        "searched {lines} log lines ({} KiB), {} answers and {} outputs for {} secret values",
        logs.len() / 1024,
        answers.0.len(),
        debug_views.len(),
        everything_secret.len()
    );
    // The capture really holds every level and the pipeline's own lines.
    for expected in [
        " TRACE ",
        " DEBUG ",
        " INFO ",
        " WARN ",
        "ticket accepted",
        "release tagged",
    ] {
        assert!(
            logs.contains(expected),
            "`{expected}` is not in the captured logs"
        );
    }
    assert!(!logs.contains("PANIC"), "something panicked");
    for secret in &everything_secret {
        for (what, text) in [
            ("logs", &logs),
            ("answers", &answers.0.join("\n")),
            ("outputs", &debug_views.join("\n")),
        ] {
            if let Some(at) = text.find(secret.as_str()) {
                let from = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let to = text[at..].find('\n').map_or(text.len(), |i| at + i);
                panic!("a secret is in the {what}: {}", &text[from..to]);
            }
        }
    }
}
