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

#[test]
fn report_renders_in_headless_chromium_without_console_errors() {
    let Some(browser) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("Chromium is not installed; .ci/run installs Debian's chromium package");
        }
        eprintln!("skipped: no Chromium on PATH (apt-get install chromium, or set BASIS_CHROMIUM)");
        return;
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
