//! The dependency direction of the crate's modules, checked on the source: a module may import
//! from a layer below its own, or from its own layer without a cycle. A new upward import (or a
//! cycle) fails here and names the file and the edge.
//!
//! Layers, bottom to top (README "Code map"):
//! 0. `model`, `time`, `rng`, `error`, `parquet` — plain types and helpers;
//! 1. `data`, `venue`, `sim`, `measure` — loading and aligning, venue rules, the simulation,
//!    the ledger and metrics;
//! 2. `config`, `render`, `output`, `signal` — the TOML at the boundary, charts and HTML, run
//!    folders, signals and rules;
//! 3. `app` — the commands, each a pipeline over the layers below;
//! 4. `cli` — arguments and dispatch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LAYERS: [&[&str]; 5] = [&["model", "time", "rng", "error", "parquet"], &["data", "venue", "sim", "measure"], &["config", "render", "output", "signal"], &["app"], &["cli"]];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::<module>` a file names (the crate-root macros count as `error`), with the line.
fn imports(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            // `crate::{...}` groups are read below.
            if !name.is_empty() {
                let module = if name == "bail_input" || name == "input_error" { "error".to_string() } else { name };
                out.push((module, n + 1));
            }
            rest = after;
        }
        // `use crate::{a, b::c}` groups.
        if let Some(at) = code.find("crate::{") {
            let group = &code[at + "crate::{".len()..];
            for item in group.split(|c: char| c == ',' || c == '}') {
                let name: String = item.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    let module = if name == "bail_input" || name == "input_error" { "error".to_string() } else { name };
                    out.push((module, n + 1));
                }
            }
        }
    }
    out
}

#[test]
fn modules_import_only_downward_and_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut same_layer: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if first == "lib" || first == "main" {
            continue;
        }
        let Some(own) = layer_of(&first) else {
            problems.push(format!("src/{}: module `{first}` is in no layer; add it to LAYERS (and README's code map)", relative.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (target, line) in imports(&text) {
            if target == first {
                continue;
            }
            match layer_of(&target) {
                None => problems.push(format!("src/{}:{line}: imports `crate::{target}`, which is in no layer", relative.display())),
                Some(theirs) if theirs > own => problems.push(format!("src/{}:{line}: `{first}` (layer {own}) imports `{target}` (layer {theirs}), a layer above it", relative.display())),
                Some(theirs) if theirs == own => {
                    same_layer.entry(first.clone()).or_default().insert(target);
                }
                _ => {}
            }
        }
    }
    // Imports inside a layer must not form a cycle.
    for (from, targets) in &same_layer {
        for to in targets {
            if reaches(&same_layer, to, from, &mut BTreeSet::new()) {
                problems.push(format!("cycle: `{from}` imports `{to}`, and `{to}` leads back to `{from}`"));
            }
        }
    }
    assert!(problems.is_empty(), "module dependencies point the wrong way:\n  {}", problems.join("\n  "));
}

fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str, seen: &mut BTreeSet<String>) -> bool {
    if from == to {
        return true;
    }
    if !seen.insert(from.to_string()) {
        return false;
    }
    graph.get(from).is_some_and(|next| next.iter().any(|n| reaches(graph, n, to, seen)))
}

#[test]
fn the_checker_sees_imports() {
    let found: Vec<String> = imports("use crate::{bail_input, data::align};\nlet x = crate::sim::run(); // crate::app").into_iter().map(|(m, _)| m).collect();
    assert!(found.contains(&"error".to_string()) && found.contains(&"data".to_string()) && found.contains(&"sim".to_string()));
    assert!(!found.contains(&"app".to_string()));
}

/// `super::<name>` references of a file (the siblings it imports), groups included.
fn sibling_imports(text: &str, parent: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    // A sibling is named `super::x`, or by its full path `crate::<parent>::x`.
    let full = format!("crate::{parent}::");
    let prefixes: Vec<&str> = if parent.is_empty() { vec!["super::"] } else { vec!["super::", full.as_str()] };
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for prefix in &prefixes {
            scan(code, prefix, &mut out);
        }
    }
    out
}

fn scan(code: &str, prefix: &str, out: &mut BTreeSet<String>) {
    {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let after = &rest[at + prefix.len()..];
            if let Some(group) = after.strip_prefix('{') {
                for item in group.split(|c: char| c == ',' || c == '}') {
                    let name: String = item.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() {
                        out.insert(name);
                    }
                }
            } else {
                let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                out.insert(name);
            }
            rest = after;
        }
    }
}

#[test]
fn files_of_one_module_do_not_import_each_other_in_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut dirs = vec![src.clone()];
    let mut problems = Vec::new();
    while let Some(dir) = dirs.pop() {
        // Siblings: the files and folders of one module (the parent, mod.rs, is not a sibling).
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut names = BTreeSet::new();
        let entries: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).collect();
        for path in &entries {
            if path.is_dir() {
                dirs.push(path.clone());
            }
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if name != "mod" && (path.is_dir() || path.extension().is_some_and(|e| e == "rs")) {
                names.insert(name);
            }
        }
        for path in &entries {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if !names.contains(&name) {
                continue;
            }
            let mut files = Vec::new();
            if path.is_dir() {
                // A folder module's own files import its siblings through `super::super::`; only
                // its mod.rs speaks for it with `super::`.
                files.push(path.join("mod.rs"));
            } else {
                files.push(path.clone());
            }
            for file in files.iter().filter(|f| f.is_file()) {
                let text = std::fs::read_to_string(file).unwrap();
                let parent = dir.strip_prefix(&src).unwrap_or(&dir).to_string_lossy().replace('/', "::");
                let targets: BTreeSet<String> = sibling_imports(&text, &parent).into_iter().filter(|t| names.contains(t) && *t != name).collect();
                graph.entry(name.clone()).or_default().extend(targets);
            }
        }
        for (from, targets) in &graph {
            for to in targets {
                if reaches(&graph, to, from, &mut BTreeSet::new()) {
                    problems.push(format!("{}: `{from}` imports `{to}`, and `{to}` leads back to `{from}`", dir.strip_prefix(&src).unwrap_or(&dir).display()));
                }
            }
        }
    }
    problems.sort();
    assert!(problems.is_empty(), "files import each other in a cycle:\n  {}", problems.join("\n  "));
}
