//! The report page in a real browser: headless Chromium renders `index.html` from file://, and
//! the page must not be blank and must log nothing to the console.
//!
//! Needs Chromium (`chromium`, `chromium-browser` or `google-chrome` on PATH, or BASIS_CHROMIUM).
//! `.ci/run` installs Debian's package; under CI a missing browser fails the test, elsewhere the
//! test says it was skipped.

mod common;

use std::path::Path;
use std::process::Command;

use common::chromium;


fn decode_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    buffer.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    (info.width, info.height, buffer.chunks(channels).flat_map(|px| px[..3].to_vec()).collect())
}

/// Chromium and the sample's report written to a temporary folder; `None` (the test skipped,
/// with a message) when there is no Chromium and `CI` is not set.
fn browser_and_sample_report() -> Option<(std::path::PathBuf, tempfile::TempDir, std::path::PathBuf)> {
    let Some(browser) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("Chromium is not installed; .ci/run installs Debian's chromium package");
        }
        eprintln!("skipped: no Chromium on PATH (apt-get install chromium, or set BASIS_CHROMIUM)");
        return None;
    };
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_basis"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["backtest", "--output-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let page = tmp.path().join("sample/index.html");
    Some((browser, tmp, page))
}

#[test]
fn report_renders_in_headless_chromium_without_console_errors() {
    let Some((browser, tmp, page)) = browser_and_sample_report() else { return };
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let shot = tmp.path().join("shot.png");
    let profile = tmp.path().join("profile");
    let run = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--window-size=1366,4000")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("Chromium starts");
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(shot.is_file(), "no screenshot; Chromium said:\n{log}");
    // The page has no script: any console message is an error report (a blocked load, a CSP or
    // parse failure).
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console output:\n{}", console.join("\n"));

    let (width, height, rgb) = decode_png(&shot);
    assert_eq!((width, height), (1366, 4000));
    // Not blank: most of the page is covered by cards, charts and text, in many colours.
    let background = [0xf4u8, 0xf5, 0xf7];
    let pixels = rgb.len() / 3;
    let differing = rgb.chunks(3).filter(|px| *px != background).count();
    assert!(differing as f64 / pixels as f64 > 0.5, "{:.1} % of the screenshot differs from the page background", 100.0 * differing as f64 / pixels as f64);
    let mut colours: Vec<[u8; 3]> = rgb.chunks(3).step_by(7).map(|px| [px[0], px[1], px[2]]).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 200, "only {} colours: the charts did not render", colours.len());
    // The charts are drawn as images: the blue of the equity line is on screen.
    let equity_blue = rgb.chunks(3).filter(|px| px[0] < 60 && (100..140).contains(&px[1]) && px[2] > 160).count();
    assert!(equity_blue > 500, "{equity_blue} equity-line pixels");
}

/// The interactive charts, driven in the browser: `index.html#selftest` zooms the first chart
/// programmatically and moves a real mouse over it, then reports what changed. The visible
/// range must narrow, values must appear under the cursor in that chart and (the shared
/// crosshair) in the next one, no error may be raised, and the page may load no resource at all
/// (its Content-Security-Policy forbids it; the Resource Timing list must be empty).
#[test]
fn interactive_charts_zoom_and_show_values_offline() {
    let Some((browser, tmp, page)) = browser_and_sample_report() else { return };
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Content-Security-Policy") && html.contains("default-src 'none'"), "the page forbids network requests");
    assert!(html.contains("The MIT License"), "uPlot's licence notice is in the page");
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 11, "every chart keeps its PNG as the fallback");
    let url = format!("file://{}#selftest", page.canonicalize().unwrap().display());
    let profile = tmp.path().join("profile");
    // Request interception: every request the browser makes over the network goes to this
    // proxy (loopback included), which counts the connections it is offered.
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = proxy.local_addr().unwrap().port();
    proxy.set_nonblocking(true).unwrap();
    let intercepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counter = {
        let (intercepted, stop) = (intercepted.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::io::Read;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match proxy.accept() {
                    Ok((mut connection, _)) => {
                        // The request line names what was asked for.
                        let _ = connection.set_nonblocking(false);
                        let _ = connection.set_read_timeout(Some(std::time::Duration::from_millis(500)));
                        let mut head = [0u8; 512];
                        let n = connection.read(&mut head).unwrap_or(0);
                        let line = String::from_utf8_lossy(&head[..n]).lines().next().unwrap_or("").to_string();
                        intercepted.lock().unwrap().push(line);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        })
    };
    let run = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--proxy-server=http://127.0.0.1:{proxy_port}"))
        .arg("--proxy-bypass-list=<-loopback>")
        .arg("--disable-background-networking")
        .arg("--disable-component-update")
        .arg("--disable-sync")
        .arg("--no-pings")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--window-size=1400,3000")
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("Chromium starts");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    counter.join().unwrap();
    // Chromium itself calls home (clock, accounts) whatever the page; anything else came from
    // the page.
    let browser_own = ["google.com", "gstatic.com", "googleapis.com", "gvt1.com"];
    let from_page: Vec<String> = intercepted
        .lock()
        .unwrap()
        .iter()
        .filter(|line| {
            let target = line.split_whitespace().nth(1).unwrap_or("");
            let host = target.trim_start_matches("http://").trim_start_matches("https://").split(['/', ':']).next().unwrap_or("");
            !browser_own.iter().any(|own| host == *own || host.ends_with(&format!(".{own}")))
        })
        .cloned()
        .collect();
    assert!(from_page.is_empty(), "the page made network requests (intercepted at the proxy): {from_page:?}");
    let dom = String::from_utf8_lossy(&run.stdout);
    let log = String::from_utf8_lossy(&run.stderr);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console output:\n{}", console.join("\n"));
    let start = dom.find("<pre id=\"selftest-result\">").unwrap_or_else(|| panic!("the self-test did not report; Chromium said:\n{log}"));
    let json = &dom[start + "<pre id=\"selftest-result\">".len()..];
    let json = &json[..json.find("</pre>").unwrap()];
    let result: serde_json::Value = serde_json::from_str(&json.replace("&quot;", "\"").replace("&amp;", "&")).unwrap();
    assert_eq!(result["charts"].as_u64(), Some(8), "{result}");
    assert_eq!(result["errors"].as_array().map(|a| a.len()), Some(0), "{result}");
    assert_eq!(result["resources"].as_u64(), Some(0), "the page loaded something: {result}");
    let range = |key: &str| -> (f64, f64) { (result[key][0].as_f64().unwrap(), result[key][1].as_f64().unwrap()) };
    let (before, after) = (range("zoom_before"), range("zoom_after"));
    assert!(after.1 - after.0 < 0.5 * (before.1 - before.0), "zoom did not narrow the range: {before:?} -> {after:?}");
    let shown = |key: &str| result[key].as_array().unwrap().iter().filter(|v| v.as_str().is_some_and(|s| s != "--" && !s.is_empty())).count();
    assert!(shown("cursor_values") >= 2, "no values under the cursor: {result}");
    assert!(shown("linked_values") >= 2, "the crosshair did not reach the next chart: {result}");

    // Every element a caption promises is in the interactive chart that replaces its PNG.
    let elements = result["elements"].as_array().expect("the self-test lists each chart's elements");
    let chart = |section: &str| elements.iter().find(|e| e["section"] == section).unwrap_or_else(|| panic!("no {section} chart: {result}"));
    let labels = |e: &serde_json::Value| e["series"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect::<Vec<_>>();
    let marked = |e: &serde_json::Value, prefix: &str| e["markers"].as_array().unwrap().iter().find(|m| m[0].as_str().unwrap().starts_with(prefix)).map(|m| m[1].as_u64().unwrap()).unwrap_or(0);
    let funding = chart("funding");
    assert!(labels(funding).iter().any(|l| l == "cap") && labels(funding).iter().any(|l| l == "floor"), "cap and floor lines: {funding}");
    assert!(marked(funding, "at cap or floor") > 0, "settlements at the cap are circled: {funding}");
    assert!(labels(chart("basis")).iter().any(|l| l == "trailing 7-day mean"), "the basis's 7-day mean");
    assert!(labels(chart("margin")).iter().any(|l| l.starts_with("margin top-up threshold")), "the top-up threshold");
    let equity = &elements[0];
    assert_eq!(equity["section"], "equity");
    for event in ["entry", "exit", "margin top-up"] {
        assert!(marked(equity, event) > 0, "{event} markers on the equity chart: {equity}");
    }
    assert!(!labels(equity).iter().any(|l| l.contains("unhedged")), "the unhedged spot no longer flattens the carry");
    let pnl = labels(chart("pnl_components"));
    assert!(pnl.iter().any(|l| l == "basis (spot + perp)") && !pnl.iter().any(|l| l == "spot" || l == "perp"), "spot and perp as the basis: {pnl:?}");
}

/// The grey stale-spot bands of the basis chart, on real history that has stale spans (the
/// sample has none): the interactive chart carries the same spans the PNG shades.
#[test]
fn interactive_basis_chart_shades_the_stale_spot_spans() {
    let Some(browser) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("Chromium is not installed; .ci/run installs Debian's chromium package");
        }
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_basis"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["backtest", "--config", "data/examples/freqtrade-btc-1h.toml", "--set", "strategy.start=\"2020-01-01T00:00:00Z\"", "--set", "strategy.end=\"2021-01-01T00:00:00Z\"", "--output-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let page = std::fs::read_dir(tmp.path()).unwrap().flatten().map(|e| e.path().join("index.html")).find(|p| p.is_file()).unwrap();
    let run = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--virtual-time-budget=5000", "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", tmp.path().join("profile").display()))
        .arg("--window-size=1400,3000")
        .arg("--dump-dom")
        .arg(format!("file://{}#selftest", page.canonicalize().unwrap().display()))
        .output()
        .expect("Chromium starts");
    let dom = String::from_utf8_lossy(&run.stdout);
    let start = dom.find("<pre id=\"selftest-result\">").expect("the self-test reported");
    let json = &dom[start + "<pre id=\"selftest-result\">".len()..];
    let result: serde_json::Value = serde_json::from_str(&json[..json.find("</pre>").unwrap()].replace("&quot;", "\"").replace("&amp;", "&")).unwrap();
    let basis = result["elements"].as_array().unwrap().iter().find(|e| e["section"] == "basis").unwrap();
    assert!(basis["bands"].as_u64().unwrap() > 0, "{basis}");
    assert!(basis["band_label"].as_str().unwrap().starts_with("grey bands: stale spot"), "{basis}");
}
