//! `hoist-bench`: the Rust side of `scripts/bench.sh` (docs/PERFORMANCE.md). Subcommands:
//!
//! - `pool`: pre-generates N signed CircleCI `job-completed` webhooks, each with its own `id` and
//!   a `happened_at` 50 us after the one before, split into one file per load thread (`PREFIX.0`,
//!   `PREFIX.1`, ...), one request a line: `<hex HMAC-SHA256>\t<body>`. The bodies are the
//!   CircleCI simulator's (`hoist_sim`), so they are what CircleCI sends; wrk
//!   (`scripts/bench/ingest.lua`) and `pace` read these files.
//! - `pace`: an open-loop load at a constant rate (what wrk2 does and wrk does not): every
//!   millisecond it releases the requests due by then to a pool of keep-alive connections; a
//!   request's latency runs from its release (so waiting for a free connection counts) to the
//!   end of its answer.
//! - `spawn`: starts a server, measures the time from `spawn` to its `/healthz` answering 200,
//!   leaves it running and writes its pid.
//! - `free-port`: prints a free loopback port.
//! - `scm`: SCM calls per release, Hoist's own time per step, and Gate calls and own time of
//!   deploy following, and the own time of a promotion from a signed Slack click, on
//!   `hoist_cli::stack::Stack`.
//! - `recover`: how soon releases move again after a kill -9 (SQLite restart, PostgreSQL
//!   replica takeover), with real `hoist serve` processes.
//! - `scale`: a year of history (100,000 releases, 1,000,000 jobs) written into a store, then
//!   the dashboard's pages and `/api/stats` timed on `hoist serve` (scripts/bench-scale.sh).
//! - `report`: prints the final table from the `key value` lines the harness collected.

mod click;
mod delay;
mod follow;
mod load;
mod recover;
mod report;
mod scale;
mod scm;
mod soak;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pre-generate signed CircleCI job-completed webhooks.
    Pool {
        /// Files are PREFIX.0 .. PREFIX.(parts-1).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 2)]
        parts: usize,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        secret: String,
        /// CircleCI project slug, e.g. bitbucket/acme/payments-api.
        #[arg(long)]
        slug: String,
        /// The job's name in the payload.
        #[arg(long)]
        job: String,
    },
    /// Constant-rate load from a pool.
    Pace {
        #[arg(long)]
        url: String,
        #[arg(long)]
        pool: PathBuf,
        #[arg(long, default_value_t = 2)]
        parts: usize,
        /// Requests per second.
        #[arg(long)]
        rate: f64,
        /// Seconds.
        #[arg(long)]
        duration: f64,
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// Start a server and time it to its first 200 on the ready URL.
    Spawn {
        #[arg(long)]
        ready: String,
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        pidfile: PathBuf,
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// Print a free loopback port.
    FreePort,
    /// SCM calls per release and Hoist's own time per step, on simulators.
    Scm {
        /// Fewer releases and rounds.
        #[arg(long)]
        quick: bool,
        /// Also on PostgreSQL, e.g. postgres://postgres@127.0.0.1:5432 (a fresh database per
        /// stack, dropped afterwards).
        #[arg(long, env = "HOIST_BENCH_PG")]
        pg: Option<String>,
        /// With --pg, also time the steps with PostgreSQL behind a relay that holds every
        /// chunk this many microseconds each way (a database across a network; the round trip
        /// is measured and printed).
        #[arg(long, requires = "pg")]
        pg_delay_us: Option<u64>,
    },
    /// Print the results table.
    Report { results: PathBuf },
    /// Recovery figures: a killed SQLite process restarted at once, a killed PostgreSQL replica's
    /// lane taken over by the other (Hoist's default lease).
    Recover {
        /// The `hoist` binary to run as `hoist serve`.
        #[arg(long)]
        hoist: PathBuf,
        /// Also two replicas on a fresh database of this PostgreSQL server.
        #[arg(long)]
        pg: Option<String>,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// History at scale (scripts/bench-scale.sh): a store filled with a year of releases and
    /// jobs, then the dashboard's pages and /api/stats timed on a real `hoist serve`.
    Scale {
        /// The `hoist` binary to run as `hoist serve`.
        #[arg(long)]
        hoist: PathBuf,
        /// Also on a fresh database of this PostgreSQL server.
        #[arg(long)]
        pg: Option<String>,
        #[arg(long, default_value_t = 100_000)]
        releases: u64,
        #[arg(long, default_value_t = 1_000_000)]
        jobs: u64,
        #[arg(long, default_value_t = 365)]
        days: u64,
        /// Requests per page measured.
        #[arg(long, default_value_t = 100)]
        requests: usize,
    },
    /// The chaos soak (scripts/soak.sh): releases through stg, qa and prod while processes are
    /// killed and services fail; fails if anything was lost or happened twice.
    Soak {
        /// The `hoist` binary to run as `hoist serve`.
        #[arg(long)]
        hoist: PathBuf,
        /// PostgreSQL server (two replicas on a fresh database) instead of SQLite (one process).
        #[arg(long)]
        pg: Option<String>,
        #[arg(long, default_value_t = 20)]
        releases: usize,
        /// Seconds of chaos.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    // Hoist's logs when HOIST_LOG asks for them (`scm` runs Hoist in this process).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("HOIST_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let r = match Cli::parse().command {
        Cmd::Pool {
            out,
            parts,
            count,
            secret,
            slug,
            job,
        } => load::pool(&out, parts, count, &secret, &slug, &job),
        Cmd::Pace {
            url,
            pool,
            parts,
            rate,
            duration,
            connections,
        } => load::pace(&url, &pool, parts, rate, duration, connections),
        Cmd::Spawn {
            ready,
            log,
            pidfile,
            timeout,
            command,
        } => load::spawn(&ready, &log, &pidfile, timeout, &command),
        Cmd::FreePort => std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| println!("{}", a.port()))
            .map_err(Into::into),
        Cmd::Scm {
            quick,
            pg,
            pg_delay_us,
        } => scm::run(quick, pg, pg_delay_us.map(Duration::from_micros)),
        Cmd::Report { results } => report::report(&results),
        Cmd::Recover { hoist, pg, rounds } => recover::run(recover::Options { hoist, pg, rounds }),
        Cmd::Scale {
            hoist,
            pg,
            releases,
            jobs,
            days,
            requests,
        } => scale::run(scale::Options {
            hoist,
            pg,
            releases,
            jobs,
            days,
            requests,
        }),
        Cmd::Soak {
            hoist,
            pg,
            releases,
            seconds,
            seed,
        } => soak::run(soak::Options {
            hoist,
            pg,
            releases,
            chaos: Duration::from_secs(seconds),
            seed,
        }),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
