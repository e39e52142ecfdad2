//! Robustness end to end: byte-identical outputs across runs and thread counts, a run killed
//! while writing leaves nothing that looks complete, and strings from data or config are text in
//! the report, never markup (checked in headless Chromium).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::chromium;

fn basis() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_basis"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

#[test]
fn outputs_are_byte_identical_across_runs_and_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for (k, threads) in ["1", "2", "8"].iter().enumerate() {
        let name = format!("run{k}");
        let output = basis()
            .env("RAYON_NUM_THREADS", threads)
            .env("POLARS_MAX_THREADS", threads)
            .args(["backtest", "--output-dir", dir.path().to_str().unwrap(), "--name", &name])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let folder = dir.path().join(&name);
        outputs.push(["ledger.parquet", "metrics.json", "trades.parquet", "funding.parquet"].map(|f| std::fs::read(folder.join(f)).unwrap()));
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]), "outputs differ between runs or thread counts");
}

/// The sample as 1-minute bars (a year: 525,600 steps), so a run takes long enough to kill.
fn minute_sample(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let output = basis().args(["data", "synth", "--bar-minutes", "1", "--days", "120", "--out"]).arg(&data).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let config = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basis.toml"))
        .unwrap()
        .replace("sample/", &format!("{}/", data.display()))
        .replace("-1h-", "-1m-")
        .replace("path = \"sample/staking.csv\"", &format!("path = \"{}/staking.csv\"", data.display()));
    let path = dir.join("minute.toml");
    std::fs::write(&path, config).unwrap();
    path
}

#[test]
fn a_run_killed_while_writing_leaves_nothing_that_looks_complete() {
    let dir = tempfile::tempdir().unwrap();
    let config = minute_sample(dir.path());
    let out = dir.path().join("out");
    let run = || basis().args(["backtest", "--config", config.to_str().unwrap(), "--output-dir", out.to_str().unwrap(), "--name", "big"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut child = run();
    // Kill as soon as the run starts writing (its hidden temporary folder appears).
    let started = Instant::now();
    loop {
        let writing = std::fs::read_dir(&out).map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with(".big.tmp-"))).unwrap_or(false);
        if writing || child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the run never started writing");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().ok();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run finished before it could be killed; make the sample longer");
    let visible: Vec<String> = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with('.')).collect();
    assert!(visible.is_empty(), "a killed run left {visible:?}");
    // The next run takes the name (nothing was claimed) and clears the abandoned folder.
    let output = run().wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(out.join("big/manifest.json").is_file());
    let hidden: Vec<String> = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with('.')).collect();
    assert!(hidden.is_empty(), "left behind: {hidden:?}");
}


#[test]
fn run_names_cannot_leave_the_output_folder() {
    // Needs no browser: runs everywhere, CI or not.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    for name in ["../x", "/tmp/x", ".hidden", "a/b", ".."] {
        let output = basis().args(["backtest", "--output-dir", out.to_str().unwrap(), "--name", name]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "--name {name:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    // Nothing was written, inside the output folder or beside it.
    let inside: Vec<String> = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(inside.is_empty(), "refused runs left {inside:?}");
    assert!(!dir.path().join("x").exists(), "--name ../x wrote beside the output folder");
}

#[test]
fn a_hostile_symbol_and_name_render_as_text() {
    // First what needs no browser, unconditionally: the page escapes strings from data and config.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let hostile = "<script>alert(1)</script>";
    let output = basis()
        .args(["backtest", "--output-dir", out, "--set", &format!("data.symbol=\"{hostile}\""), "--set", "data.allow_symbol_mismatch=true", "--set", "venue.name=\"<img src=x onerror=alert(2)>\""])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let page = std::fs::read_to_string(dir.path().join("sample/index.html")).unwrap();
    assert!(!page.contains("<script>alert") && !page.contains("<img src=x"), "raw markup in the page");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"), "the venue name is not in the page as text");

    // Then the browser half: the DOM Chromium builds from the page holds the strings as text.
    let Some(browser) = chromium() else {
        assert!(std::env::var_os("CI").is_none(), "Chromium is missing under CI; .ci/run installs Debian's chromium package");
        eprintln!("skipped the browser half: no Chromium on PATH (apt-get install chromium, or set BASIS_CHROMIUM)");
        return;
    };
    let url = format!("file://{}", dir.path().join("sample/index.html").display());
    let dom = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", "--dump-dom"])
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg(&url)
        .output()
        .unwrap();
    let html = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the symbol is not shown as text");
    assert!(!html.contains("<script>alert") && !html.contains("<img src=x") && html.contains("&lt;img src=x onerror=alert(2)&gt;"), "the browser built markup from data");
    assert!(!log.contains(":CONSOLE"), "console output:\n{log}");
}
