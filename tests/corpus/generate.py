"""Regenerate tests/corpus: one folder per bad (or repairable) input, each with its config and an
expect.toml (exit code and stderr substrings). `python3 tests/corpus/generate.py`; the files are committed."""
import gzip, json, os, shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent
for old in ROOT.iterdir():
    if old.is_dir():
        shutil.rmtree(old)

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01
N = 48
HEADER = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"

def klines(price=100.0, n=N, start=T0, unit=1):
    rows = [HEADER]
    for i in range(n):
        o = (start + i * H) * unit
        c = (start + (i + 1) * H - 1) * unit
        rows.append(f"{o},{price},{price+1},{price-1},{price},10,{c},1000,5,5,500,0")
    return rows

def funding(n=N // 8, rate="0.0001"):
    rows = ["calc_time,funding_interval_hours,last_funding_rate"]
    for k in range(1, n + 1):
        rows.append(f"{T0 + k * 8 * H},8,{rate}")
    return rows

CONFIG = """[run]
name = "corpus"
[data]
symbol = "TESTUSDT"
[data.spot]
format = "{spot_format}"
path = "{spot}"
{spot_extra}
[data.perp]
format = "binance_klines"
path = "{perp}"
[data.funding]
format = "{funding_format}"
path = "{funding}"
{extra}
"""

def case(name, exit_code, expect, spot=None, perp=None, fund=None, spot_name="spot.csv", perp_name="perp.csv",
         fund_name="funding.csv", spot_format="binance_klines", funding_format="binance_funding", spot_extra="", extra="",
         raw_files=None, config=None, args=None, absent=None, funding_extra=""):
    d = ROOT / name
    d.mkdir()
    def write(fname, content):
        p = d / fname
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    write(spot_name, spot if spot is not None else "\n".join(klines()) + "\n")
    write(perp_name, perp if perp is not None else "\n".join(klines(100.1)) + "\n")
    write(fund_name, fund if fund is not None else "\n".join(funding()) + "\n")
    for fname, content in (raw_files or {}).items():
        write(fname, content)
    cfg = config if config is not None else CONFIG.format(spot_format=spot_format, spot=spot_name, perp=perp_name, funding_format=funding_format, funding=fund_name, spot_extra=spot_extra, extra=extra)
    if funding_extra:
        cfg = cfg.replace(f'path = "{fund_name}"\n', f'path = "{fund_name}"\n{funding_extra}\n')
    write("config.toml", cfg)
    lines = [f"exit = {exit_code}", "stderr = [" + ", ".join(json.dumps(e) for e in expect) + "]"]
    if args:
        lines.append("args = [" + ", ".join('"' + a + '"' for a in args) + "]")
    if absent:
        lines.append("absent = [" + ", ".join(json.dumps(a) for a in absent) + "]")
    (d / "expect.toml").write_text("\n".join(lines) + "\n")

good = klines()
def edit(rows, i, col, value):
    r = list(rows)
    cells = r[i].split(",")
    cells[col] = value
    r[i] = ",".join(cells)
    return "\n".join(r) + "\n"

# Files
case("01-empty-spot", 2, ["spot.csv", "empty"], spot="")
case("02-header-only-spot", 2, ["spot.csv", "no data rows"], spot=HEADER + "\n")
case("03-missing-columns", 2, ["spot.csv", "expected at least"], spot="\n".join(",".join(r.split(",")[:4]) for r in good) + "\n")
case("04-non-numeric-close", 2, ["spot.csv: line 6", "column", "expected a number", "abc"], spot=edit(good, 5, 4, "abc"))
case("05-nan-close", 2, ["spot.csv: line 6", "finite"], spot=edit(good, 5, 4, "NaN"))
case("06-inf-close", 2, ["spot.csv: line 6", "finite"], spot=edit(good, 5, 4, "inf"))
case("07-zero-price", 2, ["spot.csv: line 6", "> 0"], spot=edit(good, 5, 4, "0"))
case("08-negative-price", 2, ["spot.csv: line 6", "> 0"], spot=edit(good, 5, 4, "-5"))
dup = list(good); dup.insert(6, edit(good, 5, 4, "101").split("\n")[5])
case("09-duplicate-timestamp-conflicting", 2, ["spot.csv: line 6", "spot.csv: line 7", "two different rows"], spot="\n".join(dup) + "\n")
same = list(good); same.insert(6, good[5])
case("10-duplicate-timestamp-identical", 0, ["duplicate"], spot="\n".join(same) + "\n")
swap = list(good); swap[5], swap[6] = swap[6], swap[5]
case("11-out-of-order", 0, ["out of time order", "spot.csv: line 7", "sorted"], spot="\n".join(swap) + "\n")
gap_f = funding(); del gap_f[3]
case("12-missing-settlement", 0, ["gap"], fund="\n".join(gap_f) + "\n")
mixed = list(good); mixed[7] = edit(good, 7, 0, str((T0 + 6 * H) // 1000)).split("\n")[7]
case("13-mixed-s-ms", 2, ["spot.csv: line 8", "one unit"], spot="\n".join(mixed) + "\n")
mixed_us = list(good); c = mixed_us[9].split(","); c[0] = str((T0 + 8 * H) * 1000); c[6] = str((T0 + 9 * H - 1) * 1000); mixed_us[9] = ",".join(c)
case("14-mixed-ms-us", 2, ["spot.csv: line 10", "one unit"], spot="\n".join(mixed_us) + "\n")
case("15-funding-in-percent", 2, ["funding.csv", "percent"], fund="\n".join(funding(rate="0.01") [:1] + [f"{T0 + k * 8 * H},8,{0.5 + k * 0.1}" for k in range(1, 7)]) + "\n")
rest = ["symbol,funding_time,funding_rate,mark_price"] + [f"TESTUSDT,{T0 + k * 8 * H},0.0001," for k in range(1, 6)] + [f"OTHERUSDT,{T0 + 6 * 8 * H},0.0001,"]
case("16-second-symbol", 2, ["funding.csv: line 7", "symbol", "OTHERUSDT"], fund="\n".join(rest) + "\n", funding_format="binance_rest")
case("17-no-overlap", 2, ["no common time"], perp="\n".join(klines(100.1, start=T0 + 100 * H)) + "\n")
case("18-truncated-last-line", 2, ["spot.csv"], spot="\n".join(good) + "\n" + good[-1].split(",")[0] + ",100,10")
case("19-crlf", 0, [], spot="\r\n".join(good) + "\r\n")
case("20-utf8-bom", 0, [], spot="\ufeff" + "\n".join(good) + "\n")
case("21-corrupt-gzip", 2, ["spot.csv.gz"], spot=b"\x1f\x8b\x08\x00garbage-not-gzip", spot_name="spot.csv.gz")
case("22-corrupt-zip", 2, ["spot.zip"], spot=b"PK\x03\x04this is not a zip", spot_name="spot.zip")
case("23-empty-funding", 2, ["funding.csv", "empty"], fund="")
case("24-funding-non-numeric", 2, ["funding.csv: line 3", "expected a number"], fund="\n".join(funding()[:2] + [f"{T0 + 16 * H},8,x"] + funding()[3:]) + "\n")
case("25-funding-nan", 2, ["funding.csv: line 3", "finite"], fund="\n".join(funding()[:2] + [f"{T0 + 16 * H},8,NaN"] + funding()[3:]) + "\n")
gen = ["close,ts,high,low,extra"] + [f"{100},{T0 + (i + 1) * H},{101},{99},zzz" for i in range(N)]
case("26-generic-extra-reordered-columns", 0, [], spot="\n".join(gen) + "\n", spot_format="generic", spot_extra='close_time_column = "ts"\nclose_column = "close"\nhigh_column = "high"\nlow_column = "low"')
gen_missing = ["ts,high,low"] + [f"{T0 + (i + 1) * H},101,99" for i in range(N)]
case("27-generic-missing-column", 2, ["missing column `close`", "ts, high, low"], spot="\n".join(gen_missing) + "\n", spot_format="generic", spot_extra='close_time_column = "ts"\nclose_column = "close"')
case("28-missing-file", 2, ["nope.csv"], config=CONFIG.format(spot_format="binance_klines", spot="nope.csv", perp="perp.csv", funding_format="binance_funding", funding="funding.csv", spot_extra="", extra=""))
case("29-glob-matches-nothing", 2, ["no file matches", "spot-*.csv"], config=CONFIG.format(spot_format="binance_klines", spot="spot-*.csv", perp="perp.csv", funding_format="binance_funding", funding="funding.csv", spot_extra="", extra=""))
iso_bad = ["open_time,open,high,low,close,volume,close_time"] + [f"2024-01-01T{i:02d}:00:00Z,100,101,99,100,1,2024-01-01T{i:02d}:59:59.999Z" for i in range(20)]
iso_bad[5] = iso_bad[5].replace("2024-01-01T04", "2024-13-01T04")
case("30-bad-iso-time", 2, ["spot.csv: line 6", "2024-13-01"], spot="\n".join(iso_bad) + "\n")
# Config
case("31-config-unknown-key", 2, ["leverge", "leverage"], extra="[portfolio]\nleverge = 2.0")
case("32-config-wrong-type", 2, ["leverage", "invalid type"], extra='[portfolio]\nleverage = "two"')
case("33-config-negative-fee", 2, ["costs.perp_taker_bps", "[0, 1000]"], extra="[costs]\nperp_taker_bps = -1.0")
case("34-config-zero-leverage", 2, ["portfolio.leverage", "(0, 125]"], extra="[portfolio]\nleverage = 0.0")
case("35-config-negative-cap", 2, ["venue.funding_cap", "(0, 1)"], extra="[venue]\nfunding_cap = -0.01")
case("36-run-name-escape", 2, ["run.name", "not allowed"], args=["--name", "../escape"])
case("37-run-name-absolute", 2, ["run.name", "not allowed"], args=["--name", "/tmp/escape"])
case("38-unknown-preset", 2, ["preset", "binance_usdm"], extra='[venue]\npreset = "nowhere"')
# Coverage, clocks and bars (data truth)
case("39-funding-ends-early", 0, ["coverage: funding (2024-01-01 00:00:00Z .. 2024-01-02 08:00:00Z) ends before the perp", "the window ends at 2024-01-02 08:00:00Z instead of 2024-01-03 00:00:00Z (16 perp steps cut)"], fund="\n".join(funding(n=3)) + "\n")
late = ["calc_time,funding_interval_hours,last_funding_rate"] + [f"{T0 + k * 8 * H},8,0.0001" for k in range(3, 7)]
case("40-funding-starts-late", 0, ["coverage: funding (2024-01-01 16:00:00Z .. 2024-01-03 08:00:00Z) starts after the perp", "the window starts at 2024-01-01 16:00:00Z instead of 2024-01-01 01:00:00Z (15 perp steps cut)"], fund="\n".join(late) + "\n")
mark_hole = klines(100.05)
del mark_hole[11:21]
case("41-mark-missing-a-span", 0, ["mark: 10 of 48 steps have no mark bar, in 1 run(s) (2024-01-01 11:00:00Z .. 2024-01-01 20:00:00Z)", "last price stands in for the mark"], raw_files={"mark.csv": "\n".join(mark_hole) + "\n"}, extra='[data.mark]\nformat = "binance_klines"\npath = "mark.csv"')
case("42-window-beyond-coverage", 2, ["strategy.end = 2024-01-05 00:00:00Z is after the data ends", "spot (2024-01-01 01:00:00Z .. 2024-01-03 00:00:00Z)", "funding (2024-01-01 00:00:00Z .. 2024-01-03 08:00:00Z)", "allow_partial_coverage"], extra='[strategy]\nend = "2024-01-05"')
case("43-window-before-coverage", 2, ["strategy.start = 2023-12-01 00:00:00Z is before the data covers it", "perp (2024-01-01 01:00:00Z"], extra='[strategy]\nstart = "2023-12-01"')
case("44-partial-coverage-allowed", 0, ["16 of 48 steps lie outside funding (2024-01-01 00:00:00Z .. 2024-01-02 08:00:00Z)", "event bit 128"], fund="\n".join(funding(n=3)) + "\n", config=CONFIG.format(spot_format="binance_klines", spot="spot.csv", perp="perp.csv", funding_format="binance_funding", funding="funding.csv", spot_extra="", extra='[strategy]\nend = "2024-01-03"').replace('symbol = "TESTUSDT"', 'symbol = "TESTUSDT"\nallow_partial_coverage = true'))
shifted = ["calc_time,funding_interval_hours,last_funding_rate"] + [f"{T0 + k * 8 * H + 3 * H},8,0.0001" for k in range(0, 6)]
case("45-funding-3h-off-schedule", 0, ["funding: settlement times are 3 h after Binance USD-M's 00/08/16 UTC schedule (6 of 6 settlements)", "UTC+3 or UTC-5", "utc_offset_hours = 3"], fund="\n".join(shifted) + "\n")
from datetime import datetime, timezone, timedelta
local = ["calc_time,funding_interval_hours,last_funding_rate"] + [(datetime.fromtimestamp((T0 + k * 8 * H) / 1000, timezone.utc) + timedelta(hours=3)).strftime("%Y-%m-%d %H:%M:%S") + ",8,0.0001" for k in range(1, 7)]
case("46-funding-local-time-read-with-offset", 0, [], fund="\n".join(local) + "\n", absent=["schedule", "coverage"], funding_extra="utc_offset_hours = 3")
case("47-open-negative", 2, ["spot.csv: line 6", "column `open`", "-5"], spot=edit(good, 5, 1, "-5"))
case("48-low-above-close", 2, ["spot.csv: line 6", "column `close`", "outside its low 100.5"], spot=edit(good, 5, 3, "100.5"))
case("49-open-above-high", 2, ["perp.csv: line 4", "column `open`", "outside its low"], perp=edit(klines(100.1), 3, 1, "150"))
case("50-negative-volume", 2, ["spot.csv: line 6", "column `volume`", "negative"], spot=edit(good, 5, 5, "-1"))
# Parquet inputs are mapped, not read: an empty or cut file must still fail with the file's name.
case("51-empty-parquet", 2, ["spot.parquet", "not a readable Parquet file"], spot=b"", spot_name="spot.parquet", spot_format="generic", spot_extra='close_time_column = "ts"\nclose_column = "close"')
case("52-truncated-parquet", 2, ["spot.parquet", "not a readable Parquet file"], spot=b"PAR1" + b"\x15\x04\x15" * 40, spot_name="spot.parquet", spot_format="generic", spot_extra='close_time_column = "ts"\nclose_column = "close"')
print(len(list(ROOT.iterdir())), "cases")
