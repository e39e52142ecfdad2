//! Helpers the printing benchmarks share: peak memory, and child processes timed and measured
//! from a small runner process (a child forked from a large bench would count its parent's
//! pages in its peak).
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Peak resident set size of this process so far, MiB (Linux `VmHWM`; NaN elsewhere).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Wall seconds and peak resident memory (MiB) of a command run to completion.
pub fn measure(command: &mut Command) -> (f64, f64, bool, String) {
    let started = Instant::now();
    let child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    // Read the output on threads so a full pipe cannot block the child.
    let mut child = child;
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).ok();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).ok();
        text
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid, and wait4 writes it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    let ok = waited == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let text = format!("{}{}", out.join().unwrap_or_default(), err.join().unwrap_or_default());
    (seconds, usage.ru_maxrss as f64 / 1024.0, ok, text)
}

/// Runner mode: read commands (tab-separated program and arguments) from stdin, run each, and
/// answer `seconds<TAB>peak MiB<TAB>ok` per command.
pub fn runner() {
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let parts: Vec<&str> = line.split('\t').collect();
        // Earlier runs' files (a ledger of 334 MB at eight years) are written back to disk
        // first, not while this one is timed.
        // SAFETY: sync takes no arguments and only schedules and waits for writeback.
        unsafe { libc::sync() };
        let (seconds, peak, ok, text) = measure(Command::new(parts[0]).args(&parts[1..]));
        if !ok {
            eprintln!("{text}");
        }
        let _ = writeln!(stdout, "{seconds}\t{peak}\t{ok}");
        let _ = stdout.flush();
    }
}

/// The runner process, started while this one is still small.
pub struct Runner {
    child: std::process::Child,
    answers: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Runner {
    /// A printing bench's start: `None` when this process is only listing (`--list`, as
    /// `cargo bench` asks) or is itself the runner (`--runner`, served here to the end);
    /// otherwise the runner, started while this process is still small.
    pub fn for_bench() -> Option<Runner> {
        if std::env::args().any(|a| a == "--list") {
            return None;
        }
        if std::env::args().any(|a| a == "--runner") {
            runner();
            return None;
        }
        Some(Runner::start())
    }

    fn start() -> Runner {
        use std::io::BufRead;
        let mut child = Command::new(std::env::current_exe().expect("the bench binary"))
            .arg("--runner")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("starting the runner");
        let answers = std::io::BufReader::new(child.stdout.take().expect("runner stdout")).lines();
        Runner { child, answers }
    }

    /// The fastest of `runs` runs of `program args` (its wall seconds), the highest peak MiB,
    /// and whether every run succeeded; the folders `clean` are removed before each run.
    pub fn best_of(&mut self, runs: usize, program: &str, args: &[&str], clean: &[&Path]) -> (f64, f64, bool) {
        let mut best = (f64::INFINITY, 0.0f64, true);
        for _ in 0..runs {
            for folder in clean {
                let _ = std::fs::remove_dir_all(folder);
            }
            let (seconds, peak, ok) = self.run(program, args);
            best = (best.0.min(seconds), best.1.max(peak), best.2 && ok);
        }
        best
    }

    /// Wall seconds, peak MiB and success of `program args`.
    pub fn run(&mut self, program: &str, args: &[&str]) -> (f64, f64, bool) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("runner stdin");
        writeln!(stdin, "{}", std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join("\t")).expect("runner");
        stdin.flush().expect("runner");
        let answer = self.answers.next().and_then(Result::ok).unwrap_or_default();
        let fields: Vec<&str> = answer.split('\t').collect();
        (fields.first().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN), fields.get(1).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN), fields.get(2) == Some(&"true"))
    }
}

