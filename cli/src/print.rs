//! Tables and timelines for a terminal.

use hoist::core::dora::{Figures, Spread};
use hoist::core::notify::dur;
use hoist::domain::Release;

/// Releases as a table, with the median lead time of those deployed.
pub fn releases(list: &[Release]) {
    println!(
        "{:>5}  {:<20} {:<16} {:<6} {:<10} {:<14} {:<18} {:>10}",
        "ID", "RECEIVED", "PROJECT", "ENV", "ISSUE", "TAG", "STATUS", "LEAD TIME"
    );
    for r in list {
        println!(
            "{:>5}  {:<20} {:<16} {:<6} {:<10} {:<14} {:<18} {:>10}",
            r.id,
            chrono::DateTime::from_timestamp_millis(r.received_at)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default(),
            r.project,
            r.env,
            r.issue.as_deref().unwrap_or("-"),
            r.tag.as_ref().map(|t| t.as_str()).unwrap_or("-"),
            r.status.as_str(),
            r.lead_time_ms().map(dur).unwrap_or_else(|| "-".into())
        );
    }
    let mut leads: Vec<i64> = list.iter().filter_map(|r| r.lead_time_ms()).collect();
    if !leads.is_empty() {
        leads.sort_unstable();
        println!(
            "{} deployed; median lead time {}",
            leads.len(),
            dur(leads[leads.len() / 2])
        );
    }
}

/// DORA figures, one line per project and environment.
pub fn stats(days: u32, list: &[Figures]) {
    let spread = |s: &Spread| match (s.median_secs, s.p90_secs) {
        (Some(m), Some(p)) => format!("{} / {}", secs(m), secs(p)),
        _ => "-".into(),
    };
    let line = |cells: [&str; 8]| {
        println!(
            "{:<16} {:<6} {:>7} {:>7} {:>24} {:>24} {:>12} {:>24}",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7]
        )
    };
    println!("DORA figures over the last {days} day(s); lead times and restores: median / p90");
    line([
        "PROJECT",
        "ENV",
        "DEPLOYS",
        "PER DAY",
        "LEAD TIME FROM TICKET",
        "LEAD TIME FROM COMMIT",
        "FAILURE RATE",
        "TIME TO RESTORE",
    ]);
    for f in list {
        let rate = f.change_failure_rate.map_or("-".into(), |r| {
            format!("{:.0}% ({}/{})", r * 100.0, f.failures, f.ended)
        });
        line([
            &f.project,
            &f.env,
            &f.deploys.to_string(),
            &format!("{:.2}", f.deploys_per_day),
            &spread(&f.lead_time_from_ticket),
            &spread(&f.lead_time_from_commit),
            &rate,
            &spread(&f.time_to_restore),
        ]);
    }
}

fn secs(s: f64) -> String {
    dur((s * 1000.0).round() as i64)
}

/// One release's view ([`hoist::report::detail`]): its facts, timeline, lead time and jobs.
pub fn release_detail(v: &serde_json::Value) {
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
        println!("lead time (ticket received -> deployed): {}", dur(ms));
    }
    if let Some(ms) = v["trigger_lead_time_ms"].as_i64() {
        println!("ticket received -> deploy triggered: {}", dur(ms));
    }
    for d in v["deployments"].as_array().into_iter().flatten() {
        println!(
            "deployment {} to {} ({}): {}{}",
            d["tag"].as_str().unwrap_or("-"),
            d["env"].as_str().unwrap_or("-"),
            d["kind"].as_str().unwrap_or("-"),
            d["status"].as_str().unwrap_or("-"),
            d["error"]
                .as_str()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
        for e in d["executions"].as_array().into_iter().flatten() {
            println!(
                "  execution {} `{}` {}{}",
                e["id"].as_str().unwrap_or("-"),
                e["pipeline"].as_str().unwrap_or("-"),
                e["status"].as_str().unwrap_or("-"),
                e["failed_stage"]
                    .as_str()
                    .map(|s| format!(" at stage `{s}`"))
                    .unwrap_or_default()
            );
        }
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
