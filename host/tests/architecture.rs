//! The layout's rules (docs/ARCHITECTURE.md), checked on the source: no two files of the
//! host import each other, directly or around a loop; nothing uses the HTTP service
//! (`server`), which composes the rest; and the engine, the capabilities, the store and
//! the workflow interpreter know no trigger and no running host.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path from the crate root: `["triggers", "queue", "send"]`.
type Module = Vec<String>;

/// Every `.rs` file under `dir`, as its module path.
fn modules(root: &Path, dir: &Path, out: &mut BTreeMap<Module, PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            modules(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under the root");
            let mut module: Module = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            out.insert(module, path);
        }
    }
}

/// The source without its `#[cfg(test)] mod tests` (tests may reach anywhere).
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at])
}

/// The paths `text` names from `crate::` or `super::`, as written: `crate::app::App`.
fn paths(text: &str) -> Vec<Vec<&str>> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(start) {
            let begin = from + at;
            from = begin + start.len();
            // A whole word: not `my_crate::`.
            if begin > 0 && (bytes[begin - 1].is_ascii_alphanumeric() || bytes[begin - 1] == b'_') {
                continue;
            }
            let end = text[begin..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(text.len(), |e| begin + e);
            let path: Vec<&str> = text[begin..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .collect();
            found.push(path);
        }
    }
    found
}

/// Which file modules each file module uses (a module's own ancestors and descendants
/// are one unit with it, as `use super::*` in a child is).
fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    modules(&root, &root, &mut files);
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, path) in &files {
        let text = std::fs::read_to_string(path).expect("readable source");
        for path in paths(without_tests(&text)) {
            let mut target: Module = Vec::new();
            let mut rest = path.as_slice();
            if rest.first() == Some(&"crate") {
                rest = &rest[1..];
            } else {
                target = module.clone();
                while rest.first() == Some(&"super") {
                    target.pop();
                    rest = &rest[1..];
                }
            }
            target.extend(rest.iter().map(|s| s.to_string()));
            // The longest prefix that is a file module.
            while !target.is_empty() && !files.contains_key(&target) {
                target.pop();
            }
            let related = target.starts_with(module) || module.starts_with(&target);
            if !target.is_empty() && !related {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    edges
}

/// A loop of imports through `from`, if there is one.
fn cycle_through(
    edges: &BTreeMap<Module, BTreeSet<Module>>,
    from: &Module,
    at: &Module,
    seen: &mut BTreeSet<Module>,
    trail: &mut Vec<Module>,
) -> Option<Vec<Module>> {
    for next in edges.get(at).into_iter().flatten() {
        if next == from {
            let mut cycle = trail.clone();
            cycle.push(next.clone());
            return Some(cycle);
        }
        if seen.insert(next.clone()) {
            trail.push(next.clone());
            if let Some(c) = cycle_through(edges, from, next, seen, trail) {
                return Some(c);
            }
            trail.pop();
        }
    }
    None
}

#[test]
fn no_file_imports_another_that_imports_it_back() {
    let edges = graph();
    assert!(
        edges.len() > 50,
        "the graph found too few modules to mean anything"
    );
    for module in edges.keys() {
        let mut trail = vec![module.clone()];
        if let Some(cycle) = cycle_through(&edges, module, module, &mut BTreeSet::new(), &mut trail)
        {
            let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
            panic!("import cycle: {}", names.join(" -> "));
        }
    }
}

#[test]
fn the_service_is_on_top_and_the_layers_below_know_no_trigger() {
    let edges = graph();
    let top = |m: &Module| m.first().cloned().unwrap_or_default();
    for (from, targets) in &edges {
        for to in targets {
            let (a, b) = (top(from), top(to));
            let forbidden = matches!(
                (a.as_str(), b.as_str()),
                ("triggers" | "app" | "web" | "tenants", "server")
                    | ("capabilities", "server" | "triggers" | "app")
                    | ("engine", "server" | "triggers" | "app")
                    | ("store", "server" | "triggers" | "app")
                    | ("workflow", "server" | "triggers" | "app")
            );
            assert!(
                !forbidden,
                "{} uses {}: {a} must not depend on {b} (docs/ARCHITECTURE.md)",
                from.join("::"),
                to.join("::")
            );
        }
    }
}

#[test]
fn the_checks_find_a_cycle_and_a_forbidden_edge_when_there_is_one() {
    // The path reader sees `crate::` and `super::` uses, and not a longer word.
    let found = paths("use crate::app::App; use super::fanout; my_crate::x; crate::a::{b, c}");
    assert_eq!(
        found,
        vec![
            vec!["crate", "app", "App"],
            vec!["crate", "a"],
            vec!["super", "fanout"]
        ]
    );
    // A two-module loop is found.
    let a: Module = vec!["a".into()];
    let b: Module = vec!["b".into()];
    let edges = BTreeMap::from([
        (a.clone(), BTreeSet::from([b.clone()])),
        (b.clone(), BTreeSet::from([a.clone()])),
    ]);
    let cycle = cycle_through(&edges, &a, &a, &mut BTreeSet::new(), &mut vec![a.clone()]);
    assert_eq!(cycle, Some(vec![a.clone(), b, a]));
}
