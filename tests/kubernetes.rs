//! README's Kubernetes Indexed Job manifest against the Kubernetes schema, with
//! `kubernetes-validate` (PyPI, `tests/requirements.txt`; strict: unknown fields are errors).
//! The validator is `$BASIS_VENV/bin/kubernetes-validate`, else the one on PATH. Under CI it must
//! be there; elsewhere the test says plainly that it skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn validator() -> Option<PathBuf> {
    let venv = std::env::var_os("BASIS_VENV").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/basis-venv")));
    let in_venv = venv.map(|v| v.join("bin/kubernetes-validate")).filter(|p| p.is_file());
    in_venv.or_else(|| {
        let paths = std::env::var_os("PATH")?;
        std::env::split_paths(&paths).map(|d| d.join("kubernetes-validate")).find(|p| p.is_file())
    })
}

/// The README's first ```yaml block.
fn readme_manifest() -> String {
    let readme = common::docs_text();
    let start = readme.find("```yaml\n").expect("README has a ```yaml block (the Kubernetes Job)") + "```yaml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    readme[start..end].to_string()
}

fn validate(validator: &Path, manifest: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("job.yaml");
    std::fs::write(&file, manifest).unwrap();
    let output = Command::new(validator).args(["--strict", "--kubernetes-version", "1.37.0"]).arg(&file).output().unwrap();
    (output.status.success(), format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
}

#[test]
fn the_readme_indexed_job_is_a_valid_kubernetes_job() {
    let Some(validator) = validator() else {
        assert!(std::env::var_os("CI").is_none(), "kubernetes-validate is missing under CI: .ci/run installs tests/requirements.txt");
        eprintln!("skipped: kubernetes-validate is not installed (pip install -r tests/requirements.txt)");
        return;
    };
    let manifest = readme_manifest();
    assert!(manifest.contains("completionMode: Indexed") && manifest.contains("JOB_COMPLETION_INDEX"), "{manifest}");
    let (ok, text) = validate(&validator, &manifest);
    assert!(ok, "README's Job manifest does not validate:\n{text}");
    // The validator rejects a field the schema does not have (so a pass means something).
    let (ok, text) = validate(&validator, &manifest.replace("  parallelism: 16\n", "  parallelism: 16\n  shards: 16\n"));
    assert!(!ok && text.contains("shards"), "a manifest with an unknown field passed:\n{text}");
}
