"""Write the user target files of the strategy comparison (README, "Strategies").

A stand-in for a quant's own model, computed the way a notebook would and handed to basis as a
file: at each day's 00:00 UTC, the trailing 7-day funding APR from the settlements known then
(time-weighted: sum of rates / sum of interval hours x 8760), mapped to a target exposure
clip(apr / 0.20, -1, 1) rounded to quarters, and 0 while |apr| < 3 %.

    python data/examples/strategies/make_targets.py   (needs polars; reads ../shared/data)
"""

from datetime import timedelta
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / ".." / "shared" / "data" / "freqtrade-binance-1h" / "binance" / "futures"


def targets(coin: str) -> pl.DataFrame:
    funding = (
        pl.read_ipc(DATA / f"{coin}_USDT_USDT-1h-funding_rate.feather")
        .select(pl.col("date").alias("settle"), pl.col("open").alias("rate"))
        .sort("settle")
        .with_columns((pl.col("settle").diff().dt.total_minutes() / 60).fill_null(8.0).alias("hours"))
    )
    first = funding["settle"].min()
    last = funding["settle"].max()
    # The first day with a whole week of settlements behind it.
    start = first.replace(hour=0, minute=0, second=0) + timedelta(days=8)
    days = pl.datetime_range(start, last, "1d", time_zone="UTC", eager=True).alias("time").to_frame()
    rows = []
    settle = funding["settle"].to_list()
    rate = funding["rate"].to_list()
    hours = funding["hours"].to_list()
    week = timedelta(days=7)
    for day in days["time"].to_list():
        # Settlements in (day - 7 d, day]: known at the day's 00:00 (a settlement at 00:00 included).
        inside = [k for k, s in enumerate(settle) if day - week < s <= day]
        apr = sum(rate[k] for k in inside) / sum(hours[k] for k in inside) * 8760.0
        target = 0.0 if abs(apr) < 0.03 else max(-1.0, min(1.0, round(apr / 0.20 * 4) / 4))
        rows.append((day, target))
    return pl.DataFrame({"time": [r[0] for r in rows], "target": [r[1] for r in rows]})


for coin in ["BTC", "ETH"]:
    out = HERE / f"{coin.lower()}-target.csv"
    frame = targets(coin).with_columns(pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    frame.write_csv(out)
    print(f"{out.name}: {frame.height} days, target mean {frame['target'].mean():+.3f}, reverse days {(frame['target'] < 0).sum()}")
