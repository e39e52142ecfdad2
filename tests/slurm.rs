//! README's Slurm array job on a real one-node Slurm cluster brought up by the test: a private
//! `munged` (its own key and socket), `slurmctld` and `slurmd` on this machine with a minimal
//! `slurm.conf` written here (ports picked free, state in a temporary folder). The README's script, made a 4-shard sweep, is submitted
//! with `sbatch`, waited for with `squeue`, and the shards' `results.parquet` files merged with
//! polars must equal the unsharded sweep row for row.
//!
//! Needs Debian's `slurm-wlm` and `munge` (`.ci/run` installs them under CI). Without them the
//! test says so and passes, except under CI, where it fails unless `.ci/run` reported that it
//! could not install or start them (`BASIS_SLURM_SKIP`, printed with the skip).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use polars::prelude::*;

fn on_path(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")]).map(|d| d.join(program)).find(|p| p.is_file())
}

/// A free TCP port on localhost (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The daemons started by the test, stopped when it ends (passed or not).
struct Daemons(Vec<Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        // SIGTERM first, so slurmctld stops its script daemon and slurmd its step daemons.
        for child in &self.0 {
            // SAFETY: signalling our own child process by pid.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        for child in &mut self.0 {
            let started = Instant::now();
            while child.try_wait().ok().flatten().is_none() && started.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The README's array-job script (the ```sh block with `#SBATCH`).
fn readme_script() -> String {
    let readme = common::docs_text();
    readme
        .split("```sh\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or(""))
        .find(|block| block.contains("#SBATCH"))
        .expect("README shows a Slurm array job (a ```sh block with #SBATCH)")
        .to_string()
}

fn read(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).finish().unwrap()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool, log: &Path) {
    let started = Instant::now();
    while !done() {
        if started.elapsed() >= limit {
            let logs: String = ["munged.log", "munged.err", "slurmctld.log", "slurmd.log"]
                .iter()
                .map(|name| format!("--- {name}\n{}\n", std::fs::read_to_string(log.join(name)).unwrap_or_default()))
                .collect();
            panic!("{what}: not done after {limit:?}; logs in {}:\n{logs}", log.display());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn the_readme_array_job_shards_a_sweep_on_a_real_slurm_cluster() {
    // .ci/run sets this when the machine could not install or start Slurm; say so and stop.
    if let Ok(reason) = std::env::var("BASIS_SLURM_SKIP") {
        eprintln!("skipped: {reason}");
        return;
    }
    let (Some(slurmctld), Some(slurmd), Some(munged), Some(sbatch), Some(squeue), Some(sinfo)) =
        (on_path("slurmctld"), on_path("slurmd"), on_path("munged"), on_path("sbatch"), on_path("squeue"), on_path("sinfo"))
    else {
        assert!(std::env::var_os("CI").is_none(), "slurm-wlm and munge are missing under CI: .ci/run installs them");
        eprintln!("skipped: Slurm is not installed here (apt-get install slurm-wlm munge)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["state", "spool", "log"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    // Addresses are given as 127.0.0.1: the cluster needs no name resolution of the host.
    let host = String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout).unwrap().trim().to_string();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap().trim().to_string();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let conf = root.join("slurm.conf");
    std::fs::write(
        &conf,
        format!(
            "ClusterName=basis-test\nSlurmctldHost={host}(127.0.0.1)\nSlurmctldPort={ctld}\nSlurmdPort={slurmd_port}\nSlurmUser={user}\nSlurmdUser={user}\n\
             AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={r}/munge/munge.socket\nStateSaveLocation={r}/state\nSlurmdSpoolDir={r}/spool\n\
             SlurmctldPidFile={r}/slurmctld.pid\nSlurmdPidFile={r}/slurmd.pid\nSlurmctldLogFile={r}/log/slurmctld.log\nSlurmdLogFile={r}/log/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n\
             ReturnToService=2\nSchedulerType=sched/builtin\nJobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
             MpiDefault=none\nNodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN\nPartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            ctld = free_port(),
            slurmd_port = free_port(),
            r = root.display()
        ),
    )
    .unwrap();
    let env = |command: &mut Command| {
        command.env("SLURM_CONF", &conf);
    };

    // munge: a private daemon with its own key and socket, so the test needs neither
    // /etc/munge/munge.key nor the system daemon (a stale /run/munge socket once hung it).
    // munged requires execute permission for all on the socket's folders.
    let mut daemons = Daemons(Vec::new());
    let munge_dir = root.join("munge");
    std::fs::create_dir_all(&munge_dir).unwrap();
    for folder in [root, munge_dir.as_path()] {
        std::fs::set_permissions(folder, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let key = munge_dir.join("munge.key");
    // A random 1024-byte key, owner-only, as mungekey writes it.
    let mut key_bytes = vec![0u8; 1024];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut key_bytes).unwrap();
    std::fs::write(&key, &key_bytes).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let munge_socket = munge_dir.join("munge.socket");
    let mut munge = Command::new(&munged);
    munge
        .arg("--foreground")
        .arg(format!("--socket={}", munge_socket.display()))
        .arg(format!("--key-file={}", key.display()))
        .arg(format!("--pid-file={}", munge_dir.join("munged.pid").display()))
        .arg(format!("--seed-file={}", munge_dir.join("munged.seed").display()))
        .arg(format!("--log-file={}", root.join("log/munged.log").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(root.join("log/munged.err")).unwrap()));
    daemons.0.push(munge.spawn().unwrap());
    let log = root.join("log");
    wait_for("munged to open its socket", Duration::from_secs(20), || munge_socket.exists(), &log);
    for daemon in [&slurmctld, &slurmd] {
        let mut command = Command::new(daemon);
        command.arg("-D").stdout(Stdio::null()).stderr(Stdio::null());
        env(&mut command);
        daemons.0.push(command.spawn().unwrap());
    }
    wait_for("the node to come up idle", Duration::from_secs(60), || {
        let mut command = Command::new(&sinfo);
        command.args(["-h", "-o", "%t"]);
        env(&mut command);
        command.output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
    }, &log);

    // The README's script as a 4-shard sweep on one CPU per task.
    let script = readme_script();
    for expected in ["#SBATCH --array=0-15 --cpus-per-task=16", "basis sweep --config sweep.toml --shard ${SLURM_ARRAY_TASK_ID}/16 --threads $SLURM_CPUS_PER_TASK"] {
        assert!(script.contains(expected), "README's array job changed; update this test:\n{script}");
    }
    let sweep_file = root.join("sweep.toml");
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basis.toml");
    std::fs::write(
        &sweep_file,
        format!(
            "base = {base:?}\nname = \"slurm\"\noutput_dir = {out:?}\nmode = \"random\"\nsamples = 24\nseed = 5\nmetric = \"sharpe\"\n[params]\n\"portfolio.leverage\" = {{ min = 1.0, max = 4.0 }}\n\"portfolio.reserve_fraction\" = [0.0, 0.2]\n",
            base = base.display().to_string(),
            out = root.join("reports").display().to_string()
        ),
    )
    .unwrap();
    let job = script
        .replace("--array=0-15 --cpus-per-task=16", "--array=0-3 --cpus-per-task=1")
        .replace("/16", "/4")
        .replace("basis sweep --config sweep.toml", &format!("{} sweep --config {}", env!("CARGO_BIN_EXE_basis"), sweep_file.display()));
    std::fs::write(root.join("job.sh"), &job).unwrap();
    let mut submit = Command::new(&sbatch);
    submit.arg(format!("--output={}/%A_%a.out", root.display())).arg(format!("--chdir={}", root.display())).arg(root.join("job.sh"));
    env(&mut submit);
    let submitted = submit.output().unwrap();
    assert!(submitted.status.success(), "sbatch failed: {}", String::from_utf8_lossy(&submitted.stderr));
    wait_for("the array job to finish", Duration::from_secs(240), || {
        let mut command = Command::new(&squeue);
        command.arg("-h");
        env(&mut command);
        command.output().is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim().is_empty())
    }, &log);

    // Merge the shards with polars; compare with the unsharded sweep.
    let mut union: Option<DataFrame> = None;
    for i in 0..4 {
        let path = root.join(format!("reports/slurm.shard-{i}-of-4/results.parquet"));
        let outputs: String = std::fs::read_dir(root).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".out")).map(|e| std::fs::read_to_string(e.path()).unwrap_or_default()).collect();
        assert!(path.is_file(), "shard {i} wrote no results; job output:\n{outputs}");
        let part = read(&path);
        match union.as_mut() {
            None => union = Some(part),
            Some(u) => {
                u.vstack_mut(&part).unwrap();
            }
        }
    }
    let union = union.unwrap().sort(["config_id"], SortMultipleOptions::default()).unwrap();
    let whole_run = Command::new(env!("CARGO_BIN_EXE_basis")).args(["sweep", "--config"]).arg(&sweep_file).output().unwrap();
    assert!(whole_run.status.success(), "{}", String::from_utf8_lossy(&whole_run.stderr));
    let whole = read(&root.join("reports/slurm/results.parquet"));
    assert_eq!(union.height(), 24);
    assert!(union.equals_missing(&whole), "the shards run by Slurm differ from the unsharded sweep:\n{union}\n{whole}");
}
