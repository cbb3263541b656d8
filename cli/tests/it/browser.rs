//! The dashboard in a real browser (SPEC 15): headless Chromium from the Debian packages, driven
//! through its chromedriver by `fantoccini` (WebDriver: a small, stable protocol, and Debian's
//! chromedriver always matches Debian's chromium; a DevTools-protocol crate pins the protocol's
//! version instead). A person signs in, filters the list, opens a release, approves and promotes
//! it with the buttons, reads the DORA page and looks at it on a phone; forged and cross-site
//! posts and signed-out visits get nothing.
//!
//! `scripts/test.sh` installs `chromium` and `chromium-driver` when they are missing. Without
//! them these tests fail under it and in CI (`HOIST_TEST_BROWSER` or `CI` set), and are skipped,
//! saying so, under a bare `cargo test`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hoist::config::file::ConfigFile;
use hoist::config::secret::SecretRef;
use hoist::domain::{ReleaseId, Via};
use hoist_cli::stack::{Stack, StackOptions, road};
use serde_json::{Value, json};

use crate::util::stack_with;

const TOKEN: &str = "dashboard-api-token-7a1c";
const PERSON: &str = "jess";
const FORM: &str = "application/x-www-form-urlencoded";

fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// chromedriver on a free port, killed with the test.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(names: &[&str]) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    for name in names {
        for dir in path.split(':').chain(["/usr/bin", "/usr/lib/chromium"]) {
            let p = std::path::Path::new(dir).join(name);
            if p.is_file() {
                return Some(p.display().to_string());
            }
        }
    }
    None
}

/// The browser, or `None` (skip) when it is not installed outside CI.
async fn browser() -> Option<(Driver, Client)> {
    let (Some(driver), Some(chromium)) = (
        find(&["chromedriver"]),
        find(&["chromium", "chromium-browser", "google-chrome"]),
    ) else {
        assert!(
            std::env::var_os("CI").is_none() && std::env::var_os("HOIST_TEST_BROWSER").is_none(),
            "chromium and chromedriver are not installed: scripts/test.sh installs them (apt-get install chromium chromium-driver)"
        );
        println!(
            "skipped: chromium and chromedriver are not installed (scripts/test.sh installs them)"
        );
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let d = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"],
        }),
    );
    let mut last = None;
    for _ in 0..100 {
        match ClientBuilder::rustls()
            .expect("rustls")
            .capabilities(caps.clone())
            .connect(&d.url)
            .await
        {
            Ok(c) => return Some((d, c)),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not take a session: {last:?}");
}

/// The road of SPEC 13 with an API token set (so people sign in) and [`PERSON`] among prod's
/// approvers.
async fn dashboard_stack() -> Stack {
    stack_with(StackOptions::default(), |c: &mut ConfigFile| {
        road(c);
        c.server.api_token = Some(SecretRef::Value(TOKEN.into()));
        let envs = &mut c.projects[0].environments;
        envs.get_mut("qa").unwrap().auto = false;
        envs.get_mut("prod").unwrap().approvers.push(PERSON.into());
    })
    .await
}

/// A release deployed in stg, waiting for someone to promote it to qa (the dashboard's stack
/// turns qa's `auto` off), and then, when `to_qa`, promoted there through the API and deployed.
async fn release(stack: &Stack, issue: &str, to_qa: bool) -> i64 {
    let commit = stack.commit(&format!("{issue}: a change"));
    let (status, body) = stack.assign(issue, &commit).await.unwrap();
    assert_eq!(status, 202, "{body}");
    let id = body["release"].as_i64().unwrap();
    let stg = stack
        .wait_deployment(id, "stg", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(stg.status.as_str(), "deployed");
    if to_qa {
        let r = reqwest::Client::new()
            .post(format!("{}/api/releases/{id}/promote", stack.url))
            .bearer_auth(TOKEN)
            .json(&json!({"env": "qa", "by": "ci"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let qa = stack
            .wait_deployment(id, "qa", Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(qa.status.as_str(), "deployed");
    }
    id
}

/// Clicks what `at` finds and waits for the page it leads to (the old page's root goes stale).
async fn click(c: &Client, at: Locator<'_>) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    c.find(at).await.unwrap().click().await.unwrap();
    for _ in 0..200 {
        if old.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the click led nowhere");
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn path(c: &Client) -> String {
    let u = c.current_url().await.unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

async fn rows(c: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for r in c.find_all(Locator::Css("tr.release")).await.unwrap() {
        out.push(r.attr("data-id").await.unwrap().unwrap_or_default());
    }
    out
}

/// What sticks out of the window (a phone would scroll sideways), or `None`.
async fn overflows(c: &Client) -> Option<String> {
    let v = c
        .execute(
            "if (document.documentElement.scrollWidth <= window.innerWidth) return null;
             return Array.from(document.querySelectorAll('body *'))
               .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
               .slice(0, 5).map(e => e.tagName + '.' + e.className).join(', ') || 'the page';",
            vec![],
        )
        .await
        .unwrap();
    v.as_str().map(str::to_string)
}

async fn release_json(stack: &Stack, id: i64) -> Value {
    reqwest::Client::new()
        .get(format!("{}/api/releases/{id}", stack.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn ms(rfc3339: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

/// "2.7 s", "816 ms", "1.5 min" back into seconds.
fn seconds(shown: &str) -> f64 {
    let (n, unit) = shown.split_once(' ').unwrap();
    let n: f64 = n.parse().unwrap();
    n * match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        other => panic!("unit {other}"),
    }
}

#[tokio::test]
async fn a_person_signs_in_filters_approves_promotes_and_reads_dora() {
    let stack = dashboard_stack().await;
    let first = release(&stack, "PAY-201", false).await;
    let second = release(&stack, "PAY-202", true).await;
    let Some((_driver, c)) = browser().await else {
        stack.finish().await.unwrap();
        return;
    };
    let base = &stack.url;

    // Signed out: sent to sign-in, never shown data.
    c.goto(&format!("{base}/releases/{first}")).await.unwrap();
    assert_eq!(path(&c).await, "/signin");
    assert!(!c.source().await.unwrap().contains("PAY-201"));

    // A wrong token is refused; the right one signs in.
    c.find(Locator::Id("signin-name"))
        .await
        .unwrap()
        .send_keys(PERSON)
        .await
        .unwrap();
    c.find(Locator::Id("signin-token"))
        .await
        .unwrap()
        .send_keys("wrong")
        .await
        .unwrap();
    click(&c, Locator::Id("signin-submit")).await;
    assert!(text(&c, "#signin-problem").await.contains("token"));
    c.find(Locator::Id("signin-name"))
        .await
        .unwrap()
        .send_keys(PERSON)
        .await
        .unwrap();
    c.find(Locator::Id("signin-token"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    click(&c, Locator::Id("signin-submit")).await;
    assert_eq!(path(&c).await, "/");
    assert_eq!(text(&c, "#viewer").await, PERSON);
    assert!(text(&c, "#flash").await.contains("Signed in as jess"));
    let cookie = c.get_named_cookie("hoist_session").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert!(!cookie.value().contains(TOKEN));

    // The list, newest first, then filtered as a person filters it.
    assert_eq!(rows(&c).await, [second.to_string(), first.to_string()]);
    let pick = |id: &'static str, value: &'static str| {
        let c = c.clone();
        async move {
            c.find(Locator::Id(id))
                .await
                .unwrap()
                .select_by_value(value)
                .await
                .unwrap();
        }
    };
    pick("filter-status", "deploy_failed").await;
    click(&c, Locator::Id("filter-apply")).await;
    assert!(path(&c).await.contains("status=deploy_failed"));
    assert!(rows(&c).await.is_empty());
    assert!(c.source().await.unwrap().contains("No release matches"));
    pick("filter-status", "").await;
    pick("filter-env", "prod").await;
    click(&c, Locator::Id("filter-apply")).await;
    assert!(rows(&c).await.is_empty(), "nothing is in prod yet");
    pick("filter-env", "qa").await;
    click(&c, Locator::Id("filter-apply")).await;
    assert_eq!(
        rows(&c).await,
        [second.to_string()],
        "only the second is in qa"
    );
    pick("filter-env", "stg").await;
    pick("filter-project", "payments-api").await;
    pick("filter-status", "deployed").await;
    click(&c, Locator::Id("filter-apply")).await;
    assert_eq!(rows(&c).await, [second.to_string(), first.to_string()]);

    // Open the first release: its road, and links to Jira, the commit and the build.
    click(&c, Locator::Css(&format!("a[href='/releases/{first}']"))).await;
    assert_eq!(path(&c).await, format!("/releases/{first}"));
    assert!(text(&c, "#env-stg").await.contains("deployed"));
    assert!(text(&c, "#env-qa").await.contains("not yet"));
    assert!(text(&c, "#env-prod").await.contains("not yet"));
    let source = c.source().await.unwrap();
    assert!(source.contains("/commits/"), "a link to the commit");
    assert!(!source.contains(TOKEN));

    // Promote to qa with its button: it starts, and goes on to deployed.
    click(&c, Locator::Id("promote-qa")).await;
    let flash = text(&c, "#flash").await;
    assert!(flash.contains("promotion to qa started"), "{flash}");
    let qa = stack
        .wait_deployment(first, "qa", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(qa.status.as_str(), "deployed");
    assert_eq!(
        (qa.requested_by.as_deref(), qa.requested_via),
        (Some(PERSON), Some(Via::Dashboard))
    );
    c.refresh().await.unwrap();
    assert!(text(&c, "#env-qa").await.contains("deployed"));
    assert!(
        text(&c, "#env-qa")
            .await
            .contains("asked by jess (via dashboard)")
    );
    assert!(
        c.find(Locator::Id("promote-qa")).await.is_err(),
        "done there"
    );

    // Promote to prod before the approval: refused, saying why; then approve: it starts.
    click(&c, Locator::Id("promote-prod")).await;
    let flash = text(&c, "#flash").await;
    assert!(flash.starts_with("Not done"), "{flash}");
    assert!(flash.contains("approv"), "{flash}");
    click(&c, Locator::Id("approve-prod")).await;
    let flash = text(&c, "#flash").await;
    assert!(flash.contains("jess approved prod"), "{flash}");
    assert!(flash.contains("promotion to prod started"), "{flash}");
    let prod = stack
        .wait_deployment(first, "prod", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(prod.status.as_str(), "deployed");
    let approvals = stack.hoist.store.approvals(ReleaseId(first)).await.unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(
        (approvals[0].by.as_str(), approvals[0].via),
        (PERSON, Via::Dashboard)
    );
    c.refresh().await.unwrap();
    assert!(text(&c, "#env-prod").await.contains("deployed"));
    assert!(text(&c, "#approvals").await.contains("dashboard"));

    // The second release: approve, and the promotion starts at once.
    c.goto(&format!("{base}/releases/{second}")).await.unwrap();
    click(&c, Locator::Id("approve-prod")).await;
    assert!(
        text(&c, "#flash")
            .await
            .contains("promotion to prod started")
    );
    // Under way: nothing more to ask there, so no buttons.
    assert!(c.find(Locator::Id("promote-prod")).await.is_err());
    assert!(c.find(Locator::Id("approve-prod")).await.is_err());
    stack
        .wait_deployment(second, "prod", Duration::from_secs(30))
        .await
        .unwrap();

    // DORA for prod: figures against what the test computes from the releases' JSON.
    let mut leads = Vec::new();
    for id in [first, second] {
        let r = release_json(&stack, id).await;
        let d = r["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["env"] == "prod" && d["status"] == "deployed")
            .unwrap()
            .clone();
        leads.push((ms(&d["finished_at"]) - ms(&r["received_at"])) as f64 / 1000.0);
    }
    let median = (leads[0] + leads[1]) / 2.0;
    c.goto(&format!(
        "{base}/dora?project=payments-api&env=prod&days=30"
    ))
    .await
    .unwrap();
    let panel = "#dora-payments-api-prod";
    let figures = c
        .find_all(Locator::Css(&format!("{panel} .figure")))
        .await
        .unwrap();
    let mut shown = std::collections::HashMap::new();
    for f in figures {
        let name = f
            .find(Locator::Css(".name"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = f
            .find(Locator::Css(".value"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let detail = f
            .find(Locator::Css(".detail"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        shown.insert(name, (value, detail));
    }
    assert_eq!(
        shown["Deployment frequency"].0,
        format!("{:.2} / day", 2.0 / 30.0)
    );
    assert_eq!(shown["Deployment frequency"].1, "2 deploys in 30 days");
    let lead = seconds(&shown["Lead time from ticket"].0);
    assert!(
        (lead - median).abs() <= 0.05 * median.max(1.0),
        "lead time shown {lead} s, computed {median} s"
    );
    assert_eq!(shown["Change failure rate"].0, "0.0 %");
    assert_eq!(shown["Time to restore"].0, "-");
    let bars = c
        .find_all(Locator::Css(&format!("{panel} svg rect.bar")))
        .await
        .unwrap();
    assert!(!bars.is_empty(), "the charts draw the days");

    // On a phone: nothing wider than the screen.
    c.set_window_size(390, 844).await.unwrap();
    for page in [
        "/".to_string(),
        format!("/releases/{first}"),
        "/dora".to_string(),
    ] {
        c.goto(&format!("{base}{page}")).await.unwrap();
        let wide = overflows(&c).await;
        assert!(
            wide.is_none(),
            "{page} scrolls sideways at 390 px: {wide:?}"
        );
    }

    // Sign out: the cookie no longer shows anything.
    click(&c, Locator::Css("form[action='/signout'] button")).await;
    assert_eq!(path(&c).await, "/signin");
    c.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(path(&c).await, "/signin");
    c.close().await.unwrap();
    stack.finish().await.unwrap();
}

#[tokio::test]
async fn forged_and_cross_site_posts_change_nothing() {
    let stack = dashboard_stack().await;
    let id = release(&stack, "PAY-301", true).await;
    let base = &stack.url;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Sign in as a browser would, then read the release page's form token.
    let signed = http
        .post(format!("{base}/signin"))
        .header("origin", base.as_str())
        .header("content-type", FORM)
        .body(form(&[("name", PERSON), ("token", TOKEN)]))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let set = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("hoist_session="))
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let page = http
        .get(format!("{base}/releases/{id}"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();

    let approve = |origin: Option<&str>, csrf: Option<&str>| {
        let mut r = http
            .post(format!("{base}/releases/{id}/approve"))
            .header("cookie", &cookie);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        let mut fields = vec![("env", "prod")];
        if let Some(t) = csrf {
            fields.push(("csrf", t));
        }
        r.header("content-type", FORM).body(form(&fields)).send()
    };
    // From another origin, with the right token and cookie: refused.
    let r = approve(Some("http://evil.example"), Some(&csrf))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // From this origin without the token, or with another: refused.
    assert_eq!(approve(Some(base), None).await.unwrap().status(), 403);
    assert_eq!(
        approve(Some(base), Some("00ff")).await.unwrap().status(),
        403
    );
    // Neither Origin nor Sec-Fetch-Site (not a browser's form): refused.
    assert_eq!(approve(None, Some(&csrf)).await.unwrap().status(), 403);
    assert!(
        stack
            .hoist
            .store
            .approvals(ReleaseId(id))
            .await
            .unwrap()
            .is_empty()
    );
    // The real form: done.
    let ok = approve(Some(base), Some(&csrf)).await.unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(
        stack
            .hoist
            .store
            .approvals(ReleaseId(id))
            .await
            .unwrap()
            .len(),
        1
    );

    // Signed out (no cookie, or a forged one): sent to sign-in, never data.
    for c in ["", "hoist_session=amVzcw.99999999999999.00"] {
        let r = http
            .get(format!("{base}/releases/{id}"))
            .header("cookie", c)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/signin");
        assert!(!r.text().await.unwrap().contains("PAY-301"));
    }
    // Bad parameters: 400 naming them, pages as the API.
    for (q, param) in [
        ("/dora?days=100000", "days"),
        ("/dora?days=-1", "days"),
        ("/dora?project=nope", "project"),
        ("/?before=abc", "before"),
        ("/?status=lost", "status"),
        ("/?env=moon", "env"),
    ] {
        let r = http
            .get(format!("{base}{q}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
        assert!(
            r.text().await.unwrap().contains(&format!("`{param}`")),
            "{q}"
        );
    }
    stack.expect_leftover_jobs();
    stack.finish().await.unwrap();
}

/// `hoist demo --keep-running` leaves the dashboard up with the demo's release in it.
#[tokio::test]
async fn the_demo_keeps_its_dashboard_up() {
    if crate::util::store_url().await.is_some() {
        println!("skipped: the demo runs on SQLite");
        return;
    }
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args([
            "demo",
            "--keep-running",
            "--build-secs",
            "0.2",
            "--deploy-secs",
            "0.3",
        ])
        .env_remove("HOIST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run the demo");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("Dashboard: ") {
                return rest.split_whitespace().next().unwrap().to_string();
            }
        }
        panic!("the demo printed no dashboard");
    })
    .await
    .expect("the demo's dashboard line");
    // Still up after the story: the release's page and the DORA page answer with its data.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status(), 200, "{url}");
    let page = page.text().await.unwrap();
    assert!(
        page.contains("PAY-123") && page.contains("env-prod"),
        "{page}"
    );
    let base = url.split("/releases/").next().unwrap();
    let dora = reqwest::get(format!("{base}/dora?env=prod")).await.unwrap();
    assert_eq!(dora.status(), 200);
    assert!(dora.text().await.unwrap().contains("1 deploy in 30 days"));
    // Ctrl-C ends it cleanly (its temporary store is removed).
    let pid = child.id().unwrap().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    assert!(
        ended.is_ok_and(|s| s.is_ok()),
        "the demo did not stop on Ctrl-C"
    );
}
