//! The README's "Output schemas" tables against the files basis writes: every Parquet file's
//! columns, their order and Polars types, and the keys of metrics.json.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use polars::prelude::*;

/// README tables by heading: `### \`file\`` -> rows of (name, type) from the first two cells.
fn documented() -> BTreeMap<String, Vec<(String, String)>> {
    let readme = common::docs_text();
    let section = readme.split("## Output schemas").nth(1).expect("README has an Output schemas section");
    let section = section.split("\n## ").next().unwrap();
    let mut tables = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            let file = heading.split('`').nth(1).expect("a heading names its file in backticks").to_string();
            tables.insert(file.clone(), Vec::new());
            current = Some(file);
        } else if let (Some(file), Some(row)) = (&current, line.strip_prefix("| `")) {
            let cells: Vec<&str> = row.split(" | ").collect();
            let name = cells[0].to_string();
            let name = format!("`{name}");
            tables.get_mut(file).unwrap().push((name, cells[1].trim().to_string()));
        }
    }
    tables
}

/// Names in a cell: "`a`, `b`" -> [a, b].
fn names(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

fn schema(path: &Path) -> Vec<(String, String)> {
    let frame = ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap();
    frame.columns().iter().map(|c| (c.name().to_string(), c.dtype().to_string())).collect()
}

/// Compare a file to its table; `<param>` rows stand for the sweep's parameter columns and
/// `in_sample_<metric>, out_of_sample_<metric>` for the metric pairs.
fn check(file: &str, actual: &[(String, String)], params: &[&str], metrics: &[String]) {
    let tables = documented();
    let rows = tables.get(file).unwrap_or_else(|| panic!("README documents no `{file}`"));
    let mut expected: Vec<(String, String)> = Vec::new();
    for (cell, ty) in rows {
        let columns = names(cell);
        if columns == ["<param>"] {
            expected.extend(params.iter().map(|p| (p.to_string(), "f64".to_string())));
        } else if columns.iter().any(|c| c.contains("<metric>")) {
            for m in metrics {
                expected.push((format!("in_sample_{m}"), ty.clone()));
                expected.push((format!("out_of_sample_{m}"), ty.clone()));
            }
        } else {
            expected.extend(columns.into_iter().map(|c| (c, ty.clone())));
        }
    }
    let actual: Vec<(String, String)> = actual.to_vec();
    assert_eq!(actual, expected, "{file}: the file (left) and README (right) differ");
}

#[test]
fn readme_schemas_match_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let basis = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_basis")).current_dir(env!("CARGO_MANIFEST_DIR")).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let out = dir.path().to_str().unwrap();
    basis(&["backtest", "--output-dir", out]);
    let run = dir.path().join("sample");
    check("ledger.parquet", &schema(&run.join("ledger.parquet")), &[], &[]);
    check("trades.parquet", &schema(&run.join("trades.parquet")), &[], &[]);
    check("funding.parquet", &schema(&run.join("funding.parquet")), &[], &[]);

    basis(&["caps", "--output-dir", out, "--venue", "hyperliquid", "--cap", "0.003"]);
    check("caps_settlements.parquet", &schema(&dir.path().join("sample-caps/caps_settlements.parquet")), &[], &[]);

    let sweep = dir.path().join("sweep.toml");
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basis.toml");
    std::fs::write(
        &sweep,
        format!(
            "base = {:?}\nname = \"s\"\noutput_dir = {out:?}\n[params]\n\"portfolio.leverage\" = [1.0, 2.0]\n\"costs.perp_slippage_bps\" = [0.5]\n[walk_forward]\nin_sample_days = 120\nout_of_sample_days = 60\n",
            base.display().to_string()
        ),
    )
    .unwrap();
    basis(&["sweep", "--config", sweep.to_str().unwrap()]);
    let results = schema(&dir.path().join("s/results.parquet"));
    let params = ["costs.perp_slippage_bps", "portfolio.leverage"];
    check("results.parquet", &results, &params, &[]);
    let metrics: Vec<String> = results.iter().skip(2 + params.len()).map(|(n, _)| n.clone()).collect();
    assert_eq!(metrics.len(), basis::app::sweep::METRIC_NAMES.len());
    check("walk_forward.parquet", &schema(&dir.path().join("s/walk_forward.parquet")), &params, &metrics);

    // metrics.json: every key documented, every documented key present.
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    let keys: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
    // Keys documented "only with" some setting are checked in runs that set it, below.
    let rows = &documented()["metrics.json"];
    let optional: Vec<String> = rows.iter().filter(|(_, ty)| ty.contains("only with")).flat_map(|(cell, _)| names(cell)).collect();
    let mut documented_keys: Vec<String> = rows.iter().flat_map(|(cell, _)| names(cell)).filter(|k| !optional.contains(k)).collect();
    documented_keys.sort();
    let mut actual = keys.clone();
    actual.sort();
    assert_eq!(actual, documented_keys, "metrics.json keys (left) and README (right) differ");
    assert_eq!(optional, vec!["borrow".to_string(), "execution".to_string()], "the optional metrics.json keys changed: check each in a run that sets it");
    // `execution`, with a participation cap: its keys as the row lists them.
    basis(&["backtest", "--output-dir", out, "--name", "worked", "--set", "costs.max_participation=0.5"]);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("worked/metrics.json")).unwrap()).unwrap();
    let mut execution: Vec<String> = json["execution"].as_object().expect("an execution object").keys().cloned().collect();
    execution.sort();
    let row = rows.iter().find(|(cell, _)| cell.contains("`execution`")).unwrap();
    let readme = common::docs_text();
    let line = readme.lines().find(|l| l.starts_with("| `execution`")).unwrap();
    let mut listed: Vec<String> = names(line.rsplit(" | ").nth(1).unwrap_or("")).into_iter().chain(names(line.rsplit(" | ").next().unwrap_or(""))).filter(|k| k != "execution" && !k.starts_with("costs.")).collect();
    listed.sort();
    listed.dedup();
    assert_eq!(execution, listed, "metrics.json's execution keys (left) and the docs' row (right) differ: {}", row.0);
    // `borrow`, with a borrowable series: covered by tests/borrow.rs (`borrow.capped`, `borrow.recalls`).
}
