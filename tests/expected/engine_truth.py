#!/usr/bin/env python3
"""Independent expected values for the basis engine's liquidation and funding tests.

Every number is derived from venue rules in shared/reference/MARGIN.md and from the
scenario definitions, using exact rational arithmetic (fractions.Fraction). No code or output
from the engine is used. Values are printed with 10 significant digits.

Run:  python3 tests/expected/engine_truth.py
"""
from fractions import Fraction as F


def p(label, x):
    """Print a label and a value to 10 significant digits (exact Fraction -> float only here)."""
    if isinstance(x, (F, int, float)):
        print(f"{label:<58s} {float(x):.10g}")
    else:
        print(f"{label:<58s} {x}")


def section(title):
    print()
    print("== " + title)


def short_lp(wb, qabs, ep, mmr, cum=F(0)):
    # MARGIN.md §1.2, isolated (WB' = WB, TMM1 = UPNL1 = 0):
    #   short: LP = (Q·EP + WB' + cum) / (Q·(1 + MMR)),  Q = |size|
    return (qabs * ep + wb + cum) / (qabs * (1 + mmr))


def long_lp(wb, qabs, ep, mmr, cum=F(0)):
    # MARGIN.md §1.2: long: LP = (Q·EP − WB' − cum) / (Q·(1 − MMR))
    return (qabs * ep - wb - cum) / (qabs * (1 - mmr))


def margin(wb, q_signed, ep, price):
    # Isolated position margin balance = WB + UPNL = WB + Q·(P − EP)  (MARGIN.md §1.1, margin balance)
    return wb + q_signed * (price - ep)


def binance_close(wb, q_signed, ep, fill, fee_rate):
    """Binance rule as modelled in the brief (MARGIN.md §1.3/§1.4, Appendix A item 1):
    close at `fill`; clearance fee = fee_rate × |Q| × fill, taken from the remaining margin and
    capped at what is left (never below 0); trader keeps the rest; a negative margin is a shortfall
    covered by the insurance fund and the trader ends at 0.
    liquidation component = −fee + shortfall."""
    m = margin(wb, q_signed, ep, fill)
    fee_nominal = fee_rate * abs(q_signed) * fill
    fee = min(fee_nominal, max(m, F(0)))
    shortfall = max(-m, F(0))
    trader_after = max(m - fee, F(0))
    price_pnl = q_signed * (fill - ep)
    liq = -fee + shortfall
    return m, fee_nominal, fee, shortfall, trader_after, price_pnl, liq


# --------------------------------------------------------------------------------------------
# Common position for A, B, C: isolated short 1 BTC at 100,000, wallet margin 50,000 (2x).
Q = F(-1)
QA = abs(Q)
EP = F(100000)
WB = F(50000)

# ============================================================================================
section("A. Binance USDⓈ-M isolated short, MMR 0.5 %, cum 0 (MARGIN.md §1.2-§1.4)")
MMR_A = F(5, 1000)
LP_A = short_lp(WB, QA, EP, MMR_A)                 # = 150,000 / 1.005
p("A.LP", LP_A)
p("A.margin_at_LP  (WB + Q·(LP−EP))", margin(WB, Q, EP, LP_A))
p("A.MM_at_LP      (MMR·|Q|·LP − cum)", MMR_A * QA * LP_A)   # equals margin at LP by construction
p("A.bar_high 160000 >= LP (liquidates)", "yes" if F(160000) >= LP_A else "no")
for tag, fr in (("0.0125", F(125, 10000)), ("0.003", F(3, 1000))):
    m, fee_nom, fee, sf, after, ppnl, liq = binance_close(WB, Q, EP, LP_A, fr)
    p(f"A[fee {tag}].fee_nominal (rate·|Q|·fill)", fee_nom)
    p(f"A[fee {tag}].fee_charged (capped at margin)", fee)
    p(f"A[fee {tag}].shortfall", sf)
    p(f"A[fee {tag}].trader_remaining_margin", after)
    p(f"A[fee {tag}].liquidation_component (−fee+shortfall)", liq)
    p(f"A[fee {tag}].perp_price_pnl (Q·(LP−EP))", ppnl)
    p(f"A[fee {tag}].total_pnl (price + liq)", ppnl + liq)
    p(f"A[fee {tag}].check: WB + total_pnl == remaining", WB + ppnl + liq)
# Aside: with the historic BTCUSDT 50k-250k tier (MMR 0.5 %, cum 50, §1.2 gist row) LP would be:
p("A.aside LP with cum=50 (historic tier, not the scenario)", short_lp(WB, QA, EP, MMR_A, F(50)))

# ============================================================================================
section("A2. Two steps, fill = max(LP, previous mark) (MARGIN.md §1.2-§1.4)")
S1 = F(140000)
p("A2.LP (same as A)", LP_A)
p("A2.step1 close 140000 < LP (no liquidation)", "yes" if S1 < LP_A else "NO -> use 130000")
p("A2.step1 margin (WB + Q·(140000−EP))", margin(WB, Q, EP, S1))
p("A2.step1 MM (MMR·|Q|·140000)", MMR_A * QA * S1)
p("A2.step1 margin ratio MM/margin (Binance UI, §1.1)", MMR_A * QA * S1 / margin(WB, Q, EP, S1))
p("A2.step1 perp price pnl (Q·(140000−EP))", Q * (S1 - EP))
FILL_A2 = max(LP_A, S1)
p("A2.step2 bar high 200000 >= LP (liquidates)", "yes" if F(200000) >= LP_A else "no")
p("A2.step2 fill = max(LP, prev mark 140000)", FILL_A2)
p("A2.step2 perp price pnl this step (Q·(fill−140000))", Q * (FILL_A2 - S1))
for tag, fr in (("0.0125", F(125, 10000)), ("0.003", F(3, 1000))):
    m, fee_nom, fee, sf, after, ppnl, liq = binance_close(WB, Q, EP, FILL_A2, fr)
    p(f"A2[fee {tag}].margin_at_fill", m)
    p(f"A2[fee {tag}].fee_charged", fee)
    p(f"A2[fee {tag}].trader_remaining_margin", after)
    p(f"A2[fee {tag}].liquidation_component", liq)
    p(f"A2[fee {tag}].cumulative perp price pnl (Q·(fill−EP))", ppnl)

# A3 (hypothetical, not reachable with fill = max(LP, prev mark) when prev mark < LP):
# the shortfall path, fill at 160,000 (e.g. a fill-at-open model with open 160,000).
section("A3. Hypothetical shortfall path: Binance close filled at 160,000 (§1.3 insurance fund)")
for tag, fr in (("0.0125", F(125, 10000)), ("0.003", F(3, 1000))):
    m, fee_nom, fee, sf, after, ppnl, liq = binance_close(WB, Q, EP, F(160000), fr)
    p(f"A3[fee {tag}].margin_at_fill", m)
    p(f"A3[fee {tag}].fee_charged (nothing left)", fee)
    p(f"A3[fee {tag}].shortfall (insurance fund pays)", sf)
    p(f"A3[fee {tag}].trader_remaining_margin", after)
    p(f"A3[fee {tag}].perp_price_pnl", ppnl)
    p(f"A3[fee {tag}].liquidation_component (−fee+shortfall)", liq)
    p(f"A3[fee {tag}].total_pnl (= −WB)", ppnl + liq)

# ============================================================================================
section("B. Bybit / BitMEX / Gate: close at bankruptcy price (MARGIN.md §3, Appendix A item 3)")
BP_B = EP + WB / QA          # short: margin = WB − |Q|·(P − EP) = 0  ->  P = EP + WB/|Q|
m_B = margin(WB, Q, EP, LP_A)
p("B.LP (same formula as A)", LP_A)
p("B.BP (EP + WB/|Q|)", BP_B)
p("B.margin_at_LP", m_B)
p("B.trader_equity_after", F(0))
p("B.forfeited (= margin at LP, to insurance fund)", m_B)
p("B.perp_price_pnl to LP (Q·(LP−EP))", Q * (LP_A - EP))
p("B.liquidation_component (−margin at LP)", -m_B)
p("B.total_pnl (= −WB)", Q * (LP_A - EP) - m_B)
p("B.equivalent: perp price pnl to BP (Q·(BP−EP))", Q * (BP_B - EP))

# ============================================================================================
section("C. Hyperliquid, BTC 40x -> MMR = 1/(2·40) = 1.25 % (MARGIN.md §5)")
MMR_C = F(1, 2 * 40)
LP_C = short_lp(WB, QA, EP, MMR_C)
# Cross-check with HL's own form (§5): liq = price − side·margin_available/size/(1 − l·side),
# evaluated at price = EP, margin_available = isolated_margin − MM(EP), side = −1, l = MMR.
side = F(-1)
liq_hl = EP - side * (WB - MMR_C * QA * EP) / QA / (1 - MMR_C * side)
p("C.MMR", MMR_C)
p("C.LP (Binance-form short formula)", LP_C)
p("C.LP (HL-form cross-check)", liq_hl)
m_C = margin(WB, Q, EP, LP_C)
p("C1.fill (bar crosses LP continuously)", LP_C)
p("C1.margin_at_LP", m_C)
p("C1.MM_at_LP (MMR·|Q|·LP)", MMR_C * QA * LP_C)
p("C1.trader_keeps (no clearance fee)", m_C)
p("C1.perp_price_pnl (Q·(LP−EP))", Q * (LP_C - EP))
p("C1.liquidation_component", F(0))
# Backstop (§5 step 2): equity < 2/3·MM.  Short: WB − |Q|·(P − EP) = (2/3)·MMR·|Q|·P
#   -> P_backstop = (WB + |Q|·EP) / (|Q|·(1 + (2/3)·MMR))
BS_C = (WB + QA * EP) / (QA * (1 + F(2, 3) * MMR_C))
p("C2.backstop_price (equity = 2/3·MM)", BS_C)
p("C2.equity_at_backstop", margin(WB, Q, EP, BS_C))
p("C2.two_thirds_MM_at_backstop", F(2, 3) * MMR_C * QA * BS_C)
p("C2.rule", "short: fill >= backstop_price -> trader forfeits all margin")
p("C2.fill=max(LP, prev mark) with prev mark < LP", "fill = LP < backstop: never reached")
# Illustrations of the rule at fills beyond the backstop price:
for fill in (F(149000), F(150000), F(155000)):
    mm = margin(WB, Q, EP, fill)
    p(f"C2[fill {int(fill)}].margin_at_fill", mm)
    p(f"C2[fill {int(fill)}].trader_after (backstop)", F(0))
    p(f"C2[fill {int(fill)}].liquidation_component (−margin)", -mm)
    p(f"C2[fill {int(fill)}].perp_price_pnl", Q * (fill - EP))

# ============================================================================================
section("D. Binance Cross Margin 3x (classic), reverse carry short spot (MARGIN.md §4)")


def spot_margin(tag, A, q, S0):
    # ML = total asset value / (liabilities + interest); interest ignored.
    p(f"D[{tag}].A (cash assets)", A)
    p(f"D[{tag}].q (borrowed BTC)", q)
    p(f"D[{tag}].liabilities at S0", q * S0)
    p(f"D[{tag}].initial ML = A/(q·S0)", A / (q * S0))
    P_liq = A / (F(11, 10) * q)            # ML <= 1.1  <=>  P >= A/(1.1·q)
    P_call = A / (F(13, 10) * q)           # ML <= 1.3  <=>  P >= A/(1.3·q)
    p(f"D[{tag}].P_liq = A/(1.1·q)", P_liq)
    p(f"D[{tag}].P_margin_call = A/(1.3·q)", P_call)
    fee_rate = F(2, 100)
    for gtag, fill in (("at P_liq", P_liq), ("gap 1.05·P_liq", F(105, 100) * P_liq)):
        cost = q * fill
        fee = fee_rate * cost
        after = A - cost - fee
        p(f"D[{tag}|{gtag}].fill", fill)
        p(f"D[{tag}|{gtag}].buyback cost q·fill", cost)
        p(f"D[{tag}|{gtag}].fee 2%·q·fill", fee)
        p(f"D[{tag}|{gtag}].account after A − cost − fee", after)
        p(f"D[{tag}|{gtag}].shortfall", max(-after, F(0)))
        p(f"D[{tag}|{gtag}].short spot price pnl −q·(fill−S0)", -q * (fill - S0))
    p(f"D[{tag}].break-even fill (after = 0): A/(1.02·q)", A / (F(102, 100) * q))
    p(f"D[{tag}].break-even fill / P_liq", A / (F(102, 100) * q) / P_liq)
    # Variant (§4 'Early stop'): liquidation stops once ML recovers above 1.5 (Cross 3x).
    # Buy back x at P_liq with 2 % fee: (A − 1.02·x·P)/((q − x)·P) = 1.5, A = 1.1·q·P
    #   -> x = 0.4·q/0.48 = (5/6)·q
    x = (F(15, 10) * q * P_liq - A) / (P_liq * (F(15, 10) - F(102, 100)))
    p(f"D[{tag}].early-stop variant: x bought back", x)
    p(f"D[{tag}].early-stop variant: x/q", x / q)
    p(f"D[{tag}].early-stop variant: fee 2%·x·P_liq", F(2, 100) * x * P_liq)
    p(f"D[{tag}].early-stop variant: equity after (A−q·P−fee)", A - q * P_liq - F(2, 100) * x * P_liq)
    p(f"D[{tag}].early-stop variant: ML after",
      (A - F(102, 100) * x * P_liq) / ((q - x) * P_liq))


S0 = F(100000)
# Exact construction: capital 100,000; perp margin N/2, short-sale proceeds N, N = 200,000/3.
spot_margin("exact", F(100000) - F(100000, 3) + F(200000, 3), F(2, 3), S0)
# The brief's literal decimals (A = 133,333.33, q = 0.6666667):
spot_margin("literal", F("133333.33"), F("0.6666667"), S0)

section("D2. Reverse carry long perp leg, Binance isolated, MMR 0.4 %, cum 0 (MARGIN.md §1.2)")
for tag, q, wb in (("exact", F(2, 3), F(100000, 3)), ("literal", F("0.6666667"), F("33333.33"))):
    lp = long_lp(wb, q, F(100000), F(4, 1000))
    p(f"D2[{tag}].LP_long = (Q·EP − WB)/(Q·(1 − MMR))", lp)
    p(f"D2[{tag}].notional at LP (tier check, <50k -> 0.4 %)", q * lp)
    p(f"D2[{tag}].margin at LP = MM at LP", wb + q * (lp - 100000))

# ============================================================================================
section("E. Trailing funding signal with mixed intervals")
r8, h8 = F(1, 10000), F(8)
r1, h1 = F(3, 1000), F(1)


def apr_own(r, h):
    # annualise each rate by its own interval: rate × 24/h × 365
    return r * 24 / h * 365


setts = [(r8, h8)] * 8 + [(r1, h1)]
cw = sum(apr_own(r, h) for r, h in setts) / len(setts)
tw = sum(r for r, _ in setts) / sum(h for _, h in setts) * 8760
p("E.8h rate annualised (0.0001·3·365)", apr_own(r8, h8))
p("E.1h rate annualised (0.003·24·365)", apr_own(r1, h1))
p("E.count-weighted mean APR (9 settlements)", cw)
p("E.time-weighted APR Σrate/Σhours·8760 (65 h)", tw)
# Lookback 24 h at t: settlements at t−1h (1 h), t−9h, t−17h, t−25h, ... (8 h). Window (t−24h, t].
times = [(-1, r1, h1)] + [(-(9 + 8 * k), r8, h8) for k in range(8)]
inwin = [(dt, r, h) for dt, r, h in times if -24 < dt <= 0]
p("E.lookback24 settlements in (t−24h, t] (hours rel. t)", ", ".join(f"t{dt:+d}h" for dt, _, _ in inwin))
p("E.lookback24 count", len(inwin))
p("E.lookback24 Σrate", sum(r for _, r, _ in inwin))
p("E.lookback24 Σhours (own intervals: 1+8+8)", sum(h for _, _, h in inwin))
p("E.lookback24 time-weighted APR Σrate/Σhours·8760", sum(r for _, r, _ in inwin) / sum(h for _, _, h in inwin) * 8760)
p("E.lookback24 count-weighted mean APR", sum(apr_own(r, h) for _, r, h in inwin) / len(inwin))
p("E.lookback24 alt: Σrate/lookback(24h)·8760", sum(r for _, r, _ in inwin) / 24 * 8760)
# Alt: clip each settlement's covered interval (dt−h, dt] to the window; t−17h covers (t−25, t−17] -> 7/8.
clip_r = F(0)
clip_h = F(0)
for dt, r, h in inwin:
    lo, hi = max(F(dt) - h, F(-24)), F(dt)
    frac = (hi - lo) / h
    clip_r += r * frac
    clip_h += hi - lo
p("E.lookback24 alt: coverage-clipped Σrate", clip_r)
p("E.lookback24 alt: coverage-clipped Σhours", clip_h)
p("E.lookback24 alt: coverage-clipped APR", clip_r / clip_h * 8760)

# ============================================================================================
section("F. Funding APR while held vs over the window")
n, rate, sidef = 548, F(1, 10000), F(1)
window_h, held_h = F(8760), F(4380)
total = n * sidef * rate
p("F.Σ side×rate (548 × 0.0001)", total)
p("F.years held (4380/8760)", held_h / 8760)
p("F.funding_apr_while_held = Σ/years_held", total / (held_h / 8760))
p("F.funding_apr_over_window = Σ/window_years", total / (window_h / 8760))
p("F.note: 548 × 8 h = hours of settlements", n * 8)
p("F.alt: Σ / (548·8 h / 8760)", total / (F(n * 8) / 8760))
p("F.settlements at 0,8,...,4376 h inside [0, 4380 h]", len(range(0, 4380 + 1, 8)))

# ============================================================================================
section("D3. Binance Cross Margin 3x: the liquidation stops at margin level 1.5 (MARGIN.md §4)")
# Scenario D exact (A = 400,000/3, q = 2/3, S0 = 100,000). The spot bar reaches past P_liq and
# closes at 180,000; x units are bought back at P_liq with the 2 % fee on x·P_liq only.
A, q, S0, S1 = F(400000, 3), F(2, 3), F(100000), F(180000)
P_liq = A / (F(11, 10) * q)
x = (F(15, 10) * q * P_liq - A) / (P_liq * (F(15, 10) - 1 - F(2, 100)))
p("D3.P_liq", P_liq)
p("D3.x bought back", x)
p("D3.loan left q − x", q - x)
p("D3.fee 2%·x·P_liq", F(2, 100) * x * P_liq)
p("D3.cash after A − 1.02·x·P_liq", A - F(102, 100) * x * P_liq)
p("D3.ML after at P_liq", (A - F(102, 100) * x * P_liq) / ((q - x) * P_liq))
p("D3.spot pnl to the close −x(P_liq−S0) − (q−x)(S1−S0)", -x * (P_liq - S0) - (q - x) * (S1 - S0))
p("D3.perp pnl q(S1−S0)", q * (S1 - S0))
p("D3.equity at the close 100,000 − x(P_liq−S1) − fee", F(100000) - x * (P_liq - S1) - F(2, 100) * x * P_liq)

# ============================================================================================
section("G. Liquidation fill slippage: Hyperliquid's backstop becomes reachable (MARGIN.md §5)")
# Scenario C (short 1 BTC at 100,000, WB 50,000, MMR 1.25 %): LP = 150,000/1.0125. The fill
# slips s past LP (the bar's high, 200,000, does not bind). Margin at the fill vs 2/3 of MM there.
LP = F(150000) / (1 + F(125, 10000))
for bps in (F(50), F(20)):
    fill = LP * (1 + bps / 10000)
    m_fill = 50000 - (fill - 100000)
    mm_fill = F(125, 10000) * fill
    taken = m_fill if m_fill < F(2, 3) * mm_fill else F(0)
    p(f"G[{int(bps)} bp].fill", fill)
    p(f"G[{int(bps)} bp].slippage loss (fill − LP)", fill - LP)
    p(f"G[{int(bps)} bp].margin at fill", m_fill)
    p(f"G[{int(bps)} bp].2/3 MM at fill", F(2, 3) * mm_fill)
    p(f"G[{int(bps)} bp].backstop takes", taken)
    p(f"G[{int(bps)} bp].liquidation component −(fill−LP) − taken", -(fill - LP) - taken)
    p(f"G[{int(bps)} bp].final equity (spot sold at 190,000)", 190000 + m_fill - taken)

# ============================================================================================
section("H. Gate: the taker fee inside the liquidation and bankruptcy prices (MARGIN.md §3.3)")
# Isolated short 1 BTC at 100,000, WB 50,000, MMR 0.5 %, taker 0.05 %.
# LP = (EP + margin/size)/(1 + MMR + taker); bankruptcy: margin − size·P·taker = 0 at P.
mmr, taker = F(5, 1000), F(5, 10000)
LP = (F(100000) + F(50000)) / (1 + mmr + taker)
m_lp = 50000 - (LP - 100000)
BP = (m_lp + LP) / (1 + taker)
p("H.LP", LP)
p("H.margin at LP", m_lp)
p("H.BP = (margin + LP)/(1 + taker)", BP)
p("H.BP check: (WB + EP)/(1 + taker)", F(150000) / (1 + taker))

# ============================================================================================
section("I. One Binance cross account, two short perps, a tier change at the breach, a capped fee")
# Two long carries at 3x on 60,000 each: 0.45 BTC-like units short at 100,000, 15,000 margin each
# (cash 0). Tiers (BTCUSDT, basis.toml): < 50k: 0.4 %, cum 0; 50k-250k: 0.5 %, cum 50.
# Both series rally 100,000 -> 140,000 in one bar (high 140,000). Account breaches when
#   30,000 − 0.9 (P − 100,000) = MM(0.45 P)·2.
qs, m, S0 = F(45, 100), F(15000), F(100000)
def mm(notional):
    return notional * F(4, 1000) if notional < 50000 else notional * F(5, 1000) - 50
# Tier 1 at the breach (0.45 P ≥ 50,000): 120,000 − 0.9 P = 0.0045 P − 100
P = F(120100) / (F(9, 10) + F(45, 10000))
p("I.breach price P", P)
p("I.notional 0.45 P (≥ 50,000: tier 1, entry tier 0)", qs * P)
p("I.check balance − MM at P", 2 * m - 2 * qs * (P - S0) - 2 * mm(qs * P))
p("I.theta along 100,000 -> 140,000", (P - S0) / 40000)
left = 2 * mm(qs * P)
fee = F(125, 10000) * 2 * qs * P
p("I.wallet left = MM", left)
p("I.fee 1.25 % of 0.9 P (uncapped)", fee)
p("I.fee taken = min(fee, left)", min(fee, left))
p("I.each pair's share", min(fee, left) / 2)
p("I.book equity after (spot sold at 140,000)", 2 * qs * 140000)
# At step 0: the price of A's asset at which the account breaches (B at 100,000), tier 1 at it:
#   30,000 − 0.45 (P_A − 100,000) = (0.00225 P_A − 50) + 0.004·45,000
P_A = (2 * m + qs * S0 + 50 - F(4, 1000) * qs * S0) / (qs + F(5, 1000) * qs)
p("I.step0 P_A (own-asset breach)", P_A)
p("I.step0 notional at P_A (tier 1)", qs * P_A)
p("I.step0 A's distance P_A/100,000 − 1", P_A / S0 - 1)
p("I.step0 account distance (both rise by x)", P / S0 - 1)

# ============================================================================================
section("J. Cross account, hand book (2x, MMR 1 %, no fees): pairs' own-asset breach prices")
# Two long carries on 1,000 at 2x: q = 20/3 short at 100, m = 1,000/3 each; per unit of q the
# wallet is 2m/q = 100.
q = F(20, 3)
# Step 0 (A 100, B 100): 100 − (P_A − 100) = 0.01 (P_A + 100)  ->  P_A = 199/1.01
p("J.step0 P_A", F(199) / F(101, 100))
p("J.step0 distance", F(199) / F(101, 100) / 100 - 1)
# Account: both rise by x: 100 − 200 x = 0.01·200 (1 + x)
p("J.step0 account distance", F(98) / F(202))
# Step 1 (A 140, B 80): A's: 100 − (P_A − 100) + 20 = 0.01 (P_A + 80) -> P_A = 219.2/1.01
p("J.step1 P_A", F(2192, 10) / F(101, 100))
p("J.step1 A distance", F(2192, 10) / F(101, 100) / 140 - 1)
# B's: 100 − 40 − (P_B − 100) = 0.01 (140 + P_B) -> P_B = 158.6/1.01
p("J.step1 P_B", F(1586, 10) / F(101, 100))
p("J.step1 B distance", F(1586, 10) / F(101, 100) / 80 - 1)
# Account: 80 − 220 x = 2.2 (1 + x)
p("J.step1 account distance", F(778, 10) / F(2222, 10))
# Step 3 (A 200, B 80): account 20 − 280 x = 2.8 (1 + x) -> x = 17.2/282.8 < 10 %: top-up.
p("J.step3 account distance", F(172, 10) / F(2828, 10))
# A needs IM − m = q·200/2 − (m − q·100) = 1,000; B has m + q·20 − q·80/2 = 200 to spare.
p("J.step3 A need", q * 100 - (F(1000, 3) - q * 100))
p("J.step3 B spare", F(1000, 3) + q * 20 - q * 40)
# After 200 pooled, A sells x spot: 800 = x (200 + 200/2)
p("J.step3 A spot sold", F(800) / 300)

# ============================================================================================
section("K. A long carry beside a reverse carry in one cross account: the worst corner")
# Both 1,000 at 2x: |q| = 20/3, m = 1,000/3; A short perp, B long perp, MMR 1 %.
# Bar 1: A 100 -> 150 (high 150), B 100 -> 50 (low 50). Per unit of q:
#   all highs (A 150, B 100): 100 − 50 + 0 = 50 vs 2.5;  all lows (A 100, B 50): 50 vs 1.5;
#   corner (A 150, B 50): 0 vs 2 -> breach on the way: 100 − 100 θ = 0.01 (100 + 50θ + 100 − 50θ)
theta = F(98, 100)
p("K.theta", theta)
p("K.A fill 100 + 50θ", 100 + 50 * theta)
p("K.B fill 100 − 50θ", 100 - 50 * theta)
p("K.wallet left = MM = 0.01·q·200", F(1, 100) * q * 200)

# ============================================================================================
section("L. Bybit isolated USDT perp: maintenance on the entry value (bybit help, USDT isolated)")
# Short 1 BTC at 100,000 at 2x: IM = 50,000, MMR 0.5 %, MM = 1 × 100,000 × 0.5 % = 500 (fixed).
# LP = EP + (IM − MM)/qty = EP × (1 + IMR − MMR).
EP, IM, MMR = F(100000), F(50000), F(5, 1000)
LP_bybit = EP + (IM - MMR * EP) / 1
p("L.LP (Bybit, maintenance on entry)", LP_bybit)
p("L.LP = EP(1 + 1/2 − MMR)", EP * (1 + F(1, 2) - MMR))
p("L.LP if maintenance at the mark (Binance's form)", (IM + EP) / (1 + MMR))
p("L.difference", LP_bybit - (IM + EP) / (1 + MMR))

# ============================================================================================
section("M. A 50 M long carry in a portfolio account: flat vs tiered collateral (MARGIN.md §2.3, §3.1)")
# 50,000,000 at 1x with the perp's margin posted in cash: q = 50 M / (100,000 + 100,000) = 250,
# margin 25 M, cash 0. Short perp and long spot in one portfolio account, liquidated at
# balance = 1.05 × maintenance (MMR 0.4 %). Balance at P: 25 M − 250 (P − 100,000) + coll(P).
q, m, P0, th, mmr = F(250), F(25000000), F(100000), F(105, 100), F(4, 1000)
# Flat 0.95: coll = 0.95 × 250 × P.
P_flat = (m + q * P0) / (q - F(95, 100) * q + th * mmr * q)
p("M.flat 0.95: breach price", P_flat)
p("M.flat 0.95: rally survived (× P0)", P_flat / P0)
# Bybit's example tiers by coin quantity: 0-10: 0.98, 10-20: 0.95, 20-30: 0.90, 30-40: 0.85,
# 40-50: 0.80, above 50: 0. 250 BTC count as 9.8 + 9.5 + 9 + 8.5 + 8 = 44.8 BTC.
counted = F(98, 10) + F(95, 10) + 9 + F(85, 10) + 8
p("M.tiered: BTC counted of 250", counted)
P_tier = (m + q * P0) / (q - counted + th * mmr * q)
p("M.tiered: breach price", P_tier)
p("M.tiered: rally survived (× P0)", P_tier / P0)
p("M.tiered: θ on a bar 100,000 -> 300,000", (P_tier - P0) / 200000)

# ============================================================================================
section("N. Section I with the fills slipping 10 bp past the breach")
P = F(120100) / (F(9, 10) + F(45, 10000))
fill = P * (1 + F(10, 10000))
left = 2 * (F(5, 1000) * F(45, 100) * P - 50) - F(9, 10) * (fill - P)
p("N.fill", fill)
p("N.slippage loss, both pairs 0.9 (fill − P)", F(9, 10) * (fill - P))
p("N.wallet left after the slip", left)
p("N.fee taken = min(1.25 % of 0.9·fill, left)", min(F(125, 10000) * F(9, 10) * fill, left))
p("N.book equity after (spot sold at 140,000)", 2 * F(45, 100) * 140000)
