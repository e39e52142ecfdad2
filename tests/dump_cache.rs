//! The dump cache (`data::dump_cache`): kline dumps parsed once into entries named by their
//! content, read back as the same bars; found again by their stat record or their hash;
//! refused with the dump's file and line; trimmed least recently used first.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use basis::config::PriceSource;
use basis::data::binance::load_klines;
use basis::data::dump_cache::DumpCache;
use basis::data::generic::BarPieces;
use basis::data::source::TimeFormat;
use basis::data::PriceBars;

/// The shipped sample's perp dumps (12 monthly CSVs), copied to `dir` and dated a day back (a
/// stat record is written only for a file not modified in the last seconds).
fn sample_dumps(dir: &Path) -> Vec<PathBuf> {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample/perp");
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(sample).expect("the shipped sample").flatten() {
        let to = dir.join(entry.file_name());
        std::fs::copy(entry.path(), &to).expect("copy");
        age(&to);
        paths.push(to);
    }
    paths.sort();
    assert_eq!(paths.len(), 12);
    paths
}

fn age(path: &Path) {
    let file = std::fs::File::options().append(true).open(path).expect("open");
    file.set_modified(SystemTime::now() - Duration::from_secs(86_400)).expect("set mtime");
}

/// The bars of `paths` read through `cache`, piece after piece, as a chunked run reads them.
fn through_cache(cache: &DumpCache, pattern: &str) -> PriceBars {
    let pieces = BarPieces::open_with(&PriceSource::binance_klines(pattern), "perp", Some(cache)).expect("open").expect("pieces");
    let mut bars = PriceBars::default();
    for k in 0..pieces.len() {
        let piece = pieces.bars(k, &mut Vec::new()).expect("piece");
        bars.ts_ms.extend(piece.ts_ms);
        bars.close.extend(piece.close);
        bars.high.extend(piece.high);
        bars.low.extend(piece.low);
        bars.volume.extend(piece.volume);
    }
    bars
}

fn entries(cache_dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache_dir.join("klines/v2")).expect("entries folder").flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    found.sort();
    found
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).expect("read")).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn entries_are_named_by_content_and_read_back_as_the_whole_load_reads_the_dumps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = sample_dumps(dir.path());
    let pattern = dir.path().join("*.csv").display().to_string();
    let cache = DumpCache::at(&dir.path().join("cache"), u64::MAX).expect("cache");
    let cached = cache.klines(&paths, TimeFormat::Auto, None, "perp").expect("entries");
    // One entry per dump, named by the SHA-256 of its bytes and the read options.
    assert_eq!(cached.len(), 12);
    for entry in &cached {
        let name = entry.entry.file_name().expect("name").to_string_lossy().into_owned();
        assert_eq!(name, format!("{}-auto-0.parquet", sha256(&entry.dump)));
        assert_eq!(entry.header_lines, 1, "the perp dumps have a header");
    }
    assert_eq!(cached.iter().map(|e| e.rows).sum::<usize>(), 365 * 24, "hourly bars of 2024-07 .. 2025-06 (no leap day)");
    let whole = load_klines(&PriceSource::binance_klines(pattern.clone()), "perp", &mut Vec::new(), &mut Vec::new()).expect("whole");
    let read = through_cache(&cache, &pattern);
    assert_eq!(read.ts_ms, whole.ts_ms);
    for (a, b) in [(&read.close, &whole.close), (&read.high, &whole.high), (&read.low, &whole.low), (&read.volume, &whole.volume)] {
        assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
    // Found again: nothing is written (the entries keep their inodes); a stat record stands
    // for each dump.
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).expect("entry"));
    let before: Vec<u64> = cached.iter().map(|e| inode(&e.entry)).collect();
    let again = cache.klines(&paths, TimeFormat::Auto, None, "perp").expect("entries again");
    assert_eq!(again.iter().map(|e| inode(&e.entry)).collect::<Vec<_>>(), before);
    assert_eq!(std::fs::read_dir(dir.path().join("cache/klines/v2/stat")).expect("stat").count(), 12);
    // Other options are other entries (the times move by the offset).
    let shifted = cache.klines(&paths[..1], TimeFormat::Auto, Some(3.0), "perp").expect("offset");
    assert!(shifted[0].entry.to_string_lossy().ends_with("-auto-10800000.parquet"));
    assert_eq!(entries(&dir.path().join("cache")).len(), 13);
}

#[test]
fn a_renamed_dump_finds_its_entry_and_a_changed_one_gets_a_new_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = sample_dumps(dir.path());
    let cache = DumpCache::at(&dir.path().join("cache"), u64::MAX).expect("cache");
    let first = cache.klines(&paths[..1], TimeFormat::Auto, None, "perp").expect("entry");
    let renamed = dir.path().join("renamed.csv");
    std::fs::copy(&paths[0], &renamed).expect("copy");
    let found = cache.klines(std::slice::from_ref(&renamed), TimeFormat::Auto, None, "perp").expect("renamed");
    assert_eq!(found[0].entry, first[0].entry, "the same bytes, the same entry");
    assert_eq!(entries(&dir.path().join("cache")).len(), 1);
    // Changed (a close moved by a cent, the file now modified): hashed again, a new entry.
    let text = std::fs::read_to_string(&paths[0]).expect("read");
    let line = text.lines().nth(1).expect("first row").to_string();
    let fields: Vec<&str> = line.split(',').collect();
    let close: f64 = fields[4].parse().expect("close");
    let high: f64 = fields[2].parse().expect("high");
    let moved = close - 0.01;
    assert!(moved >= fields[3].parse::<f64>().expect("low") && moved <= high);
    let changed_line = line.replacen(&format!(",{},{}", fields[4], fields[5]), &format!(",{moved:.2},{}", fields[5]), 1);
    std::fs::write(&paths[0], text.replacen(&line, &changed_line, 1)).expect("write");
    let changed = cache.klines(&paths[..1], TimeFormat::Auto, None, "perp").expect("changed");
    assert_ne!(changed[0].entry, first[0].entry);
    let bars = through_cache(&cache, &paths[0].display().to_string());
    assert_eq!(bars.close[0], format!("{moved:.2}").parse::<f64>().expect("moved"));
}

#[test]
fn a_bad_row_names_the_dump_and_its_line_and_leaves_no_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = sample_dumps(dir.path());
    let text = std::fs::read_to_string(&paths[3]).expect("read");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let fields: Vec<&str> = lines[41].split(',').collect();
    let bad: Vec<String> = fields.iter().enumerate().map(|(k, f)| if k == 4 { "abc".to_string() } else { f.to_string() }).collect();
    lines[41] = bad.join(",");
    std::fs::write(&paths[3], lines.join("\n") + "\n").expect("write");
    let cache_dir = dir.path().join("cache");
    let cache = DumpCache::at(&cache_dir, u64::MAX).expect("cache");
    let err = cache.klines(&paths, TimeFormat::Auto, None, "perp").expect_err("a bad row");
    let text = format!("{err:#}");
    assert!(basis::error::is_input_error(&err), "{text}");
    assert!(text.contains(&format!("{}: line 42, column `close`: expected a number, found \"abc\"", paths[3].display())), "{text}");
    // The dumps before it have their entries (those after it are not started once it failed,
    // but for those already under way: as many as there are cores); the bad one left none,
    // and no half-written file.
    let left = entries(&cache_dir);
    assert!((3..=11).contains(&left.len()), "{left:?}");
    let bad = sha256(&paths[3]);
    assert!(left.iter().all(|p| !p.file_name().expect("name").to_string_lossy().starts_with(&bad) && !p.file_name().expect("name").to_string_lossy().starts_with('.')), "{left:?}");
    for earlier in &paths[..3] {
        assert!(left.iter().any(|p| p.file_name().expect("name").to_string_lossy().starts_with(&sha256(earlier))), "{} has its entry", earlier.display());
    }
}

#[test]
fn a_dump_that_does_not_match_its_checksum_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = sample_dumps(dir.path());
    std::fs::write(format!("{}.CHECKSUM", paths[0].display()), format!("{}  x.csv\n", "0".repeat(64))).expect("checksum");
    let cache = DumpCache::at(&dir.path().join("cache"), u64::MAX).expect("cache");
    let err = cache.klines(&paths[..1], TimeFormat::Auto, None, "perp").expect_err("refused");
    assert!(format!("{err:#}").contains("does not match"), "{err:#}");
    // The right checksum passes, on the first read and on the stat record's.
    std::fs::write(format!("{}.CHECKSUM", paths[0].display()), format!("{}  x.csv\n", sha256(&paths[0]))).expect("checksum");
    for _ in 0..2 {
        cache.klines(&paths[..1], TimeFormat::Auto, None, "perp").expect("verified");
    }
}

#[test]
fn trimming_removes_the_least_recently_used_entries_but_never_those_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = sample_dumps(dir.path());
    let cache_dir = dir.path().join("cache");
    let unlimited = DumpCache::at(&cache_dir, u64::MAX).expect("cache");
    let cached = unlimited.klines(&paths, TimeFormat::Auto, None, "perp").expect("entries");
    let sizes: Vec<u64> = cached.iter().map(|e| std::fs::metadata(&e.entry).expect("entry").len()).collect();
    // Used hours ago, oldest first, but for the last, used just now (by another run, say):
    // entries used in the last hour are never trimmed.
    for (k, entry) in cached.iter().enumerate().take(11) {
        let file = std::fs::File::options().append(true).open(&entry.entry).expect("entry");
        file.set_modified(SystemTime::now() - Duration::from_secs(10_000 - k as u64)).expect("mtime");
    }
    // What earlier runs left: an old temporary file and an older format's folder.
    let stale = cache_dir.join("klines/v2/.entry.1.2.3.tmp");
    std::fs::write(&stale, b"half").expect("tmp");
    std::fs::File::options().append(true).open(&stale).expect("tmp").set_modified(SystemTime::now() - Duration::from_secs(7_200)).expect("mtime");
    std::fs::create_dir_all(cache_dir.join("klines/v1")).expect("old format");
    // Room for the first entry (in use) and the newest three.
    let limit: u64 = sizes[0] + sizes[9..].iter().sum::<u64>();
    let limited = DumpCache::at(&cache_dir, limit).expect("cache");
    let removed = limited.trim(&[cached[0].entry.clone()]);
    let left = entries(&cache_dir);
    let expected: Vec<PathBuf> = std::iter::once(cached[0].entry.clone()).chain(cached[9..].iter().map(|e| e.entry.clone())).collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(left, expected_sorted, "the in-use entry and the newest that fit");
    assert_eq!(removed, sizes[1..9].iter().sum::<u64>());
    assert!(!stale.exists() && !cache_dir.join("klines/v1").exists(), "leftovers are removed");
    // With no room at all, the entry used just now still stays.
    let none = DumpCache::at(&cache_dir, 0).expect("cache");
    none.trim(&[]);
    assert_eq!(entries(&cache_dir), vec![cached[11].entry.clone()]);
}

/// A cache folder that cannot be created is refused by name (saying how to get round it), and a
/// run asking for the shared cache then parses into a folder of its own, with a warning, and
/// removes it at the end.
#[test]
fn a_cache_folder_that_cannot_be_made_gives_way_to_a_folder_of_the_runs_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"a file where the cache folder should be").expect("file");
    let err = DumpCache::at(&blocker.join("cache"), u64::MAX).err().expect("refused");
    assert!(format!("{err:#}").contains("--no-cache"), "{err:#}");
    // The command line's --cache-dir (this test binary's only use of the shared cache).
    basis::data::dump_cache::configure(false, Some(blocker.join("cache")));
    let mut warnings = Vec::new();
    let cache = DumpCache::open(basis::data::dump_cache::CacheChoice::Shared, &mut warnings).expect("a folder of its own");
    assert!(warnings.len() == 1 && warnings[0].contains("a folder of this run's own"), "{warnings:?}");
    let paths = sample_dumps(dir.path());
    let cached = cache.klines(&paths[..1], TimeFormat::Auto, None, "perp").expect("entry");
    let own = cached[0].entry.parent().and_then(Path::parent).and_then(Path::parent).expect("its root").to_path_buf();
    assert!(own.exists() && !own.starts_with(dir.path()));
    drop(cache);
    assert!(!own.exists(), "the run's own folder is removed");
}

/// A stat record (one per dump path read) goes once none of its hash's entries is left and it
/// has been untouched for an hour; one whose entry stays, or written in the last hour, stays.
#[test]
fn stat_records_go_with_their_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = sample_dumps(dir.path());
    let cache_dir = dir.path().join("cache");
    let cache = DumpCache::at(&cache_dir, u64::MAX).expect("cache");
    let cached = cache.klines(&paths, TimeFormat::Auto, None, "perp").expect("entries");
    let stat_dir = cache_dir.join("klines/v2/stat");
    let records = || -> Vec<String> {
        let mut found: Vec<String> = std::fs::read_dir(&stat_dir).expect("stat").flatten().map(|e| std::fs::read_to_string(e.path()).expect("record")).collect();
        found.sort();
        found
    };
    assert_eq!(records().len(), 12);
    for found in std::fs::read_dir(&stat_dir).expect("stat").flatten() {
        age(&found.path());
    }
    // Five entries gone (another run's trim, say); one record of a dump read just now whose
    // entry is gone too.
    for entry in &cached[..5] {
        std::fs::remove_file(&entry.entry).expect("remove");
    }
    std::fs::write(stat_dir.join("fresh"), format!("1 2 3 4 5 {}\n", sha256(&paths[0]))).expect("fresh record");
    cache.trim(&[]);
    let left = records();
    assert_eq!(left.len(), 8, "seven records of entries still there, and the fresh one: {left:?}");
    for (k, dump) in paths.iter().enumerate() {
        let kept = left.iter().any(|r| r.trim_end().ends_with(&sha256(dump)));
        assert_eq!(kept, k == 0 || k >= 5, "{}", dump.display());
    }
}

/// The private folders of runs killed before they removed them are removed by a later run: a
/// folder created over an hour ago whose owner lock no process holds. Never one whose lock is
/// held (a live run, whatever its PID namespace), one too new to judge, one without a lock under
/// a day old, nor anything named otherwise (a user's `basis-cache-2024-06`) or not a folder.
#[test]
fn folders_of_killed_runs_are_removed_later() {
    use basis::data::dump_cache::{remove_abandoned_private_folders, OWNER_LOCK, PRIVATE_PREFIX};
    let temp = tempfile::tempdir().expect("tempdir");
    let stamp = "1765000000000000000";
    let folder = |name: &str, lock: bool, hours_ago: u64| -> PathBuf {
        let path = temp.path().join(name);
        std::fs::create_dir_all(path.join("klines/v2/stat")).expect("folder");
        if lock {
            std::fs::write(path.join(OWNER_LOCK), b"").expect("lock file");
        }
        std::fs::File::open(&path).expect("open folder").set_modified(SystemTime::now() - Duration::from_secs(hours_ago * 3_600)).expect("mtime");
        path
    };
    let dead = folder(&format!("{PRIVATE_PREFIX}1-{stamp}"), true, 2);
    let live = folder(&format!("{PRIVATE_PREFIX}2-{stamp}"), true, 2);
    let held = std::fs::File::open(live.join(OWNER_LOCK)).expect("lock");
    held.lock().expect("held by a live run");
    let new = folder(&format!("{PRIVATE_PREFIX}3-{stamp}"), true, 0);
    let unlocked_recent = folder(&format!("{PRIVATE_PREFIX}4-{stamp}"), false, 2);
    let unlocked_old = folder(&format!("{PRIVATE_PREFIX}5-{stamp}"), false, 25);
    let users = folder(&format!("{PRIVATE_PREFIX}2024-06"), false, 48);
    let a_file = temp.path().join(format!("{PRIVATE_PREFIX}6-{stamp}"));
    std::fs::write(&a_file, b"not a folder").expect("file");
    remove_abandoned_private_folders(temp.path());
    assert!(!dead.exists(), "an unlocked folder two hours old is removed");
    assert!(!unlocked_old.exists(), "a folder without a lock a day old is removed");
    assert!(live.exists() && new.exists() && unlocked_recent.exists() && users.exists() && a_file.exists());
    drop(held);
}

/// A run's own folder (`--no-cache`) holds its owner lock while the run lasts, so another run's
/// clean-up leaves it alone however old it is; dropping the cache removes it.
#[test]
fn a_run_s_own_folder_is_locked_while_it_runs() {
    use basis::data::dump_cache::{remove_abandoned_private_folders, CacheChoice, OWNER_LOCK};
    let cache = DumpCache::open(CacheChoice::Private, &mut Vec::new()).expect("a folder of its own");
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = sample_dumps(dir.path());
    let cached = cache.klines(&paths[..1], TimeFormat::Auto, None, "perp").expect("entry");
    let own = cached[0].entry.parent().and_then(Path::parent).and_then(Path::parent).expect("its root").to_path_buf();
    assert!(own.join(OWNER_LOCK).exists());
    std::fs::File::open(&own).expect("open folder").set_modified(SystemTime::now() - Duration::from_secs(5 * 3_600)).expect("mtime");
    remove_abandoned_private_folders(&std::env::temp_dir());
    assert!(own.exists() && cached[0].entry.exists(), "a live run's folder stays");
    drop(cache);
    assert!(!own.exists());
}

/// A dump that changes between the stat taken before its read and the one after is refused,
/// naming it and saying what to do; an unchanged one passes.
#[test]
fn a_dump_that_changes_while_it_is_read_is_refused() {
    use basis::data::dump_cache::{unchanged_since, Stat};
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("BTCUSDT-1m-2024-01.csv");
    std::fs::write(&dump, b"1704067200000,1,1,1,1,1,1704067259999,1,1,1,1,0\n").expect("dump");
    let before = Stat::of(&std::fs::metadata(&dump).expect("meta"));
    unchanged_since(&dump, before.as_ref()).expect("unchanged");
    std::fs::OpenOptions::new().append(true).open(&dump).and_then(|mut f| std::io::Write::write_all(&mut f, b"1704067260000,1,1,1,1,1,1704067319999,1,1,1,1,0\n")).expect("append");
    let err = unchanged_since(&dump, before.as_ref()).expect_err("refused");
    let text = format!("{err:#}");
    assert!(text.contains("BTCUSDT-1m-2024-01.csv") && text.contains("changed while it was read") && text.contains("--no-cache"), "{text}");
}
