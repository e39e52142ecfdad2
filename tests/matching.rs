//! Inputs that do not belong together are refused with both files and the figure named, and a
//! documented key lets a meant pairing through: an ETH perp beside BTC spot and funding, a
//! `symbol` that disagrees with Binance dump names or a freqtrade pair.

mod common;

use common::real_data_dir;

/// The BTC daily example (real Binance history), with `edit` applied to its text.
fn daily(edit: impl Fn(String) -> String) -> Result<(), String> {
    let data = real_data_dir();
    let text = format!(
        r#"
[run]
report = false
[data]
symbol = "BTCUSDT"
[data.spot]
format = "binance_klines"
path = "{d}/binance-daily/spot_BTCUSDT_1d_20210101_20241231.csv"
[data.perp]
format = "binance_klines"
path = "{d}/binance-daily/perp_BTCUSDT_1d_20210101_20241231.csv"
[data.funding]
format = "binance_funding"
path = "{d}/binance-funding/BTCUSDT-fundingRate-*.csv"
[strategy]
mode = "always_on"
[venue]
preset = "binance_usdm"
"#,
        d = data.display()
    );
    let config = basis::config::Config::from_toml_str(&edit(text), "daily.toml", std::path::Path::new(".")).map_err(|e| format!("{e:#}"))?;
    basis::app::backtest::run(&config).map(|_| ()).map_err(|e| format!("{e:#}"))
}

#[test]
fn an_eth_perp_beside_btc_spot_is_refused_naming_both_files_and_the_ratio() {
    let err = daily(|t| t.replace("perp_BTCUSDT_1d", "perp_ETHUSDT_1d")).unwrap_err();
    for needle in ["perp_ETHUSDT_1d_20210101_20241231.csv", "spot_BTCUSDT_1d_20210101_20241231.csv", "median perp/spot price ratio", "allow_price_mismatch = true"] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    // The ratio it names is ETH over BTC on the shared days: about 0.05, not 1.
    let ratio: f64 = err.split("ratio over ").nth(1).and_then(|s| s.split(" is ").nth(1)).and_then(|s| s.split(',').next()).unwrap().parse().unwrap();
    assert!((0.02..0.1).contains(&ratio), "{ratio}");
    // The key lets a meant pairing through.
    assert!(daily(|t| t.replace("perp_BTCUSDT_1d", "perp_ETHUSDT_1d").replace("[data]\n", "[data]\nallow_price_mismatch = true\n")).is_ok());
    // The real pairing loads.
    assert_eq!(daily(|t| t), Ok(()));
}

#[test]
fn a_symbol_that_disagrees_with_the_files_names_is_refused() {
    // Binance's funding dumps carry their market in the file name.
    let err = daily(|t| t.replace("symbol = \"BTCUSDT\"", "symbol = \"ETHUSDT\"")).unwrap_err();
    for needle in ["BTCUSDT-fundingRate-", "named for BTCUSDT", "symbol = \"ETHUSDT\"", "allow_symbol_mismatch = true"] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    assert!(daily(|t| t.replace("symbol = \"BTCUSDT\"", "symbol = \"ETHUSDT\"").replace("[data]\n", "[data]\nallow_symbol_mismatch = true\n")).is_ok());
    // A freqtrade pair names its market too.
    let text = format!(
        "[run]\nreport = false\n[data]\nsymbol = \"ETHUSDT\"\n[data.freqtrade]\ndatadir = \"{}\"\npair = \"BTC/USDT\"\ntimeframe = \"1h\"\n[strategy]\nmode = \"always_on\"\nstart = \"2024-01-01T00:00:00Z\"\nend = \"2024-02-01T00:00:00Z\"\n",
        real_data_dir().join("freqtrade-binance-1h").display()
    );
    let config = basis::config::Config::from_toml_str(&text, "ft.toml", std::path::Path::new(".")).unwrap();
    let err = basis::app::backtest::run(&config).map(|_| ()).map_err(|e| format!("{e:#}")).unwrap_err();
    assert!(err.contains("pair = \"BTC/USDT\"") && err.contains("symbol = \"ETHUSDT\""), "{err}");
}
