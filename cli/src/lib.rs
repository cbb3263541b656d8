//! The `hoist` binary's library: the command line (every subcommand, each a short function over
//! the `hoist` library), the loopback [`stack`] of Hoist and the `hoist_sim` simulators, and the
//! [`demo`] that runs on it. The integration tests and tools/bench use the stack too.

mod commands;
pub mod demo;
pub mod print;
pub mod stack;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::*;

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
    /// DORA figures (README "DORA figures") per project and environment over the last --days
    /// days: every configured pair that fits --project and --env.
    Stats {
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        env: Option<String>,
        /// The window in days, 1 to 730 (default 30).
        #[arg(long, allow_hyphen_values = true)]
        days: Option<String>,
        /// Print JSON (as `GET /api/stats`) instead of a table.
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
    /// Promote a release into an environment (it must be deployed where that one takes releases
    /// from, soaked, approved and outside freeze windows, as configured).
    Promote {
        /// The release: its id, or one of its tags.
        release: String,
        /// The environment to promote it into.
        #[arg(long)]
        to: String,
        /// Who asks (recorded).
        #[arg(long = "as", default_value_t = default_user())]
        by: String,
    },
    /// Approve a release for an environment that needs approvals.
    Approve {
        /// The release: its id, or one of its tags.
        release: String,
        #[arg(long)]
        env: String,
        /// Who approves: one of the environment's approvers.
        #[arg(long = "as")]
        by: String,
    },
    /// Redeploy into an environment the release deployed there before the current one (or the
    /// one deployed as --to), with its existing tag.
    Rollback {
        #[arg(long)]
        project: String,
        #[arg(long)]
        env: String,
        /// The tag to go back to (default: the release deployed before the current one).
        #[arg(long)]
        to: Option<String>,
        #[arg(long = "as", default_value_t = default_user())]
        by: String,
    },
}

/// Who runs the command, for the record: `$USER`, else `cli`.
fn default_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "cli".into())
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
        .unwrap_or_else(|_| {
            EnvFilter::new(format!(
                "{level},tokio_postgres=warn,hyper=warn,reqwest=warn"
            ))
        })
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
        Command::Stats {
            project,
            env,
            days,
            json,
        } => stats(
            &cli.config,
            project.as_deref(),
            env.as_deref(),
            days.as_deref(),
            json,
        )
        .await
        .map(|_| ExitCode::SUCCESS),
        Command::Replay { delivery } => replay(&cli.config, delivery)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Retry { job } => retry(&cli.config, job).await.map(|_| ExitCode::SUCCESS),
        Command::Promote { release, to, by } => promote(&cli.config, &release, &to, &by)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Approve { release, env, by } => approve(&cli.config, &release, &env, &by)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Rollback {
            project,
            env,
            to,
            by,
        } => rollback(&cli.config, &project, &env, to.as_deref(), &by)
            .await
            .map(|_| ExitCode::SUCCESS),
    }
}
