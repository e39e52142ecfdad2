"""The same minimal carry as `cargo bench --bench whole_run`, by hand with polars and numpy.

Always-on long carry at 1x: buy spot, short the same quantity of perp at the first step with
its margin (notional / leverage) posted, pay taker fees and slippage, mark both legs to every
close, settle funding at the perp price of the step each settlement falls in (the interval
(t[i-1], t[i]]), close at the last step. Prints final equity, Sharpe (daily, rf 0) and max
drawdown, and writes nothing: a lower bound for a backtester that also writes a ledger.

    python carry_numpy.py <dir with spot.parquet, perp.parquet, funding.parquet>
"""
import sys
import numpy as np
import polars as pl

FEE, SLIP, CAPITAL, LEVERAGE = 0.0005, 0.0001, 100_000.0, 1.0


def main(folder: str) -> None:
    spot = pl.read_parquet(f"{folder}/spot.parquet").select("ts", pl.col("close").alias("spot"))
    perp = pl.read_parquet(f"{folder}/perp.parquet").select("ts", pl.col("close").alias("perp"), pl.col("high").alias("perp_high"))
    funding = pl.read_parquet(f"{folder}/funding.parquet").select("ts", "rate").sort("ts")
    # Steps are the perp's closes; the spot close known at each (as of, backward).
    bars = perp.sort("ts").join_asof(spot.sort("ts"), on="ts", strategy="backward").drop_nulls()
    ts = bars["ts"].to_numpy()
    s = bars["spot"].to_numpy()
    p = bars["perp"].to_numpy()
    # Each settlement is paid at the first step at or after it, on the perp price there.
    step_of = np.searchsorted(ts, funding["ts"].to_numpy(), side="left")
    inside = (step_of > 0) & (step_of < len(ts))
    paid = np.zeros(len(ts))
    np.add.at(paid, step_of[inside], funding["rate"].to_numpy()[inside])
    # Size: spot plus margin (and costs) use the capital.
    per_unit = s[0] * (1 + SLIP) * (1 + FEE) + p[0] / LEVERAGE + p[0] * (FEE + SLIP)
    q = CAPITAL / per_unit
    entry_cost = q * s[0] * (1 + SLIP) * (1 + FEE) + q * p[0] * (FEE + SLIP)
    cash = CAPITAL - entry_cost
    spot_pnl = q * (s - s[0])
    perp_pnl = -q * (p - p[0])
    funding_pnl = np.cumsum(q * paid * p)
    equity = cash + q * s[0] + spot_pnl + perp_pnl + funding_pnl
    exit_cost = q * s[-1] * (FEE + SLIP) + q * p[-1] * (FEE + SLIP)
    equity[-1] -= exit_cost
    # Daily closes, returns, Sharpe and drawdown.
    day = ts.astype("datetime64[ms]").astype("datetime64[D]") if ts.dtype.kind == "M" else (ts // 86_400_000)
    last_of_day = np.r_[np.nonzero(day[1:] != day[:-1])[0], len(day) - 1]
    closes = equity[last_of_day]
    returns = np.diff(np.r_[CAPITAL, closes]) / np.r_[CAPITAL, closes][:-1]
    sharpe = returns.mean() / returns.std(ddof=1) * np.sqrt(365) if len(returns) > 1 else 0.0
    peak = np.maximum.accumulate(np.r_[CAPITAL, equity])
    drawdown = (np.r_[CAPITAL, equity] / peak - 1).min()
    print(f"steps {len(ts)} final_equity {equity[-1]:.2f} sharpe {sharpe:.3f} max_drawdown {drawdown:.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
