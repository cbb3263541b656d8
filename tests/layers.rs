//! The library's layers, checked on its source: each top-level module may use only the modules
//! below it, no module uses another that uses it back (the import graph has no cycle, as
//! `cargo modules dependencies` counts edges), and the decision core uses nothing that does I/O.
//! ARCHITECTURE.md draws the same picture.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top: a module may use those before it, never those after.
const LAYERS: &[&str] = &[
    "domain", "metrics", "config", "sources", "core", "store", "clients", "report", "requests",
    "worker", "http", "server", "lambda",
];

/// What the decision core must not use: the network, files, clocks, the async runtime, the
/// database drivers, and the layers that carry decisions out.
const NOT_IN_CORE: &[&str] = &[
    "tokio",
    "reqwest",
    "axum",
    "hyper",
    "rusqlite",
    "tokio_postgres",
    "deadpool_postgres",
    "std::fs",
    "std::net",
    "std::time::Instant",
    "std::time::SystemTime",
    "Utc::now",
    "now_ms",
    "crate::store",
    "crate::clients",
    "crate::worker",
    "crate::http",
    "crate::server",
    "crate::lambda",
    "crate::report",
    "crate::config::secret",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without comments (doc links are not uses).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every library file with its module path (`store/jobs.rs` -> `store::jobs`), test-only files
/// left out (a test may reach anywhere).
fn modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    files(&src, &mut paths);
    paths
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
                parts.pop();
            }
            let name = parts.join("::");
            let text = std::fs::read_to_string(&p).unwrap();
            // Unit-test modules of their own (`tests.rs`, `testing.rs`, `proptests.rs`).
            let test_only = ["tests", "testing", "proptests"]
                .iter()
                .any(|t| parts.last().is_some_and(|l| l == t));
            (!test_only).then_some((name, text))
        })
        .collect()
}

/// The code of a file before its inline `#[cfg(test)] mod ... {` (a declared `mod testing;` is a
/// file of its own, left out by [`modules`]).
fn product_code(text: &str) -> String {
    let inline_tests = text.match_indices("#[cfg(test)]\nmod ").find(|(i, _)| {
        let rest = &text[i + "#[cfg(test)]\nmod ".len()..];
        let line = rest.lines().next().unwrap_or_default();
        line.trim_end().ends_with('{')
    });
    let text = match inline_tests {
        Some((i, _)) => &text[..i],
        None => text,
    };
    code(text)
}

#[test]
fn each_module_uses_only_the_layers_below_it() {
    let mut wrong = Vec::new();
    for (name, text) in modules() {
        let top = name.split("::").next().unwrap_or_default();
        let Some(level) = LAYERS.iter().position(|l| *l == top) else {
            continue;
        };
        let body = product_code(&text);
        for (i, used) in LAYERS.iter().enumerate() {
            if i > level && body.contains(&format!("crate::{used}")) {
                wrong.push(format!("{name} uses {used}, a layer above it"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn every_top_level_module_has_a_layer() {
    let tops: BTreeSet<String> = modules()
        .keys()
        .map(|n| n.split("::").next().unwrap_or_default().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    for top in tops {
        assert!(
            LAYERS.contains(&top.as_str()),
            "module `{top}` has no place in LAYERS: say where it sits"
        );
    }
}

/// The modules a module's code names, as `cargo modules dependencies` counts "uses" edges: a
/// path names the deepest module it goes through (`crate::store::db::Conn` names `store::db`,
/// `super::Result` the parent, `jobs::ClaimedJob` in `store` its child `store::jobs`).
fn uses(name: &str, body: &str, names: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < body.len() {
        let at_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let rest = &body[i..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        if !at_word || !path.contains("::") || path.starts_with(':') {
            i += match path.len() {
                0 => rest.chars().next().map_or(1, char::len_utf8),
                n => n,
            };
            continue;
        }
        let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let base: Vec<&str> = match segs.first().copied() {
            Some("crate") => {
                segs.remove(0);
                Vec::new()
            }
            Some("super") => {
                let mut base: Vec<&str> = name.split("::").filter(|s| !s.is_empty()).collect();
                while segs.first() == Some(&"super") {
                    segs.remove(0);
                    base.pop();
                }
                base
            }
            Some("self") => {
                segs.remove(0);
                name.split("::").filter(|s| !s.is_empty()).collect()
            }
            // A bare path counts when it starts with a child module of this one.
            Some(first) if names.contains(&join(name, first)) => {
                name.split("::").filter(|s| !s.is_empty()).collect()
            }
            _ => {
                i += path.len();
                continue;
            }
        };
        let mut full: Vec<&str> = base;
        full.extend(segs);
        while !full.is_empty() && !names.contains(&full.join("::")) {
            full.pop();
        }
        let target = full.join("::");
        if !target.is_empty() && target != name {
            found.insert(target);
        }
        i += path.len();
    }
    found
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}::{child}")
    }
}

/// No module of the library uses another that (through any chain) uses it back: the import
/// graph has no cycle, counted as `cargo modules dependencies` counts it (parents that re-export
/// their children and children that use their parent included).
#[test]
fn the_import_graph_has_no_cycle() {
    let modules = modules();
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let edges: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|(name, text)| (name.clone(), uses(name, &product_code(text), &names)))
        .collect();
    let mut cycles = Vec::new();
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for next in edges.get(&node).into_iter().flatten() {
                if next == start {
                    let mut cycle = path.clone();
                    cycle.push(start.clone());
                    cycles.push(cycle.join(" -> "));
                } else if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    cycles.sort();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_core_does_no_io() {
    let mut wrong = Vec::new();
    for (name, text) in modules() {
        if !name.starts_with("core") {
            continue;
        }
        let body = product_code(&text);
        for banned in NOT_IN_CORE {
            if body.contains(banned) {
                wrong.push(format!("{name} uses {banned}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
