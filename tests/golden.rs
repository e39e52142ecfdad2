//! Golden outputs: the bytes of every deterministic file the main commands write, hashed and
//! compared with `tests/golden/hashes.txt`. Any change in what a run writes (a figure, a chart
//! pixel, a Parquet column) fails here and names the file, so a refactoring that should change
//! nothing is shown to change nothing, and an intended change is made on purpose: rerun with
//! `BASIS_UPDATE_GOLDEN=1 cargo test --release --test golden` and commit the new hashes with
//! the change that explains them.
//!
//! Runs: the sample backtest, the BTC daily and hourly examples on `../shared/data`, `caps` on
//! the sample, a 200-configuration sweep (`tests/golden/sweep200.toml`) and the sample stress.
//! Files that hold the time of the run or machine paths (`manifest.json`, `config.toml`, the
//! sweep's `summary.json` with its timing and folder) are left out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Files whose bytes depend on the time of the run or the machine.
const SKIPPED: [&str; 3] = ["manifest.json", "config.toml", "summary.json"];

fn run(args: &[&str], out: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_basis"))
        .current_dir(ROOT)
        .env("RAYON_NUM_THREADS", "2")
        .args(args)
        .arg("--output-dir")
        .arg(out)
        .output()
        .expect("running basis");
    assert!(output.status.success(), "basis {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
}

fn hash_folder(label: &str, folder: &Path, hashes: &mut BTreeMap<String, String>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display())).filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            hash_folder(&format!("{label}/{name}"), &path, hashes);
            continue;
        }
        if SKIPPED.contains(&name.as_str()) {
            continue;
        }
        let digest = Sha256::digest(std::fs::read(&path).unwrap());
        hashes.insert(format!("{label}/{name}"), digest.iter().map(|b| format!("{b:02x}")).collect());
    }
}

#[test]
fn outputs_are_byte_identical_to_the_golden_hashes() {
    let real = Path::new(ROOT).join("../shared/data");
    if !real.is_dir() {
        assert!(std::env::var_os("CI").is_none(), "{} is missing", real.display());
        eprintln!("skipped: {} is missing", real.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    run(&["backtest", "--name", "sample"], out);
    run(&["backtest", "--config", "data/examples/binance-btc-daily.toml", "--name", "btc-daily"], out);
    run(&["backtest", "--config", "data/examples/freqtrade-btc-1h.toml", "--name", "btc-hourly"], out);
    run(&["caps", "--name", "caps"], out);
    run(&["sweep", "--config", "tests/golden/sweep200.toml", "--name", "sweep200"], out);
    run(&["stress", "--name", "stress"], out);
    let mut actual = BTreeMap::new();
    for label in ["sample", "btc-daily", "btc-hourly", "caps", "sweep200", "stress"] {
        hash_folder(label, &out.join(label), &mut actual);
    }
    let file = Path::new(ROOT).join("tests/golden/hashes.txt");
    let text: String = actual.iter().map(|(k, v)| format!("{v}  {k}\n")).collect();
    if std::env::var_os("BASIS_UPDATE_GOLDEN").is_some() {
        std::fs::write(&file, &text).unwrap();
        return;
    }
    let expected: BTreeMap<String, String> = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (create it with BASIS_UPDATE_GOLDEN=1)", file.display()))
        .lines()
        .filter_map(|l| l.split_once("  ").map(|(h, k)| (k.to_string(), h.to_string())))
        .collect();
    let mut problems = Vec::new();
    for (name, hash) in &expected {
        match actual.get(name) {
            None => problems.push(format!("{name}: no longer written")),
            Some(h) if h != hash => problems.push(format!("{name}: changed")),
            _ => {}
        }
    }
    for name in actual.keys().filter(|k| !expected.contains_key(*k)) {
        problems.push(format!("{name}: new file"));
    }
    assert!(problems.is_empty(), "golden outputs differ ({} files); if the change is intended, rerun with BASIS_UPDATE_GOLDEN=1 and commit tests/golden/hashes.txt:\n  {}", problems.len(), problems.join("\n  "));
}
