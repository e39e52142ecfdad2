//! The Python package (`python/`): built into a virtual environment with maturin and tested with
//! pytest against this build's CLI binary (`python/tests/`), whenever a Python 3 is present.
//! Under `CI=true` a missing Python, or a package that cannot be built or installed, fails.
//!
//! The environment is `$BASIS_VENV` (`.ci/run` sets it), else `target/python-venv`. The build
//! shares this build's target directory and release profile, so it compiles only the extension
//! crate (polars is the CLI's).

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn python() -> Option<PathBuf> {
    if let Ok(python) = std::env::var("BASIS_PYTHON") {
        return Some(PathBuf::from(python));
    }
    ["python3", "python"].iter().find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success())).map(PathBuf::from)
}

fn run(what: &str, command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what} failed ({}):\n{text}", output.status);
    eprintln!("{what}: ok\n{}", text.lines().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n"));
}

#[test]
fn the_python_package_builds_and_passes_its_tests() {
    let ci = std::env::var_os("CI").is_some_and(|v| v == "true" || v == "1");
    let Some(python) = python() else {
        assert!(!ci, "no Python 3 on this machine: under CI the Python package must be built and tested");
        eprintln!("skipped: no Python 3 found (set BASIS_PYTHON to one)");
        return;
    };
    let root = Path::new(ROOT);
    let venv = std::env::var_os("BASIS_VENV").map(PathBuf::from).unwrap_or_else(|| root.join("target/python-venv"));
    let bin = venv.join("bin");
    if !bin.join("python").is_file() {
        run("python -m venv", Command::new(&python).args(["-m", "venv"]).arg(&venv));
    }
    let venv_python = bin.join("python");
    // What building and testing need (quick when already there).
    run("pip install maturin pytest polars", Command::new(&venv_python).args(["-m", "pip", "install", "-q", "maturin>=1.9.4,<2", "pytest", "polars>=1.3"]));
    let started = std::time::Instant::now();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    run(
        "maturin develop --release",
        Command::new(bin.join("maturin")).args(["develop", "--release", "-q", "-m"]).arg(root.join("python/Cargo.toml")).env("VIRTUAL_ENV", &venv).env("PATH", &path).current_dir(root),
    );
    eprintln!("the extension built and installed in {:.1} s", started.elapsed().as_secs_f64());
    run(
        "pytest python/tests",
        Command::new(&venv_python).args(["-m", "pytest", "-q", "-p", "no:cacheprovider"]).arg(root.join("python/tests")).env("BASIS_BIN", env!("CARGO_BIN_EXE_basis")).current_dir(root),
    );
}
