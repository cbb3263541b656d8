//! The library's layers, checked on its source: each top-level module may use only the modules
//! below it (so the import graph has no cycle), files inside a module form no cycle either, and
//! the decision core uses nothing that does I/O. ARCHITECTURE.md draws the same picture.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top: a module may use those before it, never those after.
const LAYERS: &[&str] = &[
    "domain", "config", "sources", "core", "store", "clients", "report", "worker", "http",
    "server", "lambda",
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

/// Within one top-level module, files use each other without a cycle: `super::x` and
/// `crate::module::x` references, resolved to the file that holds `x`'s module.
#[test]
fn files_within_a_module_form_no_cycle() {
    let modules = modules();
    let names: BTreeSet<&str> = modules.keys().map(String::as_str).collect();
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, text) in &modules {
        let body = product_code(text);
        let parent = name.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
        let this_dir = name.as_str();
        let mut targets = BTreeSet::new();
        for (prefix, base) in [("crate::", ""), ("super::", parent), ("self::", this_dir)] {
            for (i, _) in body.match_indices(prefix) {
                let rest: String = body[i + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let mut path: Vec<&str> = if base.is_empty() {
                    Vec::new()
                } else {
                    base.split("::").collect()
                };
                for seg in rest.split("::").filter(|s| !s.is_empty()) {
                    path.push(seg);
                }
                // The longest prefix of the path that is a file of ours.
                while !path.is_empty() && !names.contains(path.join("::").as_str()) {
                    path.pop();
                }
                let target = path.join("::");
                if let Some(t) = names.get(target.as_str())
                    && *t != name.as_str()
                    && t.split("::").next() == name.split("::").next()
                {
                    targets.insert(*t);
                }
            }
        }
        edges.insert(name.as_str(), targets);
    }
    // A parent module that only declares and re-exports its children does not "use" them in the
    // sense of depending on their internals; but a re-export is an edge all the same, so the
    // graph below counts it, and a child that uses its parent then forms a cycle.
    let mut cycles = Vec::new();
    for start in edges.keys() {
        let mut stack = vec![(*start, vec![*start])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for next in edges.get(node).into_iter().flatten() {
                if next == start {
                    cycles.push(path.join(" -> ") + " -> " + start);
                } else if seen.insert(*next) {
                    let mut p = path.clone();
                    p.push(next);
                    stack.push((next, p));
                }
            }
        }
    }
    cycles.sort();
    cycles.dedup();
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
