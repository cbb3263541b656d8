//! The final table: every number with its SPEC 10 target beside it.

use std::collections::BTreeMap;

use anyhow::Context;

struct Results(BTreeMap<String, String>);

impl Results {
    fn num(&self, key: &str) -> Option<f64> {
        self.0.get(key).and_then(|v| v.parse().ok())
    }
    fn text(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

fn ms(us: Option<f64>) -> String {
    us.map(|v| format!("{:.2} ms", v / 1000.0))
        .unwrap_or_else(|| "-".into())
}

fn met(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "NOT MET",
        None => "-",
    }
}

pub fn report(path: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut map = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(' ') {
            map.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    let r = Results(map);
    let mode = r.text("mode").unwrap_or("?");
    println!();
    println!(
        "==== Hoist benchmark, {mode}: {}, commit {} ====",
        r.text("date").unwrap_or("?"),
        r.text("commit").unwrap_or("?")
    );
    println!(
        "machine: {} cores, {}, {} MiB memory; load average {} at the start, {} at the end",
        r.text("machine.nproc").unwrap_or("?"),
        r.text("machine.cpu").unwrap_or("?"),
        r.text("machine.mem_mib").unwrap_or("?"),
        r.text("machine.loadavg_start").unwrap_or("?"),
        r.text("machine.loadavg_end").unwrap_or("?"),
    );
    println!("load: {}", r.text("load").unwrap_or("?"));
    let busiest = [
        r.text("machine.loadavg_start"),
        r.text("machine.loadavg_end"),
    ]
    .into_iter()
    .flatten()
    .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
    .fold(0.0, f64::max);
    if busiest > 1.5 {
        println!(
            "NOTE: the machine was busy with other work (1-minute load average up to {busiest:.1} on {} cores): absolute numbers are low and tails long; compare the ratios.",
            r.text("machine.nproc").unwrap_or("?")
        );
    }

    println!();
    println!(
        "Ingest (signed CircleCI job-completed, each with its own id; wrk at saturation, `hoist-bench pace` at half that rate)"
    );
    let w = [34, 10, 10, 10, 10, 10, 10, 16];
    let row = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 0 {
                s.push_str(&format!("{:<w$}", c, w = w[0]));
            } else {
                s.push_str(&format!(" {:>w$}", c, w = w[i.min(w.len() - 1)]));
            }
        }
        println!("{}", s.trim_end());
    };
    row(&[
        "server / path".into(),
        "load".into(),
        "req/s".into(),
        "p50".into(),
        "p99".into(),
        "max".into(),
        "errors".into(),
        "x bare | x webhook".into(),
    ]);
    let bare_rps = r.num("bare.sat.rps");
    let hook_rps = r.num("webhook.sat.rps");
    let mut servers: Vec<(String, String)> = vec![
        ("bare".into(), "bare axum handler (200)".into()),
        ("webhook".into(), "adnanh/webhook (HMAC, true)".into()),
    ];
    for backend in ["sqlite", "postgres"] {
        for (path, label) in [("ign", "ignored job"), ("match", "matched job")] {
            let key = format!("{backend}.{path}");
            if r.0.contains_key(&format!("{key}.sat.rps")) {
                servers.push((key, format!("hoist {backend}, {label}")));
            }
        }
    }
    let tmpfs = r.0.contains_key("sqlite_tmpfs.ign.sat.rps");
    if tmpfs {
        servers.push((
            "sqlite_tmpfs.ign".into(),
            "hoist sqlite on tmpfs, ignored".into(),
        ));
    }
    for (key, label) in &servers {
        for (load, name) in [("sat", "saturation"), ("half", "half rate")] {
            let k = |f: &str| format!("{key}.{load}.{f}");
            let Some(rps) = r.num(&k("rps")) else {
                continue;
            };
            let errors = r.num(&k("errors")).unwrap_or(0.0) + r.num(&k("non2xx")).unwrap_or(0.0);
            let ratio = if key.contains('.') && load == "sat" {
                format!(
                    "{} | {}",
                    bare_rps
                        .map(|b| format!("{:.2}", rps / b))
                        .unwrap_or("-".into()),
                    hook_rps
                        .map(|h| format!("{:.2}", rps / h))
                        .unwrap_or("-".into())
                )
            } else {
                String::new()
            };
            row(&[
                if load == "sat" {
                    label.clone()
                } else {
                    String::new()
                },
                name.into(),
                format!("{rps:.0}"),
                ms(r.num(&k("p50_us"))),
                ms(r.num(&k("p99_us"))),
                ms(r.num(&k("max_us"))),
                format!("{errors:.0}"),
                ratio,
            ]);
        }
    }
    println!(
        "ignored job: the payload names a job that is not the project's build_job: verified, parsed, recorded as a delivery with its outcome, no job queued."
    );
    println!(
        "matched job: the project's build job: also queues a handle_build job; the worker runs it meanwhile (Bitbucket is a closed port: the attempt fails at connect and is rescheduled 5-10 min later)."
    );
    if tmpfs {
        println!(
            "on tmpfs: the ignored job with the SQLite file in memory (/dev/shm), its half rate the disk store's: what this machine's disk adds to the rows above; not a target."
        );
    }
    if let Some(w) = r.text("warnings") {
        println!("WARNINGS: {w}");
    }

    println!();
    println!(
        "SCM calls per release (Bitbucket simulator, family stg{{major}}.{{minor}}.{{patch}}; steady state = every release after the first)"
    );
    println!(
        "{:<10} {:>7} {:>14} {:>14} {:>14} {:>16}",
        "backend", "tags", "first release", "steady max", "steady mean", "wall p50 / max"
    );
    for backend in ["sqlite", "postgres"] {
        for tags in ["100", "1000", "10000"] {
            let k = |f: &str| format!("scm.{backend}.{tags}.{f}");
            let Some(max) = r.num(&k("steady_max")) else {
                continue;
            };
            println!(
                "{:<10} {:>7} {:>14} {:>14} {:>14.2} {:>16}",
                backend,
                tags,
                r.text(&k("first")).unwrap_or("-"),
                format!("{max:.0}"),
                r.num(&k("steady_mean")).unwrap_or(0.0),
                format!(
                    "{} / {}",
                    ms(r.num(&k("wall_p50_us"))),
                    ms(r.num(&k("wall_max_us")))
                )
            );
        }
    }

    println!();
    println!(
        "Hoist's own time per step (one release at a time; own = end to end minus the simulator's time answering the calls on the way)"
    );
    println!(
        "{:<10} {:<58} {:>10} {:>10} {:>10} {:>10} {:>6}",
        "backend", "step", "own p50", "own p99", "e2e p50", "e2e p99", "n"
    );
    for backend in ["sqlite", "postgres", "pg_remote"] {
        for (step, label) in [
            (
                "jira_tag",
                "Jira POST sent -> Bitbucket receives the tag-create POST",
            ),
            (
                "build_deploy",
                "CircleCI POST sent -> Gate receives the deploy trigger",
            ),
        ] {
            let k = |f: &str| format!("step.{backend}.{step}.{f}");
            if let Some(p50) = r.num(&k("p50_us")) {
                println!(
                    "{:<10} {:<58} {:>10} {:>10} {:>10} {:>10} {:>6}",
                    backend,
                    label,
                    ms(Some(p50)),
                    ms(r.num(&k("p99_us"))),
                    ms(r.num(&k("total_p50_us"))),
                    ms(r.num(&k("total_p99_us"))),
                    r.text(&k("n")).unwrap_or("-")
                );
            }
        }
    }
    if let Some(rtt) = r.num("step.pg_remote.rtt_us") {
        println!(
            "pg_remote: PostgreSQL behind a relay that delays each packet, a round trip of {} (SELECT 1) as to a database across a network; not a SPEC 10 target (that is against no latency)",
            ms(Some(rtt))
        );
    }

    if r.0.keys().any(|k| k.starts_with("follow.")) {
        println!();
        println!(
            "Deploy following (Spinnaker's default schedule; own = Gate answering SUCCEEDED -> Slack receiving `deployed`)"
        );
        println!(
            "{:<10} {:>8} {:>9} {:>16} {:>10} {:>10} {:>10}",
            "backend", "deploy", "releases", "Gate calls mean", "max", "own p50", "own max"
        );
        for backend in ["sqlite", "postgres"] {
            let k = |f: &str| format!("follow.{backend}.{f}");
            let Some(mean) = r.num(&k("calls_mean")) else {
                continue;
            };
            println!(
                "{:<10} {:>8} {:>9} {:>16.2} {:>10} {:>10} {:>10}",
                backend,
                format!("{} s", r.text(&k("deploy_secs")).unwrap_or("-")),
                r.text(&k("releases")).unwrap_or("-"),
                mean,
                r.text(&k("calls_max")).unwrap_or("-"),
                ms(r.num(&k("own_p50_us"))),
                ms(r.num(&k("own_max_us")))
            );
        }
    }

    if r.0.keys().any(|k| k.starts_with("click.")) {
        println!();
        println!(
            "Promotion (own = a signed Slack click on \"Approve prod\" sent -> Bitbucket receiving the prod tag's creation; target < 50 ms p50)"
        );
        println!(
            "{:<10} {:>9} {:>10} {:>10}",
            "backend", "releases", "own p50", "own max"
        );
        for backend in ["sqlite", "postgres"] {
            let k = |f: &str| format!("click.{backend}.{f}");
            let Some(releases) = r.text(&k("releases")) else {
                continue;
            };
            println!(
                "{:<10} {:>9} {:>10} {:>10}",
                backend,
                releases,
                ms(r.num(&k("own_p50_us"))),
                ms(r.num(&k("own_max_us")))
            );
        }
    }

    if r.0.contains_key("recover.sqlite.rounds") {
        println!();
        println!(
            "Recovery after kill -9 (real `hoist serve` processes, default lease 20 s; target: moving within 2 s of /healthz, a dead replica's lane within the lease)"
        );
        let p50_max = |key: &str| match (
            r.num(&format!("{key}_p50_ms")),
            r.num(&format!("{key}_max_ms")),
        ) {
            (Some(p), Some(m)) => format!("{p:.0} / {m:.0} ms"),
            _ => "-".into(),
        };
        println!("{:<64} {:>7} {:>18}", "", "rounds", "p50 / max");
        for (label, rounds, key) in [
            (
                "SQLite: spawn -> /healthz",
                "recover.sqlite.rounds",
                "recover.sqlite.ready",
            ),
            (
                "SQLite: /healthz -> next tag (3 Bitbucket calls of 400 ms)",
                "recover.sqlite.rounds",
                "recover.sqlite.next_tag",
            ),
            (
                "SQLite: /healthz -> every release deployed in stg",
                "recover.sqlite.rounds",
                "recover.sqlite.deployed",
            ),
            (
                "PostgreSQL: replica killed -> the other makes its tag",
                "recover.postgres.rounds",
                "recover.postgres.takeover",
            ),
        ] {
            if let Some(n) = r.text(rounds) {
                println!("{label:<64} {n:>7} {:>18}", p50_max(key));
            }
        }
    }

    println!();
    println!(
        "Memory and start (hoist serve; start = spawn to the first 200 from /healthz; first = on a new store, migrations included)"
    );
    println!(
        "{:<10} {:>12} {:>18} {:>22} {:>22}",
        "backend", "idle RSS", "peak RSS (load)", "first start p50/max", "restart p50/max"
    );
    let mib = |key: &str| {
        r.num(key)
            .map(|v| format!("{:.1} MiB", v / 1024.0))
            .unwrap_or("-".into())
    };
    let start = |backend: &str, kind: &str| {
        let k = |f: &str| r.num(&format!("{backend}.{kind}_start_{f}_ms"));
        match (k("p50"), k("max")) {
            (Some(p), Some(m)) => format!("{p:.0} / {m:.0} ms"),
            _ => "-".into(),
        }
    };
    for backend in ["sqlite", "postgres"] {
        if r.0.contains_key(&format!("{backend}.rss_idle_kb")) {
            println!(
                "{:<10} {:>12} {:>18} {:>22} {:>22}",
                backend,
                mib(&format!("{backend}.rss_idle_kb")),
                mib(&format!("{backend}.rss_load_kb")),
                start(backend, "first"),
                start(backend, "restart"),
            );
        }
    }

    println!();
    println!("Targets (SPEC 10)");
    println!("{:<62} {:<16} {:<24} met", "target", "backend", "measured");
    let webhook_rps = r.num("webhook.sat.rps");
    for backend in ["sqlite", "postgres"] {
        let k = |f: &str| format!("{backend}.{f}");
        if !r.0.contains_key(&k("ign.sat.rps")) && !r.0.contains_key(&k("rss_idle_kb")) {
            continue;
        }
        let line = |target: &str, measured: String, ok: Option<bool>| {
            println!(
                "{:<62} {:<16} {:<24} {}",
                target,
                backend,
                measured,
                met(ok)
            );
        };
        for (path, label) in [("ign", "ignored job"), ("match", "matched job")] {
            let ratio = r
                .num(&k(&format!("{path}.sat.rps")))
                .zip(webhook_rps)
                .map(|(h, w)| h / w);
            line(
                &format!("ingest req/s >= 3x adnanh/webhook ({label})"),
                ratio.map(|x| format!("{x:.2}x")).unwrap_or("-".into()),
                ratio.map(|x| x >= 3.0),
            );
        }
        for (path, label) in [("ign", "ignored job"), ("match", "matched job")] {
            let p99 = r.num(&k(&format!("{path}.half.p99_us")));
            line(
                &format!("ingest p99 < 10 ms at half rate ({label})"),
                ms(p99),
                p99.map(|v| v < 10_000.0),
            );
        }
        let steady = ["100", "1000", "10000"]
            .iter()
            .filter_map(|t| r.num(&format!("scm.{backend}.{t}.steady_max")))
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        line(
            "SCM calls per release <= 3 in steady state (100..10,000 tags)",
            steady.map(|v| format!("max {v:.0}")).unwrap_or("-".into()),
            steady.map(|v| v <= 3.0),
        );
        for step in ["jira_tag", "build_deploy"] {
            let p50 = r.num(&format!("step.{backend}.{step}.p50_us"));
            line(
                &format!("own time per step p50 < 5 ms ({step})"),
                ms(p50),
                p50.map(|v| v < 5_000.0),
            );
        }
        let idle = r.num(&k("rss_idle_kb"));
        line(
            "resident memory idle < 30 MiB",
            idle.map(|v| format!("{:.1} MiB", v / 1024.0))
                .unwrap_or("-".into()),
            idle.map(|v| v < 30.0 * 1024.0),
        );
        let load = r.num(&k("rss_load_kb"));
        line(
            "resident memory under ingest load < 80 MiB",
            load.map(|v| format!("{:.1} MiB", v / 1024.0))
                .unwrap_or("-".into()),
            load.map(|v| v < 80.0 * 1024.0),
        );
        for (kind, label) in [
            ("restart", "existing store"),
            ("first", "new store, migrations"),
        ] {
            let ready = r.num(&k(&format!("{kind}_start_p50_ms")));
            line(
                &format!("start to ready < 200 ms (p50, {label})"),
                ready.map(|v| format!("{v:.0} ms")).unwrap_or("-".into()),
                ready.map(|v| v < 200.0),
            );
        }
    }
    Ok(())
}
