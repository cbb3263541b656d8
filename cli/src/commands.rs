//! Each subcommand, a short function over the `hoist` library.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use hoist::clients::Clients;
use hoist::config::{Config, ConfigFile};
use hoist::core::{dora, failure, tag};
use hoist::domain::{DeliveryId, JobId, ReleaseId, Via};
use hoist::report;
use hoist::requests::Promoted;
use hoist::server::store_options;
use hoist::store::Store;

use crate::print;

fn load(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

pub async fn serve(path: &Path) -> anyhow::Result<()> {
    hoist::server::serve(load(path)?).await
}

pub fn check_config(path: &Path) -> ExitCode {
    let (mut file, mut problems) = match ConfigFile::load(path) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    file.apply_env_overrides();
    let config = Config::from_file(&file);
    if let Err(more) = &config {
        problems.extend(more.iter().cloned());
    }
    match config {
        Ok(config) if problems.is_empty() => {
            if config.circleci.token.is_none() {
                println!(
                    "note: [circleci] token is not set: a release whose CircleCI webhook never comes is not looked up in CircleCI's API (SPEC 16)"
                );
            }
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
        }
        _ => {
            eprintln!("{}: {} problem(s)", path.display(), problems.len());
            for p in problems {
                eprintln!("  {p}");
            }
            ExitCode::FAILURE
        }
    }
}

pub async fn next_tag(path: &Path, project: &str, env: Option<&str>) -> anyhow::Result<()> {
    let config = load(path)?;
    let p = config
        .project(project)
        .with_context(|| format!("no project `{project}` in the configuration"))?;
    let env = p.env(env).map_err(anyhow::Error::msg)?;
    let clients = Clients::new(&config);
    let tags = clients
        .bitbucket
        .tags(&p.repo, env.scheme.filter_text())
        .await?;
    let members = tags
        .iter()
        .filter(|t| env.scheme.parse_tag(&t.name).is_some())
        .count();
    let alloc = tag::Allocator::new(&tags, &[]).next(env);
    println!("{}", alloc.tag);
    println!(
        "why: {} ({} tag(s) listed in {}/{}, {members} of the family; dry run, nothing created)",
        alloc.reason,
        tags.len(),
        config.bitbucket.workspace,
        p.repo
    );
    Ok(())
}

/// How a command opens the store: beside a `hoist serve` that may be running (it reads, or
/// queues jobs for that server to run), never taking the store over.
fn beside_a_server(config: &hoist::config::Config) -> hoist::store::Options {
    hoist::store::Options {
        serve: false,
        ..store_options(config)
    }
}

/// The store the configuration names, without checking the rest of it (its secrets need not be
/// set to read history or queue a job again).
async fn open_store(path: &Path) -> anyhow::Result<Store> {
    let (mut file, _) = ConfigFile::load(path)?;
    file.apply_env_overrides();
    let options = hoist::store::Options {
        url: file.store.url.clone(),
        fsync: file.store.fsync,
        max_attempts: file.worker.retry.max_attempts,
        schema: None,
        serve: false,
    };
    Ok(Store::connect(&options).await?)
}

pub async fn releases(path: &Path, limit: i64, id: Option<i64>, json: bool) -> anyhow::Result<()> {
    let config = load(path)?;
    let store = Store::connect(&beside_a_server(&config)).await?;
    if let Some(id) = id {
        let r = store
            .release(ReleaseId(id))
            .await?
            .with_context(|| format!("no release {id}"))?;
        let detail = report::detail(&store, &r).await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&detail)?);
        } else {
            print::release_detail(&detail);
        }
        return Ok(());
    }
    let list = store.releases(limit, None).await?;
    if json {
        let v: Vec<_> = list.iter().map(report::summary).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print::releases(&list);
    }
    Ok(())
}

/// `hoist stats`: the figures `GET /api/stats` gives, read from the store, with its rules for
/// the parameters.
pub async fn stats(
    path: &Path,
    project: Option<&str>,
    env: Option<&str>,
    days: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let config = load(path)?;
    let days = dora::parse_days(days).map_err(anyhow::Error::msg)?;
    let scopes = dora::scopes(&config, project, env).map_err(|e| anyhow::anyhow!(e.message))?;
    let store = Store::connect(&beside_a_server(&config)).await?;
    let now = hoist::domain::now_ms();
    let mut all = Vec::with_capacity(scopes.len());
    for (project, env) in &scopes {
        all.push(store.dora(project, env, days, now).await?);
    }
    if json {
        let v: Vec<_> = all.iter().map(|f| report::stats(f, None)).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print::stats(days, &all);
    }
    Ok(())
}

pub async fn replay(path: &Path, delivery: i64) -> anyhow::Result<()> {
    let store = open_store(path).await?;
    let d = store
        .delivery(DeliveryId(delivery))
        .await?
        .with_context(|| format!("no delivery {delivery}"))?;
    match store.replay(d.id, failure::replay).await? {
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

pub async fn retry(path: &Path, job: i64) -> anyhow::Result<()> {
    let store = open_store(path).await?;
    if store.retry_job(JobId(job), failure::retried).await? {
        println!("job {job} queued again; a running `hoist serve` picks it up");
        Ok(())
    } else {
        bail!("job {job} does not exist or has not failed")
    }
}

/// A release named by its id or by one of its tags (any environment's).
async fn find_release(store: &Store, name: &str) -> anyhow::Result<ReleaseId> {
    if let Ok(id) = name.parse::<i64>() {
        return Ok(ReleaseId(id));
    }
    store
        .release_by_tag(name)
        .await?
        .with_context(|| format!("no release has the tag {name}"))
}

pub async fn promote(path: &Path, release: &str, to: &str, by: &str) -> anyhow::Result<()> {
    let config = load(path)?;
    let store = Store::connect(&beside_a_server(&config)).await?;
    let id = find_release(&store, release).await?;
    match hoist::requests::promote(&store, &config, id, to, by, Via::Cli).await? {
        Promoted::Started => println!(
            "release {id} is being promoted into {to}; a running `hoist serve` carries it out"
        ),
        Promoted::Already(d) => {
            println!("release {id} is already going into {to} (or there): deployment {d}")
        }
    }
    Ok(())
}

pub async fn approve(path: &Path, release: &str, env: &str, by: &str) -> anyhow::Result<()> {
    let config = load(path)?;
    let store = Store::connect(&beside_a_server(&config)).await?;
    let id = find_release(&store, release).await?;
    let a = hoist::requests::approve(&store, &config, id, env, by, Via::Cli).await?;
    let counted = if a.counted {
        "approved"
    } else {
        "had approved already (an approval counts once)"
    };
    let then = match a.promoted {
        Some(Promoted::Started) => "; the promotion starts",
        Some(Promoted::Already(_)) => "; the promotion was under way already",
        None => "; the promotion waits for its other conditions",
    };
    println!("{by} {counted} release {id} for {env}{then}");
    Ok(())
}

pub async fn rollback(
    path: &Path,
    project: &str,
    env: &str,
    to: Option<&str>,
    by: &str,
) -> anyhow::Result<()> {
    let config = load(path)?;
    let store = Store::connect(&beside_a_server(&config)).await?;
    let done = hoist::requests::rollback(&store, &config, project, env, to, by, Via::Cli).await?;
    println!(
        "{project}/{env} is being rolled back to {} (release {}); a running `hoist serve` carries it out",
        done.tag, done.release
    );
    Ok(())
}
