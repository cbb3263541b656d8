//! The chaos soak (issue 23, `scripts/soak.sh`): many releases go stg -> qa (by itself) -> prod
//! (approved by a Slack click) through real `hoist serve` processes on one store, while the soak
//! kills them with -9 and starts them again (on PostgreSQL, one of two replicas at a time), turns
//! Bitbucket, Gate, Slack, Jira and CircleCI's API off and on, loses CircleCI webhooks (found
//! again through its API) and redelivers others. At the end every release must be deployed in
//! prod with its issue in Done, and nothing may have happened twice: a tag, a deploy trigger, a
//! promotion, a Jira transition. No job may be left queued or running. It prints what it did and
//! what it found, and fails when something is wrong.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use hoist_sim::bitbucket::{BitbucketSim, SimAuth, random_hash};
use hoist_sim::circleci::{CircleCiSim, CircleCiSimConfig, SentWebhook};
use hoist_sim::jira::{JiraAuth, JiraCloudSim, JiraSim};
use hoist_sim::slack::SlackSim;
use hoist_sim::spinnaker::{GateSim, Outcome};
use serde_json::Value;

const WORKSPACE: &str = "acme";
pub(crate) const REPO: &str = "payments-api";
const SLUG: &str = "bitbucket/acme/payments-api";
const APPROVER: &str = "U0PRODLEAD";
const BITBUCKET_TOKEN: &str = "soak-bitbucket-token";
const SLACK_TOKEN: &str = "xoxb-soak-slack";
const SLACK_SIGNING: &str = "soak-slack-signing";
const JIRA_TOKEN: &str = "soak-jira-token";
const JIRA_API_TOKEN: &str = "soak-jira-api-token";
const CIRCLECI_SECRET: &str = "soak-circleci-secret";
const CIRCLECI_TOKEN: &str = "soak-circleci-token";
/// What each `hoist serve` finds in its environment, as in production.
const SECRETS: [(&str, &str); 7] = [
    ("SOAK_BITBUCKET_TOKEN", BITBUCKET_TOKEN),
    ("SOAK_SLACK_TOKEN", SLACK_TOKEN),
    ("SOAK_JIRA_API_TOKEN", JIRA_API_TOKEN),
    ("SOAK_CIRCLECI_TOKEN", CIRCLECI_TOKEN),
    ("SOAK_JIRA_TOKEN", JIRA_TOKEN),
    ("SOAK_CIRCLECI_SECRET", CIRCLECI_SECRET),
    ("SOAK_SLACK_SIGNING", SLACK_SIGNING),
];

pub struct Options {
    pub hoist: PathBuf,
    /// `None`: SQLite, one process. Some: PostgreSQL (a database made and dropped), two replicas.
    pub pg: Option<String>,
    pub releases: usize,
    /// How long the chaos lasts.
    pub chaos: Duration,
    pub seed: u64,
}

/// What the soak did.
#[derive(Default)]
struct Did {
    kills: usize,
    outages: BTreeMap<&'static str, usize>,
    lost_webhooks: usize,
    redeliveries: usize,
    clicks: usize,
}

/// A small deterministic generator, so that a run can be repeated.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub(crate) struct Sims {
    pub(crate) bitbucket: BitbucketSim,
    pub(crate) gate: GateSim,
    pub(crate) slack: SlackSim,
    pub(crate) jira: JiraCloudSim,
    pub(crate) circleci: CircleCiSim,
    pub(crate) circleci_api: hoist_sim::circleci::api::CircleCiApi,
}

impl Sims {
    /// Every vendor on loopback: Gate's deploys succeed after 300 ms, CircleCI builds every tag
    /// pushed to Bitbucket and sends its webhook to `hoist` (the first replica).
    pub(crate) async fn start(hoist: &str) -> anyhow::Result<Sims> {
        let bitbucket =
            BitbucketSim::start(WORKSPACE, SimAuth::Bearer(BITBUCKET_TOKEN.into())).await?;
        bitbucket.add_repo(REPO);
        let gate = GateSim::start().await?;
        gate.set_default_outcome(Outcome::Succeed {
            pipelines: vec!["deploy".into()],
            after: Duration::from_millis(300),
        });
        let slack = SlackSim::start(Some(SLACK_TOKEN.into())).await?;
        let jira = JiraCloudSim::start(JiraAuth::Basic {
            user: "hoist@acme.example".into(),
            token: JIRA_API_TOKEN.into(),
        })
        .await?;
        let circleci = CircleCiSim::new(CircleCiSimConfig {
            delay: Duration::from_millis(200),
            ..hoist_cli::stack::circleci_config(&format!("{hoist}/hooks/circleci"), CIRCLECI_SECRET)
        });
        let circleci_api = circleci.serve_api(CIRCLECI_TOKEN).await?;
        circleci.watch(bitbucket.subscribe());
        Ok(Sims {
            bitbucket,
            gate,
            slack,
            jira,
            circleci,
            circleci_api,
        })
    }
}

/// One `hoist serve` process.
pub(crate) struct Replica {
    pub(crate) name: String,
    pub(crate) config: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) url: String,
    pub(crate) child: Option<Child>,
}

impl Replica {
    pub(crate) fn start(&mut self, hoist: &Path) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(hoist)
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env("HOIST_LOG", "warn,hoist=info")
            .envs(SECRETS)
            .env_remove("HOIST_LISTEN")
            .env_remove("HOIST_STORE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("start {}", hoist.display()))?;
        self.child = Some(child);
        Ok(())
    }

    pub(crate) async fn ready(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", self.url)).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("{} did not become ready: {}", self.name, tail(&self.log));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn alive(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A replica's configuration; `lease_secs` None: Hoist's default lease.
pub(crate) fn config_toml(
    sims: &Sims,
    listen: &str,
    store: &str,
    lease_secs: Option<u64>,
) -> String {
    let lease = lease_secs
        .map(|s| format!("lease_secs = {s}"))
        .unwrap_or_default();
    format!(
        r#"
[server]
listen = "{listen}"
[server.limits]
rate_per_second = 0
[store]
url = "{store}"
[bitbucket]
base_url = "{bb}"
workspace = "{WORKSPACE}"
auth = {{ bearer = {{ env = "SOAK_BITBUCKET_TOKEN" }} }}
timeout_secs = 3
[spinnaker]
gate_url = "{gate}"
poll_min_ms = 100
poll_max_secs = 1
timeout_secs = 3
[slack]
bot_token = {{ env = "SOAK_SLACK_TOKEN" }}
channel = "C0SOAK"
api_url = "{slack}"
timeout_secs = 3
[jira]
base_url = "{jira}"
auth = {{ basic = {{ user = "hoist@acme.example", password = {{ env = "SOAK_JIRA_API_TOKEN" }} }} }}
timeout_secs = 3
[circleci]
base_url = "{circleci}"
token = {{ env = "SOAK_CIRCLECI_TOKEN" }}
build_timeout_secs = 4
timeout_secs = 3
[sources.jira]
token_header = "X-Hoist-Token"
token = {{ env = "SOAK_JIRA_TOKEN" }}
[sources.circleci]
secret = {{ env = "SOAK_CIRCLECI_SECRET" }}
[sources.slack]
signing_secret = {{ env = "SOAK_SLACK_SIGNING" }}
[worker]
concurrency = 4
{lease}
poll_ms = 100
retry = {{ base_ms = 100, max_delay_ms = 1000, max_attempts = 1000 }}

[[projects]]
name = "payments-api"
repo = "{REPO}"
circleci_project = "{SLUG}"
build_job = "build"
default_env = "stg"
[projects.environments.stg]
tag = "stg{{major}}.{{minor}}.{{patch}}"
spinnaker_source = "payments-api-stg"
parameters = {{ tag = "{{tag}}" }}
[projects.environments.qa]
tag = "qa{{major}}.{{minor}}.{{patch}}"
promote_from = "stg"
auto = true
spinnaker_source = "payments-api-qa"
parameters = {{ tag = "{{tag}}", image = "{{build_tag}}" }}
[projects.environments.prod]
tag = "v{{major}}.{{minor}}.{{patch}}"
promote_from = "qa"
approvals = 1
approvers = ["{APPROVER}"]
spinnaker_source = "payments-api-prod"
parameters = {{ tag = "{{tag}}", image = "{{build_tag}}" }}
jira_transition = "Done"
"#,
        bb = sims.bitbucket.base_url(),
        gate = sims.gate.url(),
        slack = sims.slack.api_url(),
        jira = sims.jira.base_url(),
        circleci = sims.circleci_api.base_url(),
    )
}

pub fn run(o: Options) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(soak(o))
}

async fn soak(o: Options) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let backend = if o.pg.is_some() { "postgres" } else { "sqlite" };
    let (store, db) = match &o.pg {
        Some(base) => {
            let name = format!("hoist_soak_{}", uuid::Uuid::new_v4().simple());
            admin(base, &format!("CREATE DATABASE {name}")).await?;
            (format!("{}/{name}", base.trim_end_matches('/')), Some(name))
        }
        None => (format!("sqlite://{}", dir.join("hoist.db").display()), None),
    };
    let result = soak_on(&o, &dir, backend, &store).await;
    if let (Some(base), Some(name)) = (&o.pg, db) {
        admin(
            base,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

pub(crate) fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hoist-soak-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

pub(crate) async fn admin(base: &str, sql: &str) -> anyhow::Result<()> {
    let url = format!("{}/postgres", base.trim_end_matches('/'));
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await?;
    drop(client);
    let _ = task.await;
    Ok(())
}

async fn soak_on(o: &Options, dir: &Path, backend: &str, store: &str) -> anyhow::Result<()> {
    let replicas_n = if o.pg.is_some() { 2 } else { 1 };
    let ports: Vec<u16> = (0..replicas_n)
        .map(|_| free_port())
        .collect::<Result<_, _>>()?;
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let sims = Sims::start(&urls[0]).await?;
    let mut replicas: Vec<Replica> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let listen = format!("127.0.0.1:{port}");
        let config = dir.join(format!("r{i}.toml"));
        std::fs::write(&config, config_toml(&sims, &listen, store, Some(3)))?;
        let mut r = Replica {
            name: format!("replica {i}"),
            config,
            log: dir.join(format!("r{i}.log")),
            url: urls[i].clone(),
            child: None,
        };
        r.start(&o.hoist)?;
        replicas.push(r);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    for r in &replicas {
        r.ready(&client).await?;
    }
    println!(
        "soak ({backend}, {} replica(s)): {} releases, {} s of chaos, seed {}",
        replicas.len(),
        o.releases,
        o.chaos.as_secs(),
        o.seed
    );

    let mut dice = Dice(o.seed | 1);
    let mut did = Did::default();
    let jira_hooks = JiraSim::new();
    let mut issues: Vec<String> = Vec::new();
    let spacing = o.chaos / (o.releases as u32).max(1);
    let started = Instant::now();
    let mut next_ticket = Instant::now();
    let mut clicked: BTreeSet<String> = BTreeSet::new();
    let mut down_until: HashMap<&'static str, Instant> = HashMap::new();
    let mut seen_webhooks = 0;
    let mut next_chaos = Instant::now() + Duration::from_millis(800);

    // The chaos: tickets arrive, approvers click, and things break.
    while started.elapsed() < o.chaos || issues.len() < o.releases {
        let now = Instant::now();
        if issues.len() < o.releases && now >= next_ticket {
            let issue = format!("SOAK-{}", issues.len() + 1);
            sims.jira.add_issue(&issue, "In Progress");
            let commit = random_hash();
            sims.bitbucket
                .add_commit(REPO, &commit, &format!("{issue}: a change"));
            send_ticket(&jira_hooks, &replicas, &issue, &commit).await?;
            issues.push(issue);
            next_ticket = now + spacing;
        }
        click_new_buttons(&sims, &replicas, &mut clicked, &mut did).await;
        // Webhooks CircleCI delivered: now and then one is sent again (a redelivery).
        let sent = sims.circleci.sent();
        for w in sent.iter().skip(seen_webhooks) {
            if w.status < 300 && dice.below(6) == 0 {
                redeliver(&sims.circleci, w).await;
                did.redeliveries += 1;
            }
        }
        seen_webhooks = sent.len();
        if now >= next_chaos && started.elapsed() < o.chaos {
            chaos(
                &mut dice,
                &sims,
                &mut replicas,
                &o.hoist,
                &client,
                &mut did,
                &mut down_until,
            )
            .await?;
            next_chaos = now + Duration::from_millis(600 + dice.below(900));
        }
        // Outages end.
        for (what, until) in down_until.clone() {
            if Instant::now() >= until {
                set_outage(&sims, what, false);
                down_until.remove(what);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The end of the chaos: everything up, every process running.
    for what in down_until.keys() {
        set_outage(&sims, what, false);
    }
    sims.circleci.set_delivering(true);
    for r in replicas.iter_mut() {
        if !r.alive() {
            r.start(&o.hoist)?;
            r.ready(&client).await?;
        }
    }
    println!(
        "chaos over after {:.1} s: {} kill(s) -9 and restart(s), outages {:?}, {} CircleCI webhook(s) lost, {} redelivered, {} click(s)",
        started.elapsed().as_secs_f64(),
        did.kills,
        did.outages,
        did.lost_webhooks,
        did.redeliveries,
        did.clicks
    );

    // Every release reaches prod, its issue Done, and the queue empties.
    let reader = hoist::store::Store::connect(&hoist::store::Options {
        url: store.to_string(),
        fsync: false,
        max_attempts: 1000,
        schema: None,
        serve: false,
    })
    .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let settled = loop {
        click_new_buttons(&sims, &replicas, &mut clicked, &mut did).await;
        let done = issues
            .iter()
            .all(|i| sims.jira.issue_status(i).as_deref() == Some("Done"));
        if done && queue_empty(&reader).await {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let found = check(&sims, &client, &replicas[0].url, &issues).await?;
    println!("{found}");
    for r in &replicas {
        let log = std::fs::read_to_string(&r.log).unwrap_or_default();
        let panics = log.lines().filter(|l| l.contains("panicked")).count();
        ensure!(panics == 0, "{} panicked: {}", r.name, tail(&r.log));
    }
    ensure!(
        settled,
        "not every release reached prod with its issue in Done within 120 s after the chaos"
    );
    ensure!(found.duplicates == 0, "something happened twice");
    ensure!(found.problems.is_empty(), "{:#?}", found.problems);
    println!("soak ({backend}): ok");
    Ok(())
}

pub(crate) async fn send_ticket(
    jira: &JiraSim,
    replicas: &[Replica],
    issue: &str,
    commit: &str,
) -> anyhow::Result<()> {
    let body = hoist_sim::jira::automation_body(REPO, commit, issue, None);
    // Jira Automation does not retry: the person who assigned the ticket would, so the soak does
    // until a replica takes it.
    for attempt in 0..200 {
        let r = &replicas[attempt % replicas.len()];
        if r.alive()
            && let Ok((status, _)) = jira
                .send_automation(
                    &format!("{}/hooks/jira", r.url),
                    "X-Hoist-Token",
                    JIRA_TOKEN,
                    &body,
                )
                .await
            && (status == 202 || status == 200)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("no replica took ticket {issue}")
}

async fn click_new_buttons(
    sims: &Sims,
    replicas: &[Replica],
    clicked: &mut BTreeSet<String>,
    did: &mut Did,
) {
    for b in sims.slack.buttons() {
        if b.text != "Approve prod" || clicked.contains(&b.value) {
            continue;
        }
        for r in replicas.iter().filter(|r| r.alive()) {
            let url = format!("{}/hooks/slack", r.url);
            if let Ok((200, _)) = sims
                .slack
                .click(&url, SLACK_SIGNING, &b, APPROVER, Default::default())
                .await
            {
                clicked.insert(b.value.clone());
                did.clicks += 1;
                break;
            }
        }
    }
}

async fn redeliver(circleci: &CircleCiSim, w: &SentWebhook) {
    let _ = circleci
        .send_raw(&w.event_type, w.body.clone().into_bytes())
        .await;
}

fn set_outage(sims: &Sims, what: &str, on: bool) {
    let status = on.then_some(503);
    match what {
        "bitbucket" => sims.bitbucket.faults().set_outage(status),
        "gate" => sims.gate.faults().set_outage(status),
        "slack" => sims.slack.faults().set_outage(status),
        "jira" => sims.jira.faults().set_outage(status),
        "circleci api" => sims.circleci_api.faults().set_outage(status),
        "circleci webhooks" => sims.circleci.set_delivering(!on),
        _ => {}
    }
}

#[allow(clippy::too_many_arguments)]
async fn chaos(
    dice: &mut Dice,
    sims: &Sims,
    replicas: &mut [Replica],
    hoist: &Path,
    client: &reqwest::Client,
    did: &mut Did,
    down: &mut HashMap<&'static str, Instant>,
) -> anyhow::Result<()> {
    const SERVICES: [&str; 6] = [
        "bitbucket",
        "gate",
        "slack",
        "jira",
        "circleci api",
        "circleci webhooks",
    ];
    match dice.below(3) {
        0 => {
            // A process dies and comes back (on PostgreSQL one of two; the other carries on).
            let i = dice.below(replicas.len() as u64) as usize;
            let r = &mut replicas[i];
            r.kill9();
            did.kills += 1;
            tokio::time::sleep(Duration::from_millis(dice.below(700))).await;
            r.start(hoist)?;
            r.ready(client).await?;
        }
        _ => {
            let what = SERVICES[dice.below(SERVICES.len() as u64) as usize];
            if !down.contains_key(what) {
                set_outage(sims, what, true);
                *did.outages.entry(what).or_default() += 1;
                if what == "circleci webhooks" {
                    did.lost_webhooks += 1;
                }
                down.insert(
                    what,
                    Instant::now() + Duration::from_millis(500 + dice.below(2500)),
                );
            }
        }
    }
    Ok(())
}

/// Whether no job is queued or running (read beside the servers, as `hoist releases` does).
async fn queue_empty(store: &hoist::store::Store) -> bool {
    use hoist::domain::JobState;
    match store.job_counts().await {
        Ok(counts) => counts
            .iter()
            .all(|(state, n)| *n == 0 || !matches!(state, JobState::Queued | JobState::Running)),
        Err(_) => false,
    }
}

struct Found {
    releases: usize,
    duplicates: usize,
    problems: Vec<String>,
    summary: String,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "found: {} release(s); {}; duplicates {}; problems {}",
            self.releases,
            self.summary,
            self.duplicates,
            self.problems.len()
        )
    }
}

/// What the simulators and the store say happened.
async fn check(
    sims: &Sims,
    client: &reqwest::Client,
    url: &str,
    issues: &[String],
) -> anyhow::Result<Found> {
    let mut problems = Vec::new();
    let mut duplicates = 0;
    // Tags: each release one per environment, on its own commit, versions never reused.
    let tags = sims.bitbucket.tags(REPO);
    let mut per_commit: HashMap<(String, String), usize> = HashMap::new();
    for (name, commit) in &tags {
        let family = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        *per_commit
            .entry((family.to_string(), commit.clone()))
            .or_default() += 1;
    }
    for ((family, commit), n) in &per_commit {
        if *n > 1 {
            duplicates += n - 1;
            problems.push(format!("{n} {family} tags on commit {commit}"));
        }
    }
    // Triggers: one per tag.
    let mut triggers: HashMap<String, usize> = HashMap::new();
    for t in sims.gate.triggers() {
        let tag = t.parameters["tag"].as_str().unwrap_or_default().to_string();
        *triggers.entry(tag).or_default() += 1;
    }
    for (tag, n) in &triggers {
        if *n > 1 {
            duplicates += n - 1;
            problems.push(format!("{tag} triggered {n} times"));
        }
    }
    // Jira: each issue moved once, to Done.
    let mut transitions = 0;
    for issue in issues {
        let applied = sims.jira.transitions_applied(issue);
        transitions += applied.len();
        if applied.len() > 1 {
            duplicates += applied.len() - 1;
            problems.push(format!(
                "{issue} moved {} times: {applied:?}",
                applied.len()
            ));
        }
    }
    // Releases and their deployments, from the API.
    let list: Value = client
        .get(format!("{url}/api/releases?limit=500"))
        .send()
        .await?
        .json()
        .await?;
    let releases = list["releases"].as_array().cloned().unwrap_or_default();
    if releases.len() != issues.len() {
        problems.push(format!(
            "{} releases for {} tickets",
            releases.len(),
            issues.len()
        ));
    }
    let mut promotions = 0;
    for r in &releases {
        let id = r["id"].as_i64().unwrap_or_default();
        let detail: Value = client
            .get(format!("{url}/api/releases/{id}"))
            .send()
            .await?
            .json()
            .await?;
        let deployments = detail["deployments"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for env in ["stg", "qa", "prod"] {
            let live: Vec<&Value> = deployments
                .iter()
                .filter(|d| d["env"] == env && d["status"] == "deployed")
                .collect();
            if env != "stg" {
                promotions += live.len();
            }
            if live.len() > 1 {
                duplicates += live.len() - 1;
                problems.push(format!(
                    "release {id} deployed {} times in {env}",
                    live.len()
                ));
            }
            if live.is_empty() {
                problems.push(format!("release {id} is not deployed in {env}"));
            }
        }
        let failed: Vec<String> = detail["jobs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|j| j["state"] == "failed")
            .map(|j| j["kind"].as_str().unwrap_or_default().to_string())
            .collect();
        if !failed.is_empty() {
            problems.push(format!("release {id}: failed jobs {failed:?}"));
        }
    }
    let summary = format!(
        "{} tags, {} deploy triggers, {} promotions, {} Jira transitions, {} reconciled builds asked of CircleCI's API",
        tags.len(),
        triggers.values().sum::<usize>(),
        promotions,
        transitions,
        sims.circleci_api
            .requests()
            .iter()
            .filter(|q| q.path.ends_with("/pipeline"))
            .count()
    );
    Ok(Found {
        releases: releases.len(),
        duplicates,
        problems,
        summary,
    })
}
