//! The corpus of hostile inputs in tests/corpus/: each folder holds a config, its data files and
//! expect.toml (`exit`, `stderr` substrings, optional extra `args`). Every case runs through the
//! real binary: the exit code and the message must match, and nothing may panic. Repairable
//! inputs (CRLF, a BOM, identical duplicates, rows out of order, a missing settlement) run
//! with exit 0 and say what they repaired. Regenerate the corpus with tests/corpus/README.md.

use std::path::Path;
use std::process::Command;

#[derive(serde::Deserialize)]
struct Expect {
    exit: i32,
    stderr: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
    /// Substrings stderr must not hold (a repair that should leave no warning).
    #[serde(default)]
    absent: Vec<String>,
}

#[test]
fn every_corpus_case_fails_clearly_or_repairs_and_says_so() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let expect: Expect = toml::from_str(&std::fs::read_to_string(case.join("expect.toml")).unwrap()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_basis"))
            .args(["backtest", "--config"])
            .arg(case.join("config.toml"))
            .arg("--output-dir")
            .arg(out.path())
            .args(&expect.args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let name = case.file_name().unwrap().to_string_lossy();
        let code = output.status.code().unwrap_or(-1);
        let missing: Vec<&String> = expect.stderr.iter().filter(|s| !stderr.contains(s.as_str())).collect();
        let unwanted: Vec<&String> = expect.absent.iter().filter(|s| stderr.contains(s.as_str())).collect();
        if code != expect.exit || !missing.is_empty() || !unwanted.is_empty() || stderr.contains("panicked") {
            failures.push(format!("{name}: exit {code} (expected {}), missing {missing:?}, unwanted {unwanted:?}\n{stderr}", expect.exit));
        }
        // A failed run leaves nothing behind that looks like a run.
        if expect.exit != 0 {
            let left: Vec<_> = std::fs::read_dir(out.path()).map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect()).unwrap_or_default();
            if !left.is_empty() {
                failures.push(format!("{name}: a failed run left {left:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}
