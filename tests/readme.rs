//! Every figure README.md and the docs/*.md pages present as program output, checked by running
//! the program. The pages are read as one text, README first, then the pages in name order; a
//! finding names its file and line. "README" below means that text.
//!
//! **Output blocks.** A fenced block with no language (or `text`) is output: it must come right
//! after a ```` ```sh ```` block holding exactly one `cargo run --release -- ARGS` (or
//! `basis ARGS`) command. The test runs `basis ARGS` from the repository root (README's paths are
//! relative to it), with `--output-dir` pointed at a temporary folder so nothing lands in the
//! user's `reports/`; the temporary folder's path is written back as `reports` in what the
//! program printed, so lines such as `  outputs       reports/sample` compare as README shows
//! them. Each README line is matched to a line of the program's stdout (in order) whose text,
//! with every number masked and runs of spaces squashed, is the same: labels must match exactly.
//! Then every number on the line (signs, decimals, dates and times as one token each) must be
//! the same string as printed. A README block may show a subset of the lines.
//!
//! **Prose figures.** Where README states a figure in a sentence (window, step count, stale-spot
//! spans, proxy median, counterfactual and actual funding APR, capped settlements, venue APRs,
//! the best-venue carry, open interest, capacity, corpus size, benchmark counts), a check below
//! finds the sentence by its words (numbers written `#` in the template; README's wording must
//! match) and compares each figure with what the program printed or wrote (`manifest.json`,
//! `caps_settlements.parquet`, `venues.json`, `stress.json`), formatted as README writes it.
//! The README command each one runs is checked to still be shown in README.
//!
//! **Coverage.** [`SECTIONS`] lists every `## ` section of README and how its figures are
//! checked (or why it has none: timings, constants, the network). A new section fails
//! `every_readme_section_is_accounted_for` until it is listed there.
//!
//! **Real data.** Commands that read `../shared/data` (named in their arguments or in the files
//! they name) need it beside the repository; README's configs name that path literally, so
//! `BASIS_REAL_DATA` cannot redirect them. When it is missing the test fails under `CI`, and
//! elsewhere prints `skipped: ...` for those commands and checks the rest.
//!
//! **When a figure changes legitimately** (an engine change, new data), the failure names the
//! README line, the command, and each figure README states against the program's. Rerun the
//! command, e.g. `cargo run --release -- backtest --config data/examples/freqtrade-btc-1h.toml`,
//! and paste its output over the README block (keep only the lines README showed), or edit the
//! figure in the sentence. When a label changes (a renamed metric), the failure says no output
//! line reads README's text: paste the new output the same way. When a sentence is reworded,
//! update its template here.

mod common;
use common::grouped;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use polars::prelude::{DataType, ParquetReader, SerReader};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Stands for a number in masked text (a private-use character, never in README).
const MASK: char = '\u{E000}';

/// The output folder README's printed paths start with; the test's temporary folder is written
/// back as this in the program's output.
const README_OUTPUT_DIR: &str = "reports";

/// Every `## ` section of README: how many output blocks it has, and how its figures are checked.
const SECTIONS: &[(&str, usize, &str)] = &[
    ("Where to read on", 0, "links to the docs pages, no figures"),
    ("Two commands", 1, "output block: `cargo run --release -- backtest`, every line of the sample's summary"),
    ("On real Binance data", 1, "output block: `backtest --config data/examples/binance-btc-daily.toml`"),
    (
        "From a freqtrade data directory",
        1,
        "output block: `backtest --config data/examples/freqtrade-btc-1h.toml`; prose: window and step count, the listing placeholders (stderr), the stale-spot spans (manifest.json)",
    ),
    ("Strategies: signals, rules and targets", 1, "output block: `compare` of the eight strategy configs on BTC and ETH hourly (the table)"),
    ("From Python", 0, "no figure printed by a README command: the Python code is run by tests/python.rs (python/tests), the build time is a timing"),
    (
        "Data sources",
        0,
        "no figure printed by a README command: `data fetch` needs the network (the venue fetchers are run against a local server by tests/fetch_venues.rs), the quoted coverage and clock warnings illustrate message formats (no figures of a run), the CSV/Parquet load times are benchmarks",
    ),
    ("Costs that depend on the market", 0, "the models' rules, no figures"),
    ("Orders that take time", 0, "the rules of worked orders, no figures; tests/execution.rs checks them by hand"),
    ("The cost models against capital, on real data", 0, "the table's rows are checked against the sweep (`data/examples/sweep-costs.toml`) and each configuration's backtest by tests/costs.rs; with the closes each entry was filled over (2, 14, 85); the perp exposure averages (42 %, 49 %) a ledger study, not checked"),
    (
        "Venues: presets, counterfactual funding, cap comparison",
        0,
        "prose: the premium proxy's median (`caps` stderr), counterfactual vs actual funding APR (`caps` table), the data's capped settlements (caps_settlements.parquet; ETHUSDT by `data inspect`), APR per venue and coin and the best-venue carry (`venues` table, venues.json); `about 0.14 %` per move is an estimate, not checked",
    ),
    (
        "Sweeps: thousands of configurations",
        0,
        "prose: the metric count of results.parquet (basis::app::sweep::metric_names); `resumed: 3072 of 10000` illustrates a killed run and is not reproducible; the chunk size is a constant",
    ),
    ("Stress: when the music stops", 0, "prose: open interest (stress.json), the capacity range and the net APRs at 10^5 and 10^9 (`stress` stdout)"),
    ("Perp against perp: two venues, one coin", 5, "output blocks: the Hyperliquid/Binance and Binance/Bybit perp-perp books (`perp-perp-hyperliquid-binance.toml`, `perp-perp-binance-bybit-btc.toml`), the rotation between Bybit and Hyperliquid (`perp-perp-rotation-btc.toml`), the spot carry rotating its perp (`spot-perp-rotation-btc.toml`) and the calendar spread on the sample (`dated-perp-sample.toml`); each leg's funding is summed from its venue's file by tests/perp_perp.rs; the static carry's +4.49 % APR is a run of the same config with one venue, not checked"),
    ("Portfolios: many pairs, one capital", 3, "output blocks: `backtest --config data/examples/portfolio-btc-eth-1h.toml` and the two universes (`universe-alts-1h.toml`, `universe-majors-1h.toml`); the isolated and cross liquidation times are asserted in order by tests/portfolio.rs; the fee share (4.4 %) is the block's figures over the capital"),
    (
        "Dated futures and the cash rate",
        3,
        "output blocks: `backtest --config data/examples/dated-quarterly.toml` (dated and best) and `term`; prose: the 8 % long end is the generator's constant; the costs (2 × fee + slippage) are formulas",
    ),
    ("Config reference", 0, "no figures"),
    ("How the simulation works", 0, "no figures"),
    ("Outputs: `reports/<run>/`", 0, "no figures"),
    ("Output schemas", 0, "no figures (columns and types: tests/schemas.rs)"),
    ("Reports", 0, "no figure printed by a command (chart sizes and decimation are constants)"),
    ("Robustness", 0, "prose: the corpus size; fuzz case counts, load times and memory are timings, not checked"),
    ("Exit codes", 0, "no figures (tests/cli.rs, tests/bad_inputs.rs)"),
    (
        "Benchmarks",
        0,
        "prose: the hourly backtest's window and step count, the caps rule-set arithmetic (`presets`), the multi-venue row and coin counts (`venues`); timings and memory depend on the machine and are not checked",
    ),
    ("Code map", 0, "no figures"),
];

// README commands the prose figures come from (each must still be shown in README).
const FREQTRADE: &str = "backtest --config data/examples/freqtrade-btc-1h.toml";
const CAPS: &str = "caps --config data/examples/freqtrade-btc-1h.toml --venue binance_usdm --venue hyperliquid --venue bitmex --cap 0.003 --cap 0.0075 --cap 0.02 --cap 0.04/1h";
const VENUES: &str = "venues --funding ../shared/data/multivenue-hourly/funding_rates.parquet";
const STRESS: &str = "stress --config data/examples/freqtrade-btc-1h.toml --stress data/examples/stress-history.toml";
const PRESETS: &str = "presets";

// ---------------------------------------------------------------------------------------------
// Numbers in text.

/// `line` with every number replaced by [`MASK`], and the numbers as written. A number starts at
/// a digit, or at a sign (+, -, −) right before a digit that does not follow a letter, digit,
/// `.` or `)`; it runs over digits and over single `.`, `,`, `:` or `-` between digits, so
/// `-5.09`, `58,585`, `2021-01-02` and `00:00:00` are one number each.
fn split_numbers(line: &str) -> (String, Vec<String>) {
    let chars: Vec<char> = line.chars().collect();
    let digit_at = |k: usize| chars.get(k).is_some_and(|c| c.is_ascii_digit());
    let (mut text, mut numbers) = (String::new(), Vec::new());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let signed = matches!(c, '+' | '-' | '−')
            && digit_at(i + 1)
            && (i == 0 || !(chars[i - 1].is_alphanumeric() || matches!(chars[i - 1], '.' | ')' | '_')));
        if !(c.is_ascii_digit() || signed) {
            text.push(c);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        loop {
            if digit_at(i) {
                i += 1;
            } else if matches!(chars.get(i), Some('.' | ',' | ':' | '-')) && digit_at(i + 1) {
                i += 2;
            } else {
                break;
            }
        }
        numbers.push(chars[start..i].iter().collect());
        text.push(MASK);
    }
    (text, numbers)
}

/// Runs of whitespace as one space, trimmed.
fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Masked text as a person reads it.
fn shown(masked: &str) -> String {
    masked.replace(MASK, "#")
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}


/// `value` written the way README writes `like`: as many decimals, and a `+` where README has one.
fn like(value: f64, like: &str) -> String {
    let decimals = like.split_once('.').map(|(_, f)| f.len()).unwrap_or(0);
    if like.starts_with('+') {
        format!("{:+.*}", decimals, value)
    } else {
        format!("{:.*}", decimals, value)
    }
}

/// A figure the program prints with more decimals than README gives, rounded to README's
/// (`like`). A printed tie (…5 exactly) cannot be rounded without the digits behind it: then
/// README must write the figure as printed.
fn rounded(printed: &str, like: &str) -> String {
    let decimals = like.split_once('.').map(|(_, f)| f.len()).unwrap_or(0);
    let Some((_, fraction)) = printed.split_once('.') else { return printed.to_string() };
    if fraction.len() <= decimals {
        return printed.to_string();
    }
    let dropped = &fraction[decimals..];
    if dropped.starts_with('5') && dropped[1..].chars().all(|c| c == '0') {
        return format!("{printed} (a tie at README's precision: write it as printed)");
    }
    match printed.parse::<f64>() {
        Ok(value) if printed.starts_with('+') => format!("{:+.*}", decimals, value),
        Ok(value) => format!("{:.*}", decimals, value),
        Err(_) => printed.to_string(),
    }
}

/// `1000000000` as (`10`, `9`), for README's `10^9`.
fn power_of_ten(digits: &str) -> (String, String) {
    match digits.strip_prefix('1') {
        Some(zeros) if !zeros.is_empty() && zeros.chars().all(|c| c == '0') => ("10".into(), zeros.len().to_string()),
        _ => (digits.to_string(), "(not a power of ten)".into()),
    }
}

/// The first number after `label` on `line`.
fn number_after(line: &str, label: &str) -> Option<String> {
    let at = line.find(label)?;
    split_numbers(&line[at + label.len()..]).1.into_iter().next()
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

// ---------------------------------------------------------------------------------------------
// README.

struct Block {
    /// Line of the opening fence (1-based).
    line: usize,
    lang: String,
    lines: Vec<(usize, String)>,
}

impl Block {
    fn is_output(&self) -> bool {
        self.lang.is_empty() || self.lang == "text"
    }

    /// `basis` arguments of each command in a shell block (`cargo run --release -- ARGS` or
    /// `basis ARGS`; `\` continuations joined, `# comments` dropped).
    fn commands(&self) -> Vec<Vec<String>> {
        let mut logical = Vec::new();
        let mut pending = String::new();
        for (_, line) in &self.lines {
            let line = match line.find(" #") {
                Some(k) => &line[..k],
                None => line.as_str(),
            };
            let line = line.trim_end();
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            pending.push_str(line);
            logical.push(std::mem::take(&mut pending));
        }
        logical
            .iter()
            .filter_map(|l| {
                let l = l.trim();
                l.strip_prefix("cargo run --release -- ").or_else(|| l.strip_prefix("basis ")).map(words)
            })
            .collect()
    }
}

/// Each documentation file and the line of the joined text it starts after.
static PAGES: std::sync::OnceLock<Vec<(String, usize)>> = std::sync::OnceLock::new();

/// `file:line` of line `line` (1-based) of the joined documentation.
fn at(line: usize) -> String {
    let pages = PAGES.get().map(Vec::as_slice).unwrap_or(&[]);
    match pages.iter().rev().find(|(_, start)| *start < line) {
        Some((file, start)) => format!("{file}:{}", line - start),
        None => format!("README.md:{line}"),
    }
}

struct Readme {
    lines: Vec<String>,
    /// The whole text, numbers masked, whitespace squashed.
    masked: String,
    /// Every number in reading order, with its line (1-based).
    numbers: Vec<(String, usize)>,
    /// The whole text with `\` line continuations joined, whitespace squashed.
    flat: String,
}

impl Readme {
    fn load() -> Readme {
        // README.md, then every docs/*.md page in name order: one text, its lines located by
        // `at` (which file, which line).
        let mut pages = vec![Path::new(ROOT).join("README.md")];
        let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs")).map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "md")).collect()).unwrap_or_default();
        docs.sort();
        pages.extend(docs);
        let mut text = String::new();
        let mut starts = Vec::new();
        for page in &pages {
            let body = std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
            starts.push((page.strip_prefix(ROOT).unwrap_or(page).display().to_string(), text.lines().count()));
            text.push_str(&body);
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
        let _ = PAGES.set(starts);
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let mut masked = Vec::new();
        let mut numbers = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let (m, n) = split_numbers(line);
            masked.push(m);
            numbers.extend(n.into_iter().map(|x| (x, i + 1)));
        }
        Readme { masked: squash(&masked.join(" ")), numbers, flat: squash(&text.replace("\\\n", " ")), lines }
    }

    /// The figures README gives in the sentence `template` (every number written `#`), with
    /// their lines.
    fn figures(&self, template: &str) -> Result<Vec<(String, usize)>, String> {
        assert!(!template.chars().any(|c| c.is_ascii_digit()), "write every number of a template as #: {template}");
        let pattern = squash(&template.replace('#', &MASK.to_string()));
        let Some(at) = self.masked.find(&pattern) else {
            return Err(format!("README.md no longer has the sentence `{template}` (# is any number; the words must match): reword the template in tests/readme.rs"));
        };
        if self.masked[at + pattern.len()..].contains(&pattern) {
            return Err(format!("README.md has the sentence `{template}` more than once: make the template longer"));
        }
        let k = self.masked[..at].chars().filter(|&c| c == MASK).count();
        let m = pattern.chars().filter(|&c| c == MASK).count();
        Ok(self.numbers[k..k + m].to_vec())
    }

    /// Whether README shows `basis ARGS` (or `cargo run --release -- ARGS`).
    fn shows_command(&self, args: &str) -> bool {
        self.flat.contains(&format!("basis {args}")) || self.flat.contains(&format!("cargo run --release -- {args}"))
    }

    fn blocks(&self) -> Vec<Block> {
        let mut out = Vec::new();
        let mut open: Option<Block> = None;
        for (i, line) in self.lines.iter().enumerate() {
            if let Some(lang) = line.trim_start().strip_prefix("```") {
                match open.take() {
                    Some(block) => out.push(block),
                    None => open = Some(Block { line: i + 1, lang: lang.trim().to_string(), lines: Vec::new() }),
                }
            } else if let Some(block) = open.as_mut() {
                block.lines.push((i + 1, line.clone()));
            }
        }
        out
    }

    /// `## ` headings outside code blocks, with their lines.
    fn sections(&self) -> Vec<(usize, String)> {
        let mut fenced = false;
        let mut out = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            } else if let Some(heading) = line.strip_prefix("## ").filter(|_| !fenced) {
                out.push((i + 1, heading.trim().to_string()));
            }
        }
        out
    }

    fn section_at(&self, line: usize) -> String {
        self.sections().into_iter().filter(|(l, _)| *l < line).map(|(_, s)| s).last().unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Running README's commands.

/// Why a check has no figures.
#[derive(Clone)]
enum Miss {
    /// It needs ../shared/data, which is missing (outside CI).
    Skipped,
    /// The command failed; the error is recorded already.
    Recorded,
    Error(String),
}

fn miss<T>(message: impl Into<String>) -> Result<T, Miss> {
    Err(Miss::Error(message.into()))
}

fn need<T>(value: Option<T>, message: impl FnOnce() -> String) -> Result<T, Miss> {
    value.ok_or_else(|| Miss::Error(message()))
}

struct Run {
    stdout: String,
    stderr: String,
    /// The one folder the command wrote, if it wrote one.
    folder: Option<PathBuf>,
    _tmp: tempfile::TempDir,
}

impl Run {
    fn stderr_line_with(&self, needle: &str) -> Result<&str, Miss> {
        need(self.stderr.lines().find(|l| l.contains(needle)), || format!("no line with `{needle}` on stderr:\n{}", indent(&self.stderr)))
    }

    fn json(&self, file: &str) -> Result<serde_json::Value, Miss> {
        let path = need(self.folder.as_ref(), || "the command wrote no output folder".into())?.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| Miss::Error(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| Miss::Error(format!("{}: {e}", path.display())))
    }

    /// Numbers of the summary's first line (`SYMBOL start -> end (N steps, Y years)`): start
    /// date, start time, end date, end time, steps, years.
    fn summary_numbers(&self, symbol: &str) -> Result<Vec<String>, Miss> {
        let line = need(self.stdout.lines().find(|l| l.starts_with(&format!("{symbol} "))), || format!("no `{symbol} ... -> ...` line in:\n{}", indent(&self.stdout)))?;
        let numbers = split_numbers(line).1;
        if numbers.len() != 6 {
            return miss(format!("`{line}`: expected start, end, steps and years"));
        }
        Ok(numbers)
    }
}

fn real_data_root() -> PathBuf {
    Path::new(ROOT).join("../shared/data")
}

/// Whether ../shared/data is there; under CI its absence fails the test.
fn real_data_present() -> bool {
    let dir = real_data_root();
    if dir.is_dir() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{} is missing: under CI the README's real-data figures must be checked, not skipped", dir.display());
    false
}

/// Whether a command reads ../shared/data: named in its arguments or in a file they name.
fn needs_real_data(args: &[String]) -> bool {
    args.iter().any(|a| {
        let path = Path::new(ROOT).join(a);
        a.contains("shared/data") || (path.is_file() && std::fs::read_to_string(&path).is_ok_and(|t| t.contains("shared/data")))
    })
}

/// The arguments with the output sent to `tmp` instead of the repository.
fn redirect(args: &[String], tmp: &Path) -> Result<Vec<String>, String> {
    let first = args.first().map(String::as_str).unwrap_or("");
    let second = args.get(1).map(String::as_str).unwrap_or("");
    match (first, second) {
        ("backtest" | "caps" | "venues" | "sweep" | "stress" | "compare" | "term", _) => {
            if args.iter().any(|a| a == "--output-dir" || a.starts_with("--output-dir=")) {
                return Err("the command sets --output-dir itself; README's output blocks must use the default so the test can redirect it".into());
            }
            let mut full = args.to_vec();
            full.extend(["--output-dir".to_string(), tmp.display().to_string()]);
            Ok(full)
        }
        // These write nothing.
        ("presets", _) | ("data", "inspect") => Ok(args.to_vec()),
        _ => Err("tests/readme.rs does not run this command (it writes into the repository or needs the network): state its figures in prose, or teach redirect() where its output goes".into()),
    }
}

struct Ctx {
    readme: Readme,
    runs: HashMap<Vec<String>, Result<Rc<Run>, Miss>>,
    errors: Vec<String>,
    skipped: Vec<String>,
}

impl Ctx {
    fn new() -> Ctx {
        Ctx { readme: Readme::load(), runs: HashMap::new(), errors: Vec::new(), skipped: Vec::new() }
    }

    /// Run `basis ARGS` once (later calls reuse the result).
    fn run(&mut self, args: &[String]) -> Result<Rc<Run>, Miss> {
        if let Some(done) = self.runs.get(args) {
            return done.clone();
        }
        let result = self.run_now(args);
        self.runs.insert(args.to_vec(), result.clone());
        result
    }

    fn run_now(&mut self, args: &[String]) -> Result<Rc<Run>, Miss> {
        let shown = format!("basis {}", args.join(" "));
        if needs_real_data(args) && !real_data_present() {
            self.skipped.push(format!("`{shown}`: {} is missing", real_data_root().display()));
            return Err(Miss::Skipped);
        }
        let tmp = tempfile::tempdir().expect("a temporary folder");
        let full = match redirect(args, tmp.path()) {
            Ok(full) => full,
            Err(why) => {
                self.errors.push(format!("`{shown}`: {why}"));
                return Err(Miss::Recorded);
            }
        };
        let output = Command::new(env!("CARGO_BIN_EXE_basis")).current_dir(ROOT).args(&full).output().expect("the basis binary starts");
        let tmp_text = tmp.path().display().to_string();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace(&tmp_text, README_OUTPUT_DIR);
        let (stdout, stderr) = (text(&output.stdout[..]), text(&output.stderr[..]));
        if !output.status.success() {
            self.errors.push(format!("`{shown}` failed ({}):\n{}", output.status, indent(&stderr)));
            return Err(Miss::Recorded);
        }
        let visible: Vec<PathBuf> = std::fs::read_dir(tmp.path())
            .expect("the temporary folder")
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect();
        let folder = (visible.len() == 1).then(|| visible[0].clone());
        Ok(Rc::new(Run { stdout, stderr, folder, _tmp: tmp }))
    }

    /// The arguments of a README command, checking README still shows it.
    fn readme_command(&mut self, args: &str) -> Vec<String> {
        if !self.readme.shows_command(args) {
            self.errors.push(format!("README.md no longer shows `basis {args}`, which tests/readme.rs runs for README's figures: update the command here"));
        }
        words(args)
    }

    /// Compare the figures README gives in `template` with the program's, from `got` (which sees
    /// README's figures, `−` written `-`, for look-ups keyed by them, and returns the program's
    /// written the same way).
    fn prose(&mut self, what: &str, template: &str, got: impl FnOnce(&mut Ctx, &[String]) -> Result<Vec<String>, Miss>) {
        let figures = match self.readme.figures(template) {
            Ok(figures) => figures,
            Err(e) => {
                self.errors.push(format!("{what}: {e}"));
                return;
            }
        };
        let want: Vec<String> = figures.iter().map(|(f, _)| f.replace('−', "-")).collect();
        let line = figures.first().map(|f| f.1).unwrap_or(0);
        match got(self, &want) {
            Err(Miss::Skipped) => self.skipped.push(format!("{} ({what})", at(line))),
            Err(Miss::Recorded) => {}
            Err(Miss::Error(e)) => self.errors.push(format!("{} ({what}): {e}", at(line))),
            Ok(got) if got.len() != want.len() => {
                self.errors.push(format!("{} ({what}): tests/readme.rs gives {} figures for `{template}`, the docs have {}", at(line), got.len(), want.len()))
            }
            Ok(got) => {
                for (i, ((w, (_, l)), g)) in want.iter().zip(&figures).zip(&got).enumerate() {
                    if w != g {
                        self.errors.push(format!("{} ({what}): figure {} of `{template}`: the docs {w}, program {g}", at(*l), i + 1));
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Output blocks.

/// Compare a README output block with what the command printed; every mismatch is recorded.
fn compare_block(command: &str, block: &Block, stdout: &str, errors: &mut Vec<String>) {
    let program: Vec<(String, Vec<String>)> = stdout
        .lines()
        .map(|l| {
            let (text, numbers) = split_numbers(l);
            (squash(&text), numbers)
        })
        .collect();
    let mut cursor = 0;
    for (line_no, line) in &block.lines {
        if line.trim().is_empty() {
            continue;
        }
        let (text, numbers) = split_numbers(line);
        let key = squash(&text);
        let Some(k) = program[cursor..].iter().position(|p| p.0 == key).map(|k| k + cursor) else {
            let problem = if program.iter().any(|p| p.0 == key) { "is printed, but out of README's order" } else { "is not printed" };
            errors.push(format!(
                "{} (`{command}`): the line `{}` {problem} (numbers masked as #; the words must match exactly). The program printed:\n{}",
                at(*line_no),
                shown(&key),
                indent(stdout)
            ));
            continue;
        };
        cursor = k + 1;
        for (i, (want, got)) in numbers.iter().zip(&program[k].1).enumerate() {
            if want != got {
                errors.push(format!("{} (`{command}`): number {} of `{}`: the docs {want}, program {got}", at(*line_no), i + 1, line.trim()));
            }
        }
    }
}

/// Run the command of every README output block and compare; returns how many were compared.
fn check_output_blocks(ctx: &mut Ctx) -> usize {
    let blocks = ctx.readme.blocks();
    let mut compared = 0;
    for (k, block) in blocks.iter().enumerate() {
        if !block.is_output() {
            continue;
        }
        let commands = k.checked_sub(1).map(|j| &blocks[j]).filter(|b| b.lang == "sh").map(Block::commands).unwrap_or_default();
        let [args] = commands.as_slice() else {
            ctx.errors.push(format!(
                "{}: an output block must follow a ```sh block holding exactly one `cargo run --release -- ...` command; found {commands:?}",
                at(block.line)
            ));
            continue;
        };
        let command = format!("cargo run --release -- {}", args.join(" "));
        match ctx.run(args) {
            Ok(run) => {
                compare_block(&command, block, &run.stdout, &mut ctx.errors);
                compared += 1;
            }
            Err(Miss::Error(e)) => ctx.errors.push(format!("{} (`{command}`): {e}", at(block.line))),
            Err(Miss::Skipped | Miss::Recorded) => {}
        }
    }
    compared
}

// ---------------------------------------------------------------------------------------------
// Figures in prose.

fn check_prose(ctx: &mut Ctx) {
    let freqtrade = ctx.readme_command(FREQTRADE);
    let caps = ctx.readme_command(CAPS);
    let venues = ctx.readme_command(VENUES);
    let stress = ctx.readme_command(STRESS);
    let presets = ctx.readme_command(PRESETS);

    // --- From a freqtrade data directory.
    ctx.prose(
        "backtest freqtrade-btc-1h: window and steps",
        "runs BTCUSDT from its first funding settlement (#) to #, where its spot ends, on the hourly directory in `../shared/data` (# steps)",
        |ctx, _| {
            let n = ctx.run(&freqtrade)?.summary_numbers("BTCUSDT")?;
            Ok(vec![n[0].clone(), n[2].clone(), grouped(&n[4])])
        },
    );
    ctx.prose("backtest freqtrade-btc-1h: listing placeholders (stderr)", "BTCUSDT's first two hours at #) are dropped", |ctx, _| {
        let run = ctx.run(&freqtrade)?;
        let line = run.stderr_line_with("listing placeholder")?;
        if number_after(line, "dropped ").as_deref() != Some("2") {
            return miss(format!("README says two placeholder hours are dropped; the program says `{line}`"));
        }
        Ok(vec![need(number_after(line, "flat at "), || format!("no `flat at N` in `{line}`"))?])
    });
    ctx.prose(
        "backtest freqtrade-btc-1h: stale-spot spans (manifest.json)",
        "On BTCUSDT this masks # spans (# steps), among them # #–# and # #–#, and leaves the real dislocation of # alone.",
        |ctx, want| {
            let manifest = ctx.run(&freqtrade)?.json("manifest.json")?;
            let spans: Vec<(i64, i64, u64)> = need(manifest["stale_spot_spans"].as_array(), || "manifest.json has no `stale_spot_spans`".into())?
                .iter()
                .map(|s| (s["from_ms"].as_i64().unwrap_or(0), s["to_ms"].as_i64().unwrap_or(0), s["steps"].as_u64().unwrap_or(0)))
                .collect();
            let time = |text: String| basis::config::parse_time_ms("README", &text).map_err(|e| Miss::Error(format!("{e:#}")));
            let mut got = vec![spans.len().to_string(), spans.iter().map(|s| s.2).sum::<u64>().to_string()];
            // README's two spans (date, first step, last step), each looked up by its first step.
            for k in [2, 5] {
                let at = time(format!("{}T{}:00Z", want[k], want[k + 1]))?;
                match spans.iter().find(|s| s.0 <= at && at <= s.1) {
                    Some(s) => {
                        let (from, to) = (basis::time::format_ms(s.0), basis::time::format_ms(s.1));
                        got.extend([from[..10].to_string(), from[11..16].to_string(), to[11..16].to_string()]);
                    }
                    None => got.extend(["(no span holds it)".to_string(), String::new(), String::new()]),
                }
            }
            let day = time(want[8].clone())?;
            let touching = spans.iter().filter(|s| s.1 >= day && s.0 < day + 86_400_000).count();
            got.push(if touching == 0 { want[8].clone() } else { format!("{} masked span(s) on that day", touching) });
            Ok(got)
        },
    );

    // --- Venues: the premium proxy, counterfactual funding, capped settlements.
    ctx.prose("caps: the premium proxy's median (stderr)", "on Binance BTCUSDT #–# its median is # bp", |ctx, want| {
        let window = ctx.run(&freqtrade)?.summary_numbers("BTCUSDT")?;
        let run = ctx.run(&caps)?;
        let line = run.stderr_line_with("premium proxy")?;
        let median = need(number_after(line, "median "), || format!("no `median N bp` in `{line}`"))?;
        Ok(vec![window[0][..4].to_string(), window[2][..4].to_string(), rounded(&median, &want[2])])
    });
    ctx.prose(
        "caps: counterfactual vs actual funding APR (table)",
        "the counterfactual Binance funding is # % APR against the # % Binance printed",
        |ctx, _| {
            let run = ctx.run(&caps)?;
            let apr = |label: &str| -> Result<String, Miss> {
                let line = need(run.stdout.lines().find(|l| l.starts_with(&format!("{label} "))), || format!("no `{label}` row in:\n{}", indent(&run.stdout)))?;
                need(number_after(line, label), || format!("no funding APR in `{line}`"))
            };
            Ok(vec![apr("Binance USD-M")?, apr("actual (data)")?])
        },
    );
    ctx.prose(
        "caps (caps_settlements.parquet) and data inspect: the data's capped settlements",
        "BTCUSDT at exactly ±# % twice in # (# # # %, # # # %), ETHUSDT at # % once in # (# #)",
        |ctx, want| {
            // BTCUSDT: the `actual (data)` settlements flagged at the cap or floor.
            let run = ctx.run(&caps)?;
            let path = need(run.folder.clone(), || "caps wrote no folder".into())?.join("caps_settlements.parquet");
            let file = std::fs::File::open(&path).map_err(|e| Miss::Error(format!("{}: {e}", path.display())))?;
            let frame = ParquetReader::new(file).finish().map_err(|e| Miss::Error(format!("{}: {e}", path.display())))?;
            let rule = frame.column("rule_set").unwrap().str().unwrap();
            let ts = frame.column("ts").unwrap().cast(&DataType::Int64).unwrap();
            let ts = ts.i64().unwrap();
            let rate = frame.column("rate").unwrap().f64().unwrap();
            let at_limit = frame.column("at_limit").unwrap().bool().unwrap();
            let mut hits: Vec<(i64, f64)> = (0..frame.height())
                .filter(|&i| rule.get(i) == Some("actual (data)") && at_limit.get(i) == Some(true))
                .map(|i| (ts.get(i).unwrap(), rate.get(i).unwrap()))
                .collect();
            hits.sort_by_key(|h| h.0);
            let [(t0, r0), (t1, r1)] = hits.as_slice() else {
                return miss(format!("README says BTCUSDT's data hit the cap twice; the caps run flags {hits:?}"));
            };
            let (a, b) = (basis::time::format_ms(*t0), basis::time::format_ms(*t1));
            let year = if a[..4] == b[..4] { a[..4].to_string() } else { format!("{} and {}", &a[..4], &b[..4]) };
            let mut got = vec![like(r0.abs().max(r1.abs()) * 100.0, &want[0]), year];
            got.extend([a[..10].to_string(), a[11..16].to_string(), like(r0 * 100.0, &want[4])]);
            got.extend([b[..10].to_string(), b[11..16].to_string(), like(r1 * 100.0, &want[7])]);

            // ETHUSDT: `basis data inspect` counts each 2021 dump's settlements at the cap or floor.
            if !real_data_present() {
                return Err(Miss::Skipped);
            }
            let dir = real_data_root().join("binance-funding");
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .map_err(|e| Miss::Error(format!("{}: {e}", dir.display())))?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("ETHUSDT-fundingRate-2021-"))
                .collect();
            names.sort();
            let mut inspect = words("data inspect");
            inspect.extend(names.iter().map(|n| format!("../shared/data/binance-funding/{n}")));
            let run = ctx.run(&inspect)?;
            // The output is a path line, then its indented lines.
            let mut files: Vec<(String, Vec<&str>)> = Vec::new();
            for line in run.stdout.lines().filter(|l| !l.trim().is_empty()) {
                if !line.starts_with(' ') {
                    files.push((line.to_string(), Vec::new()));
                } else if let Some(file) = files.last_mut() {
                    file.1.push(line);
                }
            }
            let mut eth = Vec::new();
            for (file, lines) in &files {
                let limits = need(lines.iter().find(|l| l.contains("cap / floor")), || format!("no cap / floor line for {file}"))?;
                let counts = split_numbers(limits).1;
                let hits: usize = counts.iter().map(|c| c.parse::<usize>().unwrap_or(0)).sum();
                if hits > 0 {
                    eth.push((file.clone(), lines.clone(), hits));
                }
            }
            let [(file, lines, 1)] = eth.as_slice() else {
                let found: Vec<(&String, &usize)> = eth.iter().map(|e| (&e.0, &e.2)).collect();
                return miss(format!("README says ETHUSDT hit the cap once in 2021; `basis data inspect` finds (file, settlements at cap or floor) {found:?}"));
            };
            let stats = need(lines.iter().find(|l| l.contains("rate per settlement")), || format!("no rate statistics for {file}"))?;
            let max: f64 = need(number_after(stats, "max "), || format!("no max in `{stats}`"))?.parse().unwrap_or(f64::NAN);
            let span = need(lines.iter().find(|l| l.contains(" settlements, ") && l.contains(" -> ")), || format!("no `N settlements, first -> last` line for {file}"))?;
            let first = need(number_after(span, "settlements, "), || format!("no first settlement in `{span}`"))?;
            // The hour of that settlement is not printed: read it from the dump itself.
            let csv = std::fs::read_to_string(Path::new(ROOT).join(file)).map_err(|e| Miss::Error(format!("{file}: {e}")))?;
            let hour = csv
                .lines()
                .skip(1)
                .map(|l| l.split(',').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[2].parse::<f64>().is_ok_and(|r| (r * 100.0 - max).abs() < 1e-9))
                .and_then(|f| f[0].parse::<i64>().ok())
                .map(basis::time::format_ms);
            let hour = need(hour, || format!("{file} has no settlement at {max} %"))?;
            got.extend([like(max, &want[8]), first[..4].to_string(), hour[..10].to_string(), hour[11..16].to_string()]);
            Ok(got)
        },
    );

    // --- Venues: funding across venues.
    ctx.prose(
        "venues: APR per venue and coin (table)",
        "APR per venue and coin (Binance BTC # %, Hyperliquid BTC # %, Binance HYPE on # h settlements # %)",
        |ctx, _| {
            let run = ctx.run(&venues)?;
            // settlements, interval, funding APR, gap hours
            let row = |venue: &str, coin: &str| -> Result<Vec<String>, Miss> {
                let line = need(
                    run.stdout.lines().find(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        f.len() >= 6 && f[0] == venue && f[1] == coin
                    }),
                    || format!("no `{venue} {coin}` row in:\n{}", indent(&run.stdout)),
                )?;
                // The window (`2025-03-08 .. 2026-03-07`) closes the row: its dates are not figures.
                let figures = line.split(" .. ").next().map(|head| head.rsplitn(2, char::is_whitespace).last().unwrap_or(head)).unwrap_or(line);
                let numbers = split_numbers(figures).1;
                if numbers.len() != 4 {
                    return miss(format!("`{line}`: expected settlements, interval, APR and gap hours"));
                }
                Ok(numbers)
            };
            let hype = row("binance", "HYPE")?;
            Ok(vec![row("binance", "BTC")?[2].clone(), row("hyperliquid", "BTC")?[2].clone(), hype[1].clone(), hype[2].clone()])
        },
    );
    ctx.prose(
        "venues: the best-venue carry (stdout, venues.json)",
        "(BTC: # % net, never moving from Hyperliquid, against # % for Hyperliquid from its first hour; HYPE: # % net after # moves, against # % on Hyperliquid alone)",
        |ctx, want| {
            let run = ctx.run(&venues)?;
            let json = run.json("venues.json")?;
            let rotations = need(json["rotations"].as_array(), || "venues.json has no `rotations`".into())?;
            let rotation = |coin: &str, label: &str| -> Result<serde_json::Value, Miss> {
                need(rotations.iter().find(|r| r["coin"] == coin && r["label"] == label).cloned(), || format!("venues.json has no {coin} rotation `{label}`"))
            };
            // net APR, switches, costs
            let best = |coin: &str| -> Result<Vec<String>, Miss> {
                let line = need(
                    run.stdout.lines().find(|l| l.split_whitespace().next() == Some(coin) && l.contains("best venue:")),
                    || format!("no `{coin} best venue:` line in:\n{}", indent(&run.stdout)),
                )?;
                let numbers = split_numbers(line).1;
                if numbers.len() != 3 {
                    return miss(format!("`{line}`: expected net APR, switches and costs"));
                }
                Ok(numbers)
            };
            let (btc, hype) = (best("BTC")?, best("HYPE")?);
            let best_btc = rotation("BTC", "best venue (rotating)")?;
            let btc_held: Vec<&String> = need(best_btc["hours_by_venue"].as_object(), || "venues.json: no hours_by_venue".into())?.keys().collect();
            if btc[1] != "0" || btc_held != ["hyperliquid"] {
                return miss(format!("README says BTC's best-venue carry never leaves Hyperliquid; it switched {} times, holding {btc_held:?}", btc[1]));
            }
            let alone = |coin: &str| -> Result<f64, Miss> { need(rotation(coin, "hyperliquid only")?["net_apr"].as_f64(), || format!("no net_apr for {coin} on hyperliquid only")) };
            Ok(vec![
                btc[0].trim_start_matches('+').to_string(),
                like(alone("BTC")? * 100.0, &want[1]),
                hype[0].trim_start_matches('+').to_string(),
                hype[1].clone(),
                like(alone("HYPE")? * 100.0, &want[4]),
            ])
        },
    );

    // --- Stress: capacity.
    ctx.prose("stress: open interest (stress.json)", "Binance BTC # bn USD)", |ctx, want| {
        let json = ctx.run(&stress)?.json("stress.json")?;
        let oi = need(json["capacity"]["open_interest_usd"].as_f64(), || "stress.json has no capacity.open_interest_usd".into())?;
        Ok(vec![like(oi / 1e9, &want[0])])
    });
    // aum, net APR, funding factor, entry impact, slippage paid, top-ups
    let capacity = |run: &Run| -> Result<(Vec<String>, Vec<String>), Miss> {
        let lines: Vec<Vec<String>> = run.stdout.lines().filter(|l| l.starts_with("capacity ")).map(|l| split_numbers(l).1).collect();
        match (lines.first(), lines.last()) {
            (Some(first), Some(last)) if first.len() == 6 && last.len() == 6 => Ok((first.clone(), last.clone())),
            _ => miss(format!("no `capacity AUM: net APR ...` lines in:\n{}", indent(&run.stdout))),
        }
    };
    ctx.prose("stress: the capacity range (stdout)", "net APR against book size from #^# to #^#.", |ctx, _| {
        let run = ctx.run(&stress)?;
        let (first, last) = capacity(&*run)?;
        let ((a, b), (c, d)) = (power_of_ten(&first[0]), power_of_ten(&last[0]));
        Ok(vec![a, b, c, d])
    });
    ctx.prose("stress: net APR at the smallest and largest book (stdout)", "On Binance hourly BTC this gives # % net APR at #^# and # % at #^#.", |ctx, _| {
        let run = ctx.run(&stress)?;
        let (first, last) = capacity(&*run)?;
        let ((a, b), (c, d)) = (power_of_ten(&first[0]), power_of_ten(&last[0]));
        Ok(vec![first[1].trim_start_matches('+').to_string(), a, b, last[1].trim_start_matches('+').to_string(), c, d])
    });

    // --- Sweeps: the metric columns results.parquet holds after `config_id`, the parameters and
    // `error` (the program's own list; tests/schemas.rs ties README's table to the file).
    ctx.prose("sweep results.parquet: metric count", "then # metrics)", |_, _| Ok(vec![basis::app::sweep::metric_names().len().to_string()]));

    // --- Robustness: the hostile-input corpus.
    ctx.prose("tests/corpus: case count", "`tests/corpus/` holds # hostile inputs", |_, _| {
        let corpus = Path::new(ROOT).join("tests/corpus");
        let cases = std::fs::read_dir(&corpus).map_err(|e| Miss::Error(format!("{}: {e}", corpus.display())))?.flatten().filter(|e| e.path().is_dir()).count();
        Ok(vec![cases.to_string()])
    });

    // --- Benchmarks: counts of the benchmarked inputs.
    ctx.prose(
        "backtest freqtrade-btc-1h: the benchmarked window",
        "The full #–# hourly BTCUSDT backtest from the freqtrade feather files (# steps;",
        |ctx, _| {
            let n = ctx.run(&freqtrade)?.summary_numbers("BTCUSDT")?;
            Ok(vec![n[0][..4].to_string(), n[2][..4].to_string(), grouped(&n[4])])
        },
    );
    let user_caps = caps.iter().filter(|a| *a == "--cap").count();
    ctx.prose(
        "presets: the benchmarked caps rule sets",
        "with # rule sets (the data, the # presets and # user caps: # full carry runs, # of them on counterfactual funding)",
        |ctx, _| {
            let n = ctx.run(&presets)?.stdout.lines().filter(|l| !l.trim().is_empty()).count();
            let all = n + 1 + user_caps;
            Ok(vec![all.to_string(), n.to_string(), user_caps.to_string(), all.to_string(), (n + user_caps).to_string()])
        },
    );
    ctx.prose(
        "venues: the benchmarked table's rows and coins",
        "`basis venues` on the #-row multi-venue table (APRs, correlations, rotations for # coins)",
        |ctx, _| {
            let run = ctx.run(&venues)?;
            let (mut rows, mut coins) = (0usize, BTreeSet::new());
            for line in run.stdout.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                // venue, coin, settlements, interval, APR, gap hours, and the window (3 fields).
                if f.len() == 9 && f[3].ends_with('h') {
                    if let Ok(n) = f[2].parse::<usize>() {
                        rows += n;
                        coins.insert(f[1].to_string());
                    }
                }
            }
            Ok(vec![grouped(&rows.to_string()), coins.len().to_string()])
        },
    );
}

// ---------------------------------------------------------------------------------------------

#[test]
fn readme_figures_match_the_program() {
    let mut ctx = Ctx::new();
    let compared = check_output_blocks(&mut ctx);
    check_prose(&mut ctx);
    for skipped in &ctx.skipped {
        eprintln!("skipped: {skipped}");
    }
    assert!(compared > 0 || !ctx.errors.is_empty(), "README.md has no output block to check");
    assert!(
        ctx.errors.is_empty(),
        "{} README figure(s) differ from the program (rerun the command and paste its output, or fix the code):\n\n{}",
        ctx.errors.len(),
        ctx.errors.join("\n\n")
    );
}

#[test]
fn every_readme_section_is_accounted_for() {
    let readme = Readme::load();
    let found: Vec<String> = readme.sections().into_iter().map(|(_, s)| s).collect();
    let mut problems = Vec::new();
    for section in &found {
        if !SECTIONS.iter().any(|(name, _, _)| name == section) {
            problems.push(format!("README section `{section}` is not in SECTIONS in tests/readme.rs: say how its figures are checked"));
        }
    }
    let blocks = readme.blocks();
    for (name, expected, _) in SECTIONS {
        if !found.iter().any(|s| s == name) {
            problems.push(format!("SECTIONS lists `{name}`, which README no longer has"));
            continue;
        }
        let n = blocks.iter().filter(|b| b.is_output() && readme.section_at(b.line) == *name).count();
        if n != *expected {
            problems.push(format!("README section `{name}` has {n} output block(s); SECTIONS says {expected}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn numbers_are_split_as_printed() {
    let (text, numbers) = split_numbers("BTCUSDT 2019-09-10 08:00:00Z -> 2026-05-17 08:00:00Z (58585 steps, 6.69 years)");
    assert_eq!(numbers, ["2019-09-10", "08:00:00", "2026-05-17", "08:00:00", "58585", "6.69"]);
    assert_eq!(shown(&text), "BTCUSDT # #Z -> # #Z (# steps, # years)");
    let (text, numbers) = split_numbers("  risk          Sharpe 5.04, Sortino 14.05, vol +3.05 %, max drawdown -5.09 % (53.0 days underwater)");
    assert_eq!(numbers, ["5.04", "14.05", "+3.05", "-5.09", "53.0"]);
    assert_eq!(squash(&shown(&text)), "risk Sharpe #, Sortino #, vol # %, max drawdown # % (# days underwater)");
    assert_eq!(split_numbers("(58,585 steps; 2019–2026, −3.6 bp, ±0.30 %, 10^9, top-ups)").1, ["58,585", "2019", "2026", "−3.6", "0.30", "10", "9"]);
    assert_eq!((grouped("58585"), grouped("115218"), grouped("100")), ("58,585".into(), "115,218".into(), "100".into()));
    assert_eq!((like(0.30000000000000004, "0.30"), like(-0.3, "-0.3"), like(0.375, "+0.375")), ("0.30".into(), "-0.3".into(), "+0.375".into()));
    assert_eq!((rounded("-3.61", "-3.6"), rounded("11.50", "11.50")), ("-3.6".into(), "11.50".into()));
    assert!(rounded("-3.65", "-3.6").contains("tie"));
    assert_eq!(power_of_ten("1000000000"), ("10".into(), "9".into()));
}
