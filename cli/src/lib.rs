//! The `hoist` binary's library: the command line (every subcommand, each a short function over
//! the `hoist` library), the loopback [`stack`] of Hoist and the `hoist_sim` simulators, and the
//! [`demo`] that runs on it. The integration tests and tools/bench use the stack too.

pub mod demo;
pub mod stack;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use hoist::app::App;
use hoist::config::Config;
use hoist::pipeline::notify::dur;
use hoist::pipeline::version::TagScheme;
use hoist::store::Store;

#[derive(Parser)]
#[command(
    name = "hoist",
    version,
    about = "Jira assignment -> Bitbucket tag -> CircleCI build -> Spinnaker deploy, with Slack told at every step"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "HOIST_CONFIG",
        default_value = "hoist.toml"
    )]
    pub config: PathBuf,
    /// Log format: `text` or `json`. Levels come from HOIST_LOG (e.g. `info,hoist=debug`).
    #[arg(long, global = true, env = "HOIST_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server: webhooks in, jobs out. `GET /healthz` answers 200 once ready.
    Serve,
    /// Run as an AWS Lambda function (custom runtime) behind API Gateway or a function URL: the
    /// same routes as `serve`, jobs run inside invocations. A binary named `bootstrap` started
    /// with AWS_LAMBDA_RUNTIME_API set does this without arguments.
    Lambda,
    /// Run the whole pipeline against built-in simulators (no account anywhere) and show each step.
    Demo(crate::demo::DemoArgs),
    /// Validate the configuration and print every problem with its location.
    CheckConfig,
    /// Dry run: which tag would be created now for a project and environment, and why.
    NextTag {
        #[arg(long)]
        project: String,
        #[arg(long)]
        env: Option<String>,
    },
    /// Release history with lead times; with --id, one release's timeline and jobs.
    Releases {
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        id: Option<i64>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Process a stored delivery again (for example after fixing the configuration).
    Replay {
        /// The delivery id (shown in webhook answers and `hoist releases --id`).
        delivery: i64,
    },
    /// Queue a failed job again for a fresh set of attempts.
    Retry {
        /// The job id (shown by `hoist releases --id`).
        job: i64,
    },
}

/// Runs a parsed command line: logging, a tokio runtime, the subcommand; errors are printed.
pub fn execute(cli: Cli) -> ExitCode {
    // The demo prints its own story; its logs are for warnings unless HOIST_LOG asks for more.
    let default_level = if matches!(cli.command, Command::Demo(_)) {
        "warn"
    } else {
        "info"
    };
    init_tracing(&cli.log_format, default_level);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn init_tracing(format: &str, level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HOIST_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},sqlx=warn,hyper=warn,reqwest=warn")))
        // lambda_runtime logs whole events at TRACE, headers and all: webhook tokens would leak.
        .add_directive(
            "lambda_runtime::layers::api_response=debug"
                .parse()
                .expect("a valid directive"),
        );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve => serve(&cli.config).await.map(|_| ExitCode::SUCCESS),
        Command::Lambda => hoist::lambda::run(&cli.config)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Demo(args) => crate::demo::run(args).await,
        Command::CheckConfig => Ok(check_config(&cli.config)),
        Command::NextTag { project, env } => next_tag(&cli.config, &project, env.as_deref())
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Releases { limit, id, json } => releases(&cli.config, limit, id, json)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Replay { delivery } => replay(&cli.config, delivery)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Retry { job } => retry(&cli.config, job).await.map(|_| ExitCode::SUCCESS),
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Ok(Config::load_checked(path)?)
}

async fn serve(path: &std::path::Path) -> anyhow::Result<()> {
    hoist::server::serve(load(path)?).await
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Ok((mut config, mut problems)) => {
            config.apply_env_overrides();
            problems.extend(config.check());
            if problems.is_empty() {
                println!(
                    "{}: ok ({} project(s), {} environment(s))",
                    path.display(),
                    config.projects.len(),
                    config
                        .projects
                        .iter()
                        .map(|p| p.environments.len())
                        .sum::<usize>()
                );
                ExitCode::SUCCESS
            } else {
                eprintln!("{}: {} problem(s)", path.display(), problems.len());
                for p in problems {
                    eprintln!("  {p}");
                }
                ExitCode::FAILURE
            }
        }
    }
}

async fn next_tag(path: &std::path::Path, project: &str, env: Option<&str>) -> anyhow::Result<()> {
    let config = load(path)?;
    let p = config
        .project(project)
        .with_context(|| format!("no project `{project}` in the configuration"))?;
    let (env_name, env) = p.env(env).map_err(anyhow::Error::msg)?;
    let scheme = TagScheme::new(&env.tag, env.bump, env.patch_rollover)?;
    let initial = scheme.parse_version(&env.initial_version)?;
    let app = App::build(config.clone()).await?;
    let tags = app.bitbucket.tags(&p.repo, scheme.filter_text()).await?;
    let members = tags
        .iter()
        .filter(|t| scheme.parse_tag(&t.name).is_some())
        .count();
    let alloc = scheme.next(
        tags.iter().map(|t| t.name.as_str()),
        initial,
        &Default::default(),
    );
    println!("{}", alloc.tag);
    println!(
        "why: {} ({} tag(s) listed in {}/{}, {members} of the family; dry run, nothing created)",
        alloc.reason,
        tags.len(),
        app.bitbucket.workspace(),
        p.repo
    );
    let _ = env_name;
    Ok(())
}

async fn open_store(path: &std::path::Path) -> anyhow::Result<Store> {
    let (mut config, _) = Config::load(path)?;
    config.apply_env_overrides();
    Ok(Store::connect(&config.store.url, config.store.fsync).await?)
}

async fn releases(
    path: &std::path::Path,
    limit: i64,
    id: Option<i64>,
    json: bool,
) -> anyhow::Result<()> {
    let config = load(path)?;
    let app = App::build(config).await?;
    if let Some(id) = id {
        let r = app
            .store
            .release(id)
            .await?
            .with_context(|| format!("no release {id}"))?;
        let detail = hoist::http::api::detail(&app, &r).await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&detail)?);
        } else {
            print_release_detail(&detail);
        }
        return Ok(());
    }
    let list = app.store.releases(limit, None).await?;
    if json {
        let v: Vec<_> = list.iter().map(hoist::http::api::summary).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:>5}  {:<20} {:<16} {:<6} {:<10} {:<14} {:<18} {:>10}",
        "ID", "RECEIVED", "PROJECT", "ENV", "ISSUE", "TAG", "STATUS", "LEAD TIME"
    );
    for r in &list {
        println!(
            "{:>5}  {:<20} {:<16} {:<6} {:<10} {:<14} {:<18} {:>10}",
            r.id,
            chrono::DateTime::from_timestamp_millis(r.received_at)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default(),
            r.project,
            r.env,
            r.issue.as_deref().unwrap_or("-"),
            r.tag.as_deref().unwrap_or("-"),
            r.status.as_str(),
            r.lead_time_ms().map(dur).unwrap_or_else(|| "-".into())
        );
    }
    let leads: Vec<i64> = list.iter().filter_map(|r| r.lead_time_ms()).collect();
    if !leads.is_empty() {
        let mut sorted = leads.clone();
        sorted.sort_unstable();
        println!(
            "{} deployed; median lead time {}",
            leads.len(),
            dur(sorted[sorted.len() / 2])
        );
    }
    Ok(())
}

pub fn print_release_detail(v: &serde_json::Value) {
    let s = |k: &str| v[k].as_str().unwrap_or("-").to_string();
    println!(
        "release {} · {} ({}) · issue {} · commit {} · tag {} · {}",
        v["id"],
        s("project"),
        s("env"),
        s("issue"),
        s("commit"),
        s("tag"),
        s("status")
    );
    if let Some(e) = v["error"].as_str() {
        println!("error: {e}");
    }
    println!("timeline:");
    for step in v["timeline"].as_array().into_iter().flatten() {
        let at = step["at"].as_str().unwrap_or("-");
        let after = step["after_ms"]
            .as_i64()
            .map(|ms| format!("+{}", dur(ms)))
            .unwrap_or_default();
        println!(
            "  {:<18} {:<26} {}",
            step["step"].as_str().unwrap_or(""),
            at,
            after
        );
    }
    if let Some(ms) = v["lead_time_ms"].as_i64() {
        println!(
            "lead time (ticket received -> deploy triggered): {}",
            dur(ms)
        );
    }
    println!("jobs:");
    for j in v["jobs"].as_array().into_iter().flatten() {
        println!(
            "  #{:<4} {:<12} {:<8} attempts {}/{}{}",
            j["id"],
            j["kind"].as_str().unwrap_or(""),
            j["state"].as_str().unwrap_or(""),
            j["attempts"],
            j["max_attempts"],
            j["last_error"]
                .as_str()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default()
        );
    }
}

async fn replay(path: &std::path::Path, delivery: i64) -> anyhow::Result<()> {
    let store = open_store(path).await?;
    let d = store
        .delivery(delivery)
        .await?
        .with_context(|| format!("no delivery {delivery}"))?;
    match store.replay_delivery(&d).await? {
        Some(job) => println!(
            "delivery {delivery} ({} {}) queued again as job {job}; a running `hoist serve` picks it up",
            d.source, d.event
        ),
        None => bail!(
            "delivery {delivery} ({} {}) has nothing to replay",
            d.source,
            d.event
        ),
    }
    Ok(())
}

async fn retry(path: &std::path::Path, job: i64) -> anyhow::Result<()> {
    let store = open_store(path).await?;
    if store.retry_job(job).await? {
        println!("job {job} queued again; a running `hoist serve` picks it up");
        Ok(())
    } else {
        bail!("job {job} does not exist or has not failed")
    }
}
