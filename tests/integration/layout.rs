//! The shape of the code, checked: the library's top-level modules form no
//! import cycle, and nothing outside `commands` (the command line) imports
//! from `commands`. `docs/architecture.md` draws the layers this keeps
//! honest; a change that breaks them fails here with the cycle named.
//!
//! The check reads the source: every `crate::NAME` path and every name in a
//! `use crate::{...}` group, in each file of `src/` except the binaries,
//! is an edge from the file's top-level module to `NAME`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Top-level module of a file under `src/` (`ops/run.rs` -> `ops`), or None
/// for the crate root and the binaries.
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    match first.as_ref() {
        "lib.rs" | "main.rs" | "bin" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

/// The top-level modules a piece of source refers to through `crate::`.
fn references(source: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |name: &str| {
        // `crate::Error` and `crate::Result` are re-exports of `error`.
        let name = match name {
            "Error" | "Result" => "error",
            n => n,
        };
        if modules.contains(name) {
            out.insert(name.to_string());
        }
    };
    let code: String = source
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::c, d::{e, f}}`: the first name of each
            // item at the top level of the group.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphabetic() || c == '_') => {
                        let name: String = group[i..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        add(&name);
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            add(&name);
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = src();
    let modules: BTreeSet<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter_map(|e| module_of(Path::new(&e.file_name())))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in crate::support::walk(&root) {
        if file.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = file.strip_prefix(&root).unwrap();
        let Some(module) = module_of(rel) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let deps = edges.entry(module.clone()).or_default();
        for dep in references(&text, &modules) {
            if dep != module {
                deps.insert(dep);
            }
        }
    }
    edges
}

/// A cycle through `start`, if there is one (as a path of module names).
fn cycle_from(
    start: &str,
    at: &str,
    edges: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for next in edges.get(at).into_iter().flatten() {
        if next == start {
            let mut cycle = path.clone();
            cycle.push(start.to_string());
            return Some(cycle);
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if let Some(c) = cycle_from(start, next, edges, path, seen) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn the_reference_scanner_sees_paths_and_groups() {
    let modules: BTreeSet<String> = ["tag", "store", "error", "ops", "config"]
        .map(String::from)
        .into();
    let found = references(
        "use crate::{config::Config, store::{Store, DataArea}, Result};\n\
         let t = crate::tag::Tag::parse(x); // crate::ops is only a comment",
        &modules,
    );
    let want: BTreeSet<String> = ["config", "store", "error", "tag"].map(String::from).into();
    assert_eq!(found, want);
}

#[test]
fn top_level_modules_form_no_import_cycle() {
    let edges = graph();
    assert!(edges.len() > 10, "the scan found the modules: {edges:?}");
    for module in edges.keys() {
        let mut path = vec![module.clone()];
        let mut seen = BTreeSet::new();
        if let Some(cycle) = cycle_from(module, module, &edges, &mut path, &mut seen) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn only_the_command_line_imports_commands() {
    let edges = graph();
    let offenders: Vec<&String> = edges
        .iter()
        .filter(|(m, deps)| *m != "commands" && deps.contains("commands"))
        .map(|(m, _)| m)
        .collect();
    assert!(offenders.is_empty(), "import from commands: {offenders:?}");
    // The operations are the library's surface: everything but the
    // command line stays below them.
    let above_ops: Vec<&String> = edges
        .iter()
        .filter(|(m, deps)| *m != "commands" && *m != "ops" && deps.contains("ops"))
        .map(|(m, _)| m)
        .collect();
    assert!(above_ops.is_empty(), "import from ops: {above_ops:?}");
}
