//! docs/config.md's reference table against the schema: every key `data/basis.toml` sets or
//! documents (in a comment, `# key = ...`), section by section, is named in the table's row for
//! its section, and data/basis.toml itself loads (so its keys are the schema's).

mod common;

use std::collections::BTreeMap;

#[test]
fn every_documented_key_is_in_the_reference() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = std::fs::read_to_string(root.join("data/basis.toml")).unwrap();
    basis::config::Config::load(&root.join("data/basis.toml")).expect("data/basis.toml loads: its keys are the schema's");
    // Section -> keys, from `[section]` headers (a `[data.spot]` table is key `spot` of
    // `[data]`) and `key =` lines, commented or not.
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    // Inside a sub-table (`[data.spot]`) or an array of tables (`[[signal]]`): its own keys are
    // documented with it, not in the section's row.
    let mut nested = false;
    let mut nested_by_comment = false;
    for line in config.lines() {
        let line = line.trim();
        let commented = line.starts_with('#');
        let bare = line.trim_start_matches('#').trim();
        // A header's own trailing comment is not part of it.
        let bare = if bare.starts_with('[') { bare.split(" #").next().unwrap_or(bare).trim() } else { bare };
        if !commented && nested_by_comment {
            // Real keys after a commented-out table belong to the section again.
            nested = false;
            nested_by_comment = false;
        }
        if bare.starts_with("[[") {
            nested = true;
            nested_by_comment = commented;
            continue;
        }
        if let Some(header) = bare.strip_prefix('[').and_then(|h| h.strip_suffix(']')).filter(|h| h.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')) {
            let mut parts = header.splitn(2, '.');
            let top = parts.next().unwrap_or_default().to_string();
            match parts.next() {
                Some(sub) => {
                    keys.entry(top.clone()).or_default().push(sub.split('.').next().unwrap_or(sub).to_string());
                    section = top;
                    nested = true;
                    nested_by_comment = commented;
                }
                None if !line.starts_with('#') => {
                    section = top;
                    nested = false;
                }
                None => {}
            }
            continue;
        }
        if nested {
            continue;
        }
        let Some((key, _)) = bare.split_once(" = ").or_else(|| bare.split_once('=')) else { continue };
        let key = key.trim();
        if !section.is_empty() && !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') && (line.starts_with(key) || line.starts_with(&format!("# {key}"))) {
            keys.entry(section.clone()).or_default().push(key.to_string());
        }
    }
    let docs = std::fs::read_to_string(root.join("docs/config.md")).unwrap();
    let mut missing = Vec::new();
    for (section, names) in &keys {
        let row = docs.lines().find(|l| l.starts_with(&format!("| `[{section}]`"))).unwrap_or_else(|| panic!("docs/config.md has no row for [{section}]"));
        for name in names {
            if !row.contains(&format!("`{name}`")) {
                missing.push(format!("[{section}] {name}"));
            }
        }
    }
    missing.dedup();
    assert!(missing.is_empty(), "docs/config.md's reference table does not name these keys of data/basis.toml (add them to their section's row):\n{}", missing.join("\n"));
    assert!(keys.values().map(Vec::len).sum::<usize>() > 40, "{keys:?}");
}
