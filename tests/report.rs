//! Reports: the files a run writes, what the PNGs and the HTML hold, re-rendering from saved
//! outputs, escaping, and `basis compare`.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use basis::config::Config;
use basis::render::{self, series, SavedRun};

fn basis() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_basis"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

fn sample_config(output_dir: &Path) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basis.toml");
    let mut config = Config::load(&path).expect("data/basis.toml loads");
    config.run.output_dir = output_dir.to_path_buf();
    config
}

/// Run the default sample backtest into `output_dir` and return the run folder.
fn sample_run(output_dir: &Path) -> PathBuf {
    let config = sample_config(output_dir);
    let result = basis::app::backtest::run(&config).expect("sample backtest runs");
    basis::app::backtest::write_outputs(&config, None, &result, false).expect("outputs written")
}

struct Decoded {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

fn decode_png(bytes: &[u8]) -> Decoded {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buffer = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buffer).expect("PNG decodes");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buffer.truncate(info.buffer_size());
    Decoded { width: info.width, height: info.height, rgb: buffer }
}

/// Share of pixels in rows `rows` that are not close to white.
fn ink_share(image: &Decoded, rows: std::ops::Range<u32>) -> f64 {
    let mut ink = 0usize;
    let mut total = 0usize;
    for y in rows {
        for x in 0..image.width {
            let i = ((y * image.width + x) * 3) as usize;
            let px = &image.rgb[i..i + 3];
            total += 1;
            if px.iter().any(|&c| c < 200) {
                ink += 1;
            }
        }
    }
    ink as f64 / total as f64
}

const CHARTS: [&str; 11] = [
    "equity.png",
    "pnl_components.png",
    "drawdown.png",
    "funding.png",
    "basis.png",
    "margin.png",
    "carry_apr.png",
    "rolling_sharpe.png",
    "return_distribution.png",
    "monthly_funding.png",
    "monthly_returns.png",
];

#[test]
fn a_run_writes_decodable_charts_and_a_self_contained_page() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = sample_run(tmp.path());
    let html = std::fs::read_to_string(folder.join("index.html")).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    let listed: Vec<&str> = manifest["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();

    for chart in CHARTS {
        assert!(listed.contains(&chart), "manifest lists {chart}");
        let bytes = std::fs::read(folder.join(chart)).unwrap_or_else(|_| panic!("{chart} written"));
        let image = decode_png(&bytes);
        // The sample spans 2024 and 2025: the heatmap has two rows of months.
        // The equity chart has a second panel: the carry alone.
        let height = if chart == "monthly_returns.png" { render::charts::heatmap_height(2) } else if chart == "equity.png" { 820 } else { 560 };
        assert_eq!((image.width, image.height), (1400, height), "{chart} dimensions");
        // Not blank: the plot holds lines, and the title band holds text (the bundled font drew it).
        let ink = ink_share(&image, 0..image.height);
        assert!(ink > 0.01 && ink < 0.6, "{chart}: {:.1} % of pixels drawn", ink * 100.0);
        assert!(ink_share(&image, 0..40) > 0.005, "{chart}: no title text");
        // The page embeds exactly these bytes.
        let embedded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert!(html.contains(&embedded), "{chart} embedded in index.html");
        let id = chart.trim_end_matches(".png");
        assert!(html.contains(&format!("id=\"{id}\"")), "section {id}");
    }
    assert_eq!(html.matches("<img ").count(), CHARTS.len());
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), CHARTS.len());

    // The metrics table holds the run's figures.
    let metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(folder.join("metrics.json")).unwrap()).unwrap();
    assert!(html.contains("id=\"metrics\"") && html.contains("id=\"attribution\"") && html.contains("id=\"funding-by-year\""));
    let final_equity = render::html::money(metrics["final_equity"].as_f64().unwrap());
    assert_eq!(final_equity, "116,571.64");
    assert!(html.contains(&final_equity));
    assert!(html.contains(&format!("{:.2}", metrics["sharpe"].as_f64().unwrap())));
    assert!(html.contains("SYNTHETIC DATA"));

    // Nothing is fetched: no external scripts, stylesheets, frames or URLs to load (the inline
    // uPlot names its home page in a comment, which loads nothing; the browser test intercepts
    // requests, and the page's Content-Security-Policy forbids them).
    for forbidden in ["src=\"http", "href=\"http", "<script src", "<link", "<iframe", "url(http", "url(//", "@import", "//cdn"] {
        assert!(!html.contains(forbidden), "index.html contains {forbidden:?}");
    }
    assert!(html.contains("default-src 'none'"), "the page forbids every load in its Content-Security-Policy");
}

#[test]
fn report_rerenders_the_same_files_from_a_saved_run() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = sample_run(tmp.path());
    let mut originals = Vec::new();
    for file in CHARTS.iter().chain(&["index.html"]) {
        originals.push((file.to_string(), std::fs::read(folder.join(file)).unwrap()));
        std::fs::remove_file(folder.join(file)).unwrap();
    }
    let output = basis().arg("report").arg(&folder).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for (file, bytes) in &originals {
        let again = std::fs::read(folder.join(file)).unwrap_or_else(|_| panic!("{file} re-rendered"));
        assert!(again == *bytes, "{file} differs after re-rendering from the saved outputs");
    }
    // No temporary folder is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&folder).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty());
}

#[test]
fn chart_numbers_agree_with_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = sample_run(tmp.path());
    let run = SavedRun::load(&folder).unwrap();
    let ts = run.ledger.ts_ms();
    let equity = run.ledger.column("equity").unwrap();
    let initial = run.config.portfolio.initial_capital;
    let under = series::underwater(ts, equity, initial);
    assert_eq!(under.max_drawdown, run.metrics.max_drawdown);
    let days = (under.longest_to_ms - under.longest_from_ms) as f64 / 86_400_000.0;
    assert!((days - run.metrics.max_drawdown_duration_days).abs() < 1e-9, "{days} vs {}", run.metrics.max_drawdown_duration_days);
    // Monthly returns compound to the total return.
    let months = series::monthly_returns(ts, equity, initial);
    assert_eq!(months.len(), 12);
    let growth: f64 = months.iter().map(|m| 1.0 + m.value).product();
    assert!((growth - 1.0 - run.metrics.total_return).abs() < 1e-12);
    // Funding saved per settlement adds up to the funding PnL; the capped count matches the data.
    let funding: f64 = run.settlements.iter().map(|s| s.amount).sum();
    assert!((funding - run.metrics.funding_pnl).abs() < 1e-6 * run.metrics.funding_pnl.abs());
    assert_eq!(run.settlements.len(), run.metrics.settlements);
    // The sample's rally pins funding at its +0.3 % cap for 53 settlements.
    assert_eq!(run.input().capped_settlements(), 53);
    assert_eq!(run.settlements.iter().filter(|s| s.settlement.rate >= 0.003 - 1e-12).count(), 53);
}

#[test]
fn strings_from_data_and_config_are_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = sample_config(tmp.path());
    config.venue.name = Some("<img src=x onerror=alert(1)>".into());
    let mut result = basis::app::backtest::run(&config).unwrap();
    result.warnings.push("spot: row 7 <script>alert('x')</script> & more".into());
    let files = render::render(&result.report_input(&config, "run<1>")).unwrap();
    let html = String::from_utf8(files.iter().find(|f| f.name == "index.html").unwrap().bytes.clone()).unwrap();
    // The page's own scripts are there (the interactive charts); the hostile markup is not.
    assert!(!html.contains("<script>alert") && !html.contains("<img src=x"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("run&lt;1&gt;"));
}

#[test]
fn compare_overlays_runs_and_puts_metrics_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    for (name, leverage) in [("lev1", "1"), ("lev3", "3")] {
        let config_text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basis.toml"))
            .unwrap()
            .replace("leverage = 2.0", &format!("leverage = {leverage}.0"));
        let config_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("data/.test-compare-{name}-{}.toml", std::process::id()));
        std::fs::write(&config_path, config_text).unwrap();
        let output = basis().args(["backtest", "--output-dir", out, "--name", name, "--config"]).arg(&config_path).output().unwrap();
        std::fs::remove_file(&config_path).unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let a = tmp.path().join("lev1");
    let b = tmp.path().join("lev3");
    let compare = |extra: &[&str]| basis().arg("compare").arg(&a).arg(&b).args(["--output-dir", out]).args(extra).output().unwrap();
    let output = compare(&[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let folder = tmp.path().join("compare");
    let html = std::fs::read_to_string(folder.join("index.html")).unwrap();
    for file in ["compare_equity.png", "compare_drawdown.png"] {
        let image = decode_png(&std::fs::read(folder.join(file)).unwrap());
        assert_eq!((image.width, image.height), (1400, 560));
        assert!(ink_share(&image, 0..image.height) > 0.02);
    }
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 2);
    assert!(html.contains("<th class=\"num\">lev1</th><th class=\"num\">lev3</th>"));
    let m1: serde_json::Value = serde_json::from_slice(&std::fs::read(a.join("metrics.json")).unwrap()).unwrap();
    let m3: serde_json::Value = serde_json::from_slice(&std::fs::read(b.join("metrics.json")).unwrap()).unwrap();
    assert_ne!(m1["final_equity"], m3["final_equity"]);
    for m in [&m1, &m3] {
        assert!(html.contains(&render::html::money(m["final_equity"].as_f64().unwrap())));
    }
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(folder.join("compare.json")).unwrap()).unwrap();
    assert_eq!(summary.as_array().unwrap().len(), 2);
    assert!(!html.contains("http://") && !html.contains("https://"));
    // A second comparison keeps the first.
    assert!(compare(&[]).status.success());
    assert!(tmp.path().join("compare-2/index.html").is_file());
    // One run is not a comparison.
    let output = basis().arg("compare").arg(&a).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn report_of_a_folder_that_is_not_a_run_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let output = basis().arg("report").arg(tmp.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no manifest.json") && stderr.contains("basis backtest"), "{stderr}");
}
