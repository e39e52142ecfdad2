//! A content-addressed cache of parsed kline dumps, so that a long run reads a folder of
//! monthly CSV or zip dumps at the speed of Parquet, a month at a time.
//!
//! Each dump file is parsed once ([`super::klines::read_kline_file`], every row checked) into an
//! entry: a Parquet file of its bars (`known_at_ms, close, high, low, volume`; the open was
//! only needed for the checks, done by then), uncompressed and with the times delta-encoded
//! (writing and reading it costs less than compressing it would save), named by the
//! SHA-256 of the dump's bytes and the options that change what it reads as (time unit, UTC
//! offset) plus a format version. A renamed or copied dump has the same name, so it shares the
//! entry; a changed one (another hash) gets a new one. The long-run path ([`super::stream::ChunkedMarket`]) then reads
//! the entries a row group at a time, as it reads converted Parquet, so memory stays flat.
//!
//! Hashing 2 GB of dumps on every run would cost more than reading them, so the cache keeps a
//! stat record per dump path (length, modification and change times, inode, device → hash), as
//! git's index does; a file read within two seconds of its modification gets no record (it
//! could change again within the clock's resolution) and is hashed again next time.
//!
//! Where: `--cache-dir`, else `$BASIS_CACHE_DIR`, else `$XDG_CACHE_HOME/basis`, else
//! `~/.cache/basis`. `--no-cache` (or `BASIS_NO_CACHE=1`), or a folder that cannot be created
//! (with a warning), keeps entries in a folder of the run's own, removed when it ends. After a
//! run the least recently used entries are removed until the cache holds at most
//! `$BASIS_CACHE_MAX_MIB` (default 4096 MiB), but never one used in the last hour: another run
//! sharing the cache may be reading it. A dump that changes while it is read is refused (its
//! entry could hold other bytes than its name says). Entries are written to a temporary name and renamed, so
//! processes sharing a cache (a sweep's workers) never see half an entry.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use polars::prelude::*;

use super::klines::{read_kline_file, KlineBatch};
use super::read;
use crate::data::source::TimeFormat;
use crate::input_error;

/// Bumped whenever an entry's content or layout changes, so old entries are never read.
const FORMAT_VERSION: u32 = 2;

/// The key-value metadata key holding an entry's facts (JSON).
const FACTS_KEY: &str = "basis.kline_entry";

/// Rows per row group of an entry: a month of minute bars is one; a single multi-year file
/// is written, and later read, a million bars at a time.
const ENTRY_ROW_GROUP: usize = 1 << 20;

/// A file modified less than this before its reading began gets no stat record: on a file
/// system with coarse times (2 s on FAT) a change during or after the read could leave its
/// modification time as it was.
const RACY: Duration = Duration::from_secs(2);

/// An entry used this recently may be in use by another run: never trimmed.
const IN_USE: Duration = Duration::from_secs(3600);

/// Default size limit, MiB.
const DEFAULT_MAX_MIB: u64 = 4096;

/// Whether a run may use the shared cache folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheChoice {
    /// The folder the command line or the environment names (see the module doc).
    #[default]
    Shared,
    /// A folder of the run's own, removed when the run ends.
    Private,
}

/// The process-wide choice the command line made (`--no-cache`, `--cache-dir`).
static COMMAND_LINE: OnceLock<(bool, Option<PathBuf>)> = OnceLock::new();

/// Record the command line's `--no-cache` and `--cache-dir` (once, before any run).
pub fn configure(no_cache: bool, dir: Option<PathBuf>) {
    let _ = COMMAND_LINE.set((no_cache, dir));
}

/// The shared cache folder in effect, or `None` when the cache is off (`--no-cache`,
/// `BASIS_NO_CACHE`) or no folder can be named (no home).
pub fn shared_dir() -> Option<PathBuf> {
    let (no_cache, dir) = COMMAND_LINE.get().cloned().unwrap_or_default();
    let off = no_cache || std::env::var("BASIS_NO_CACHE").is_ok_and(|v| !v.is_empty() && v != "0");
    if off {
        return None;
    }
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    dir.or_else(|| from_env("BASIS_CACHE_DIR"))
        .or_else(|| from_env("XDG_CACHE_HOME").map(|d| d.join("basis")))
        .or_else(|| from_env("HOME").map(|d| d.join(".cache").join("basis")))
}

/// The size limit in bytes (`BASIS_CACHE_MAX_MIB`, default 4096 MiB).
pub fn max_bytes() -> Result<u64> {
    match std::env::var("BASIS_CACHE_MAX_MIB") {
        Ok(text) if !text.trim().is_empty() => {
            let mib: u64 = text.trim().parse().map_err(|_| input_error!("BASIS_CACHE_MAX_MIB={text:?}: expected a whole number of MiB, e.g. 4096"))?;
            Ok(mib << 20)
        }
        _ => Ok(DEFAULT_MAX_MIB << 20),
    }
}

/// One dump file's entry.
#[derive(Debug, Clone)]
pub struct CachedKlines {
    /// The dump file (what the manifest lists and messages name).
    pub dump: PathBuf,
    /// Its entry (Parquet).
    pub entry: PathBuf,
    /// Header lines of the dump, so a row is located at its line there.
    pub header_lines: usize,
    /// Data rows.
    pub rows: usize,
}

/// An open cache folder. A private one is removed when dropped.
pub struct DumpCache {
    /// The entries' folder (`<cache>/klines/v<FORMAT_VERSION>`).
    entries: PathBuf,
    /// Removed on drop (a run's own folder).
    private_root: Option<PathBuf>,
    /// A private folder's owner lock, held while the folder is in use (the system releases it
    /// when the process ends, however it ends): see [`remove_abandoned_private_folders`].
    owner_lock: Option<std::fs::File>,
    max_bytes: u64,
}

impl Drop for DumpCache {
    fn drop(&mut self) {
        // The lock's file is closed first: an open file cannot be removed everywhere.
        self.owner_lock = None;
        if let Some(root) = &self.private_root {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

/// The facts stored with an entry.
#[derive(serde::Serialize, serde::Deserialize)]
struct EntryFacts {
    version: u32,
    sha256: String,
    header_lines: usize,
    rows: usize,
}

impl DumpCache {
    /// Open the cache `choice` names. A shared folder that cannot be created gives way to a
    /// folder of the run's own, and a warning saying how to fix it.
    pub fn open(choice: CacheChoice, warnings: &mut Vec<String>) -> Result<Self> {
        remove_abandoned_private_folders(&std::env::temp_dir());
        let shared = match choice {
            CacheChoice::Shared => shared_dir(),
            CacheChoice::Private => None,
        };
        if let Some(root) = shared {
            match Self::at(&root, max_bytes()?) {
                Ok(cache) => return Ok(cache),
                Err(err) => warnings.push(format!("{err:#}; kline dumps are parsed into a folder of this run's own instead")),
            }
        }
        let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let root = std::env::temp_dir().join(format!("{PRIVATE_PREFIX}{}-{stamp:019}", std::process::id()));
        let mut cache = Self::at(&root, u64::MAX)?;
        // Locked while this run uses it; a folder too new to judge is never removed meanwhile.
        let lock = std::fs::File::create(root.join(OWNER_LOCK)).with_context(|| format!("creating {}", root.join(OWNER_LOCK).display()))?;
        if lock.try_lock().is_ok() {
            cache.owner_lock = Some(lock);
        }
        cache.private_root = Some(root);
        Ok(cache)
    }

    /// The cache in folder `root`, keeping at most `max_bytes` of entries after a run.
    pub fn at(root: &Path, max_bytes: u64) -> Result<Self> {
        let entries = root.join("klines").join(format!("v{FORMAT_VERSION}"));
        std::fs::create_dir_all(entries.join("stat")).map_err(|err| {
            input_error!("cannot create the dump cache folder {}: {err}; set BASIS_CACHE_DIR (or --cache-dir) to a writable folder, or pass --no-cache", entries.display())
        })?;
        Ok(DumpCache { entries, private_root: None, owner_lock: None, max_bytes })
    }

    /// The entries of the kline dumps `paths` (one series, in order), parsing those not cached
    /// yet side by side. Errors are the first file's in order, as a file-by-file read meets them.
    pub fn klines(&self, paths: &[PathBuf], unit: TimeFormat, utc_offset_hours: Option<f64>, label: &str) -> Result<Vec<CachedKlines>> {
        // Plain threads taking the next file, not rayon's pool: the entry writer encodes on a
        // pool of its own, and a rayon worker waiting on another pool runs more of its own
        // jobs meanwhile, so conversions would nest on one stack, each holding its buffers.
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(paths.len()).max(1);
        use std::sync::atomic::{AtomicUsize, Ordering};
        let next = AtomicUsize::new(0);
        // Files after the first that failed are not started: the error is that one's, or an
        // earlier file's.
        let first_failed = AtomicUsize::new(usize::MAX);
        let mut entries: Vec<Option<Result<CachedKlines>>> = (0..paths.len()).map(|_| None).collect();
        let slots = std::sync::Mutex::new(&mut entries);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(k).filter(|_| k < first_failed.load(Ordering::Relaxed)) else { break };
                    let entry = self.entry_for(path, unit, utc_offset_hours, label);
                    if entry.is_err() {
                        first_failed.fetch_min(k, Ordering::Relaxed);
                    }
                    if let Ok(mut slots) = slots.lock() {
                        slots[k] = Some(entry);
                    }
                });
            }
        });
        // The parsers' buffers were freed on those threads: hand them back before the run.
        super::return_freed_memory();
        let mut found = Vec::with_capacity(paths.len());
        for entry in entries {
            match entry {
                Some(entry) => found.push(entry?),
                None => return Err(anyhow::anyhow!("a dump cache worker stopped before its file")),
            }
        }
        Ok(found)
    }

    fn entry_for(&self, dump: &Path, unit: TimeFormat, utc_offset_hours: Option<f64>, label: &str) -> Result<CachedKlines> {
        // Before the file is looked at: a later change shows in its times (see `RACY`).
        let read_started = SystemTime::now();
        let meta = std::fs::metadata(dump).map_err(|err| input_error!("cannot read {}: {err}", dump.display()))?;
        let stat = Stat::of(&meta);
        let record = self.entries.join("stat").join(path_key(dump));
        let recorded = stat.as_ref().and_then(|stat| stat.matches(&std::fs::read_to_string(&record).ok()?));
        // A dump fetched with its .CHECKSUM is verified before it is read (hashing it, unless
        // its stat record gives the hash).
        let known = match recorded {
            Some(sha256) => {
                read::verify_checksum_against(dump, &sha256)?;
                Some(sha256)
            }
            None if read::verify_checksum(dump)? => read::take_read_hash(dump).map(|(_, sha256)| sha256),
            None => None,
        };
        if let Some(sha256) = &known {
            read::remember_hash(dump, meta.len(), sha256.clone());
            let entry = self.entry_path(sha256, unit, utc_offset_hours);
            if let Some(facts) = entry_facts(&entry, sha256) {
                // Used now: the last to go when the cache is trimmed.
                if let Ok(file) = std::fs::File::options().append(true).open(&entry) {
                    let _ = file.set_modified(SystemTime::now());
                }
                return Ok(CachedKlines { dump: dump.to_path_buf(), entry, header_lines: facts.header_lines, rows: facts.rows });
            }
        }
        // Parse it into a temporary entry, hashing it as it is read unless the hash is known,
        // and name the entry once the hash is known.
        let temporary = temporary_beside(&self.entries.join("entry"));
        let hash_of_what_was_read = || -> Result<String> {
            let sha256 = match &known {
                Some(sha256) => sha256.clone(),
                // Plain and gzipped dumps were hashed as read; a zip is hashed now, and the
                // check below says it is the file that was read.
                None => match read::take_read_hash(dump) {
                    Some((_, sha256)) => sha256,
                    None => read::sha256_streamed(dump)?,
                },
            };
            unchanged_since(dump, stat.as_ref())?;
            read::remember_hash(dump, meta.len(), sha256.clone());
            Ok(sha256)
        };
        let (header_lines, rows, sha256) = match write_entry(dump, &temporary, unit, utc_offset_hours, label, known.is_none(), hash_of_what_was_read) {
            Ok(written) => written,
            Err(err) => {
                let _ = std::fs::remove_file(&temporary);
                return Err(err);
            }
        };
        let entry = self.entry_path(&sha256, unit, utc_offset_hours);
        let placed = if entry_facts(&entry, &sha256).is_some() { std::fs::remove_file(&temporary) } else { std::fs::rename(&temporary, &entry) };
        if let Err(err) = placed {
            let _ = std::fs::remove_file(&temporary);
            return Err(err).with_context(|| format!("writing the dump cache entry {}", entry.display()));
        }
        // A file modified within the clock's resolution before its reading began could change
        // again unseen (its modification time would not move): such a file gets no record.
        if let Some(stat) = stat.filter(|s| read_started.duration_since(s.modified).is_ok_and(|age| age > RACY)) {
            let _ = write_atomically(&record, stat.record(&sha256).as_bytes());
        }
        Ok(CachedKlines { dump: dump.to_path_buf(), entry, header_lines, rows })
    }

    /// The entry of the dump whose bytes hash to `sha256`, read with these options.
    fn entry_path(&self, sha256: &str, unit: TimeFormat, utc_offset_hours: Option<f64>) -> PathBuf {
        self.entries.join(format!("{sha256}-{}-{}.parquet", read::unit_name(unit).replace(' ', "_"), read::offset_ms(utc_offset_hours)))
    }

    /// Remove the least recently used entries until the cache is within its limit, never one
    /// of `in_use` nor one used in the last hour (another run sharing the cache may be reading
    /// it), and what earlier runs left: temporary files over an hour old, entries of older
    /// formats. Returns the bytes of entries removed.
    pub fn trim(&self, in_use: &[PathBuf]) -> u64 {
        if self.private_root.is_some() {
            return 0;
        }
        let now = SystemTime::now();
        let idle = |modified: SystemTime| now.duration_since(modified).is_ok_and(|age| age > IN_USE);
        if let Some(klines) = self.entries.parent() {
            for older in std::fs::read_dir(klines).into_iter().flatten().flatten() {
                if older.path() != self.entries && older.file_name().to_string_lossy().starts_with('v') {
                    let _ = std::fs::remove_dir_all(older.path());
                }
            }
        }
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        for found in std::fs::read_dir(&self.entries).into_iter().flatten().flatten() {
            let (path, Ok(meta)) = (found.path(), found.metadata()) else { continue };
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if path.extension().is_some_and(|x| x == "tmp") {
                if idle(modified) {
                    let _ = std::fs::remove_file(&path);
                }
            } else if path.extension().is_some_and(|x| x == "parquet") {
                entries.push((modified, meta.len(), path));
            }
        }
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        entries.sort();
        let mut removed = 0;
        for (modified, len, path) in entries {
            if total <= self.max_bytes || !idle(modified) {
                break;
            }
            if in_use.contains(&path) {
                continue;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
                removed += len;
            }
        }
        self.trim_stat_records(&idle);
        removed
    }

    /// Remove the stat records (one per dump path ever read) whose entries are all gone, once
    /// untouched for an hour: they would only spare hashing a dump that must be parsed again.
    fn trim_stat_records(&self, idle: &dyn Fn(SystemTime) -> bool) {
        let cached: std::collections::HashSet<String> = std::fs::read_dir(&self.entries)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.ends_with(".parquet").then(|| name.split('-').next().unwrap_or_default().to_string())
            })
            .collect();
        for found in std::fs::read_dir(self.entries.join("stat")).into_iter().flatten().flatten() {
            let Ok(modified) = found.metadata().and_then(|m| m.modified()) else { continue };
            if !idle(modified) {
                continue;
            }
            let sha256 = std::fs::read_to_string(found.path()).ok().and_then(|text| text.trim_end().rsplit_once(' ').map(|(_, sha)| sha.to_string()));
            if sha256.is_none_or(|sha| !cached.contains(&sha)) {
                let _ = std::fs::remove_file(found.path());
            }
        }
    }
}

/// A private cache folder's name: this prefix, the process id, `-`, a time stamp of 19 digits
/// (nanoseconds since 1970).
pub const PRIVATE_PREFIX: &str = "basis-cache-";

/// The file in a private cache folder its run holds locked while it uses the folder.
pub const OWNER_LOCK: &str = "owner.lock";

/// Whether `name` is a private cache folder's (`basis-cache-<pid>-<19-digit stamp>`): never a
/// folder a user named, such as `basis-cache-2024-06`.
fn is_private_folder_name(name: &str) -> bool {
    let Some((pid, stamp)) = name.strip_prefix(PRIVATE_PREFIX).and_then(|rest| rest.split_once('-')) else { return false };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(pid) && digits(stamp) && stamp.len() >= 19
}

/// Removes the private cache folders under `temp_dir` that runs killed before they could remove
/// their own left behind: a folder (by its name) created over an hour ago whose owner lock no
/// process holds (the system releases a lock when its process ends, whatever its PID namespace);
/// one without a lock file (left by a version before the lock) once over a day old.
pub fn remove_abandoned_private_folders(temp_dir: &Path) {
    let now = SystemTime::now();
    for found in std::fs::read_dir(temp_dir).into_iter().flatten().flatten() {
        let name = found.file_name().to_string_lossy().into_owned();
        if !is_private_folder_name(&name) || !found.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        // The folder's own time moves only when its first level is made: about its creation.
        let Ok(age) = found.metadata().and_then(|m| m.modified()).map(|m| now.duration_since(m).unwrap_or_default()) else { continue };
        if age <= IN_USE {
            continue;
        }
        let abandoned = match std::fs::File::open(found.path().join(OWNER_LOCK)) {
            Ok(lock) => lock.try_lock().is_ok(),
            Err(_) => age > 24 * IN_USE,
        };
        if abandoned {
            let _ = std::fs::remove_dir_all(found.path());
        }
    }
}

/// What the cache folder holds: (entries, bytes).
pub fn usage(root: &Path) -> (usize, u64) {
    let entries = root.join("klines").join(format!("v{FORMAT_VERSION}"));
    let files: Vec<u64> = std::fs::read_dir(entries).into_iter().flatten().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "parquet")).filter_map(|e| e.metadata().ok().map(|m| m.len())).collect();
    (files.len(), files.iter().sum())
}

/// Remove every entry and stat record under `root` (the folder `basis data cache --clear` names).
pub fn clear(root: &Path) -> Result<()> {
    let klines = root.join("klines");
    if klines.exists() {
        std::fs::remove_dir_all(&klines).with_context(|| format!("removing {}", klines.display()))?;
    }
    Ok(())
}

/// A file's identity as a stat record keeps it: length, modification and change times (ns),
/// inode and device, as git's index keeps them.
pub struct Stat {
    len: u64,
    modified: SystemTime,
    modified_ns: u128,
    changed_ns: i128,
    inode: u64,
    device: u64,
}

impl Stat {
    /// The identity of the file `meta` describes (None where the platform gives no times).
    pub fn of(meta: &std::fs::Metadata) -> Option<Stat> {
        let modified = meta.modified().ok()?;
        let modified_ns = modified.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_nanos();
        #[cfg(unix)]
        let (changed_ns, inode, device) = {
            use std::os::unix::fs::MetadataExt;
            (i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()), meta.ino(), meta.dev())
        };
        #[cfg(not(unix))]
        let (changed_ns, inode, device) = (0, 0, 0);
        Some(Stat { len: meta.len(), modified, modified_ns, changed_ns, inode, device })
    }

    /// What a record compares.
    fn identity(&self) -> String {
        format!("{} {} {} {} {}", self.len, self.modified_ns, self.changed_ns, self.inode, self.device)
    }

    fn record(&self, sha256: &str) -> String {
        format!("{} {sha256}\n", self.identity())
    }

    /// The hash a record holds, if it is this file's.
    fn matches(&self, text: &str) -> Option<String> {
        let (identity, sha256) = text.trim_end().rsplit_once(' ')?;
        (identity == self.identity() && sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit())).then(|| sha256.to_string())
    }
}

/// Refuses `dump` when its stat now differs from `before` (taken before it was read): a file that
/// changed while it was read would name an entry of other bytes.
pub fn unchanged_since(dump: &Path, before: Option<&Stat>) -> Result<()> {
    let after = std::fs::metadata(dump).ok().as_ref().and_then(Stat::of);
    if after.is_none() || after.as_ref().map(Stat::identity) != before.map(Stat::identity) {
        crate::bail_input!("{}: the file changed while it was read; run again once it is complete (or pass --no-cache)", dump.display());
    }
    Ok(())
}

/// The stat record's file name for a dump path: the hash of its absolute path.
fn path_key(dump: &Path) -> String {
    use sha2::Digest;
    let absolute = std::fs::canonicalize(dump).unwrap_or_else(|_| dump.to_path_buf());
    sha2::Sha256::digest(absolute.to_string_lossy().as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Write `bytes` to `path` through a temporary name in the same folder and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = temporary_beside(path);
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

/// A name beside `path` no other process or thread writes.
fn temporary_beside(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    path.with_file_name(format!(".{name}.{}.{nanos}.{n}.tmp", std::process::id()))
}

/// An entry's stored facts, if it is a readable entry of this format for the dump `sha256`.
fn entry_facts(entry: &Path, sha256: &str) -> Option<EntryFacts> {
    let file = std::fs::File::open(entry).ok()?;
    let metadata = ParquetReader::new(file).get_metadata().ok()?.clone();
    let pairs = metadata.key_value_metadata().as_ref()?;
    let text = pairs.iter().find(|kv| kv.key == FACTS_KEY)?.value.as_ref()?;
    serde_json::from_str(text).ok().filter(|f: &EntryFacts| f.version == FORMAT_VERSION && f.sha256 == sha256)
}

/// Parse `dump` (every row checked) into an entry at `entry` (hashing it as it is read when
/// `hash`), its name's hash from `sha256_of_read` once the rows are in: (header lines, rows,
/// the dump's SHA-256).
fn write_entry(dump: &Path, entry: &Path, unit: TimeFormat, utc_offset_hours: Option<f64>, label: &str, hash: bool, sha256_of_read: impl FnOnce() -> Result<String>) -> Result<(usize, usize, String)> {
    let file = std::fs::File::create(entry).with_context(|| format!("writing the dump cache entry {}", entry.display()))?;
    let schema = Schema::from_iter(
        std::iter::once(Field::new("known_at_ms".into(), DataType::Int64)).chain(["close", "high", "low", "volume"].into_iter().map(|name| Field::new(name.into(), DataType::Float64))),
    );
    let compression = polars_parquet::write::CompressionOptions::Uncompressed;
    let mut writer = crate::parquet::FrameWriter::with_compression(std::io::BufWriter::with_capacity(1 << 20, file), &schema, &entry.display().to_string(), compression)?.delta_encoded_integers();
    let parsed = read_kline_file(dump, unit, utc_offset_hours, label, ENTRY_ROW_GROUP, hash, |batch: KlineBatch| {
        let rows = batch.len();
        let frame = DataFrame::new(rows, vec![
            Column::new("known_at_ms".into(), batch.known_at_ms),
            Column::new("close".into(), batch.close),
            Column::new("high".into(), batch.high),
            Column::new("low".into(), batch.low),
            Column::new("volume".into(), batch.volume),
        ])?;
        writer.write(&frame)
    })?;
    let sha256 = sha256_of_read()?;
    let facts = EntryFacts { version: FORMAT_VERSION, sha256: sha256.clone(), header_lines: parsed.header_lines, rows: parsed.rows };
    writer.finish_with_metadata(vec![(FACTS_KEY.to_string(), serde_json::to_string(&facts)?)])?;
    Ok((parsed.header_lines, parsed.rows, sha256))
}
