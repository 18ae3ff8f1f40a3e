"""Margin stress: the estimated liquidation map (risk-models.md s6). Pure module (numpy + numba).

The map is an ESTIMATE, built the way Coinglass, Hyblock and Kingfisher build their heatmaps: nobody
outside the exchange sees positions, so positions are inferred from flow and placed at the
liquidation price they would have. Read it as "where leveraged notional probably sits", not a count.

Liquidation price, one-way isolated margin, Binance USD-M form (risk-models.md s6; Binance "How to
calculate liquidation price of USDS-M futures", isolated: wallet balance = N/L, ``cum`` = the
maintenance amount of the notional tier):

* long ``LP = EP*(1 - 1/L - cum_k/N)/(1 - MMR_k)``, short ``LP = EP*(1 + 1/L + cum_k/N)/(1 + MMR_k)``;
  tier ``k`` is the last one whose floor is <= the position notional ``N``;
  ``cum_0 = 0``, ``cum_k = cum_{k-1} + floor_k*(MMR_k - MMR_{k-1})``. With
  ``use_maintenance_amount=False`` ``cum`` is 0 and this is the doc's ``EP*(1 -/+ 1/L)/(1 -/+ MMR)``.
* the leverage is capped at the tier's maximum (the exchange refuses more), so LP stays on the far
  side of EP. Defaults: BTCUSDT tiers seen in 2021 (floors 0/50k/250k/1M USD, MMR 0.4/0.5/1/2.5%,
  max leverage 125/100/50/20x, cum 0/50/1300/16300 USD).
* the position notional ``N`` that picks the tier: a trade deposit is one taker order, taken as one
  position of the trade's notional; an open-interest deposit aggregates many positions of unknown
  size and uses ``oi_position_usd`` (default 10k USD, first tier).

Grid: per pair, ``n_bins`` bins of ``1/bins_per_unit`` in natural log-price (``bins_per_unit =
100*bins_per_pct``; "1%" means 0.01 in ln P everywhere here). Bin ``b`` holds levels with
``floor(ln(LP)*bins_per_unit) = anchor_k + b`` (an integer lattice, so re-centring shifts whole bins
and never re-bins). The anchor puts the price in the middle bin ``c = n_bins//2``; once the price bin
is more than ``recentre_bins`` from ``c`` the grid shifts to centre it again, and mass shifted off
either edge is counted as dropped.

Level bins are exactly ``floor(ln(LP)*bins_per_unit)`` of the formula above, computed cheaply: in
the first notional tier (``cum_0 = 0``) ``LP = EP*r_j`` with ``r_j`` fixed per side and leverage
bucket, so a deposit takes ``u = ln(EP)*bins_per_unit + ln(r_j)*bins_per_unit`` (``level_offsets``,
once per kernel call) and ``floor(u)``: one log per event instead of a division and a log per
bucket. The two roundings differ by a few 1e-16 relative, which can move a level across a bin edge
(measured: 0.6-7% of entry prices placed within 40 ulps of an edge); so wherever ``u`` lies within
``LEVEL_GUARD*(|ln EP| + max_j |ln r_j| + 1)*bins_per_unit`` of an integer (1e-12 relative, ~2,500
times the largest disagreement measured), and for higher tiers and ``|ln LP| >= 600``, the formula
itself decides (``level_bin``). The bins are the formula's, bit for bit, with no rule of its own.

Deposits (risk-models.md s6): without an open-interest feed, taker-buy notional opens longs and
taker-sell notional opens shorts at the trade price (an assumption: part of taker flow closes
positions or is not leveraged). Once a pair has sent open interest (``liqmap_oi``), trades stop
depositing for it and only OI increases ``dOI > 0`` (USD) are deposited at the current price: the long
share is ``B/(B + S)`` (0.5 when ``B + S`` <= 1e-200 USD), ``B``/``S`` the taker buy/sell notional decayed with
``imbalance_tau_s``: the aggressors are taken as the side that opened the new contracts, their
passive counterparts as unleveraged market makers, so ``dOI`` (not ``2*dOI``) is deposited. OI
decreases deposit nothing (decay models closing). Each deposit of ``q`` puts ``q*w_j`` at the
liquidation price of leverage bucket ``L_j``.

Removal: a long level is liquidated when a trade prints in or below its bin (``kp <= kb``), a short
level when a trade prints in or above its bin (``kp >= kb``); a deposit whose level is already
crossed that way is liquidated at once. All mass decays with ``half_life_s``: stored bins are
``mass/scale[p]`` with ``scale`` decaying, so decay is O(1) per event (bins are folded when ``scale``
< 1e-100); ``exp(-x)`` and ``1 - exp(-x)`` come from one short polynomial while ``x < 1e-3`` (gaps
under ~62 s with the default half-life; ``decay_factors``, within 1 ulp). Per pair and side the
accumulators ``acc[p, s, :]`` = deposited, held, liquidated, decayed, dropped satisfy
``deposited = held + liquidated + decayed + dropped`` up to rounding. Per event cost is O(1) plus
the bins the price crossed (and O(n_bins) on a rare re-centring): one log (price bin and levels)
and one exp (taker-flow memory) per trade.
Memory per pair: ``16*n_bins + 145`` bytes, 9,745 B with the default grid (600 bins per side).

Out of order: an event with ``t >= t_last[p]`` moves the clock (decaying everything to ``t``), the
current price and the grid. A late event (``t < t_last``) does not: its price still liquidates the
levels it touched (it did trade there), its deposit is added already decayed by
``exp(-ln2*(t_last - t)/half_life_s)`` (the rest counted as decayed) at its own entry price, and is
liquidated at once if its level is beyond the current price (the later price has crossed it).

Read-outs at ``now`` (masses decayed to ``now``), per side, with ``d = ln(P/P_b)`` the log distance of
bin ``b``'s centre ``P_b`` from the last price ``P``:

* at risk within ``x%``: long mass with ``d <= x/100`` below, short mass with ``-d <= x/100`` above;
* ``E = sum_b l_b * 2*Phi(-|d_b|/(sigma*sqrt(h)))`` (the reflection-principle probability that a
  driftless Brownian log-price with ``sigma`` per sqrt-second reaches the level within ``h`` seconds),
  ``Phi(x) = erfc(-x/sqrt 2)/2``; ``MSI = (E_long + E_short)/(traded notional over h)``, NaN when the
  traded notional is not > 0 or ``sigma``/``h`` are not finite and >= 0;
* density ``l = (mass within density_window_pct)/(density_window_pct/100)`` in USD per unit of
  ln P (x0.01 for USD per 1%): longs for a down move, shorts for an up move.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import ClassVar, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from consumers.kernels import F64, I8, I32, I64, njit

LONG: Final = 0
SHORT: Final = 1
ACC_FIELDS: Final = ("deposited", "held", "liquidated", "decayed", "dropped")
DEPOSITED, HELD, LIQUIDATED, DECAYED, DROPPED = range(5)
RENORM_BELOW: Final = 1e-100  # fold the lazy decay scale into the bins below this
SQRT2: Final = math.sqrt(2.0)
IMB_FLOOR_USD: Final = 1e-200  # decayed taker flow below this splits OI increases 50/50
TAYLOR_BELOW: Final = 1e-3  # decay_factors: polynomial below this exponent, libm above
LEVEL_GUARD: Final = 1e-12  # bin-edge guard of the first-tier shortcut, relative (see docstring)
LOG_SAFE: Final = 600.0  # the shortcut only for |ln LP| below this (no under/overflow in LP)
NO_LEVEL: Final = np.iinfo(np.int64).min  # level_bin of a level that is not finite and > 0

# ---- kernels ----------------------------------------------------------------------------------


@njit
def norm_cdf(x: float) -> float:
    """Standard normal CDF, accurate in both tails (erfc, no cancellation)."""
    return 0.5 * math.erfc(-x / SQRT2)


@njit
def liquidation_price(
    side: int, ep: float, leverage: float, position_usd: float, tiers: F64
) -> float:
    """Isolated-margin liquidation price; ``tiers`` rows: floor USD, MMR, cum USD, max leverage."""
    k = 0
    while k + 1 < tiers.shape[1] and position_usd >= tiers[0, k + 1]:
        k += 1
    mmr = tiers[1, k]
    lev = min(leverage, tiers[3, k])
    c = tiers[2, k] / position_usd if tiers[2, k] > 0.0 else 0.0
    if side == LONG:
        return float(ep * (1.0 - 1.0 / lev - c) / (1.0 - mmr))
    return float(ep * (1.0 + 1.0 / lev + c) / (1.0 + mmr))


@njit
def decay_factors(x: float) -> tuple[float, float]:
    """``(exp(-x), -expm1(-x))`` for ``x >= 0``: the surviving and the decayed share.

    Below ``TAYLOR_BELOW`` the decayed share is the Taylor polynomial ``x - x^2/2 + ... + x^5/120``
    (truncation < 1.4e-18 relative, below the rounding) and the surviving one ``1 - g``.
    """
    if x < TAYLOR_BELOW:
        g = x * (1.0 - x * (0.5 - x * (1.0 / 6.0 - x * (1.0 / 24.0 - x * (1.0 / 120.0)))))
        return 1.0 - g, g
    return math.exp(-x), -math.expm1(-x)


@njit
def level_offsets(tiers: F64, buckets: F64, bins_per_unit: float) -> tuple[F64, float]:
    """First notional tier: ``ln(LP/EP)*bins_per_unit`` per ``[side, bucket]`` (NaN where the
    level is not > 0) and the largest finite ``|ln(LP/EP)|``."""
    out = np.empty((2, buckets.shape[1]))
    big = 0.0
    for s in range(2):
        for j in range(buckets.shape[1]):
            r = liquidation_price(s, 1.0, buckets[0, j], 0.0, tiers)
            if r > 0.0 and math.isfinite(r):
                out[s, j] = math.log(r) * bins_per_unit
                big = max(big, abs(math.log(r)))
            else:
                out[s, j] = np.nan
    return out, big


@njit
def level_bin(
    side: int, ep: float, leverage: float, position_usd: float, tiers: F64, bins_per_unit: float
) -> int:
    """``floor(ln(LP)*bins_per_unit)`` by the tiered formula; ``NO_LEVEL`` unless LP is finite and
    > 0."""
    lp = liquidation_price(side, ep, leverage, position_usd, tiers)
    if not (math.isfinite(lp) and lp > 0.0):
        return NO_LEVEL
    return math.floor(math.log(lp) * bins_per_unit)


@njit
def first_tier_bin(u: float, tol: float, u_max: float) -> int:
    """``floor(u)`` for the first-tier shortcut ``u = ln(EP)*bins_per_unit + offset``; ``NO_LEVEL``
    (use the formula) when ``u`` is NaN, not below ``u_max`` or within ``tol`` of a bin edge."""
    if abs(u) < u_max:
        k = math.floor(u)
        if tol < u - k < 1.0 - tol:
            return k
    return NO_LEVEL


@njit
def _fold_scale(p: int, mass: F64, scale: F64, acc: F64) -> None:
    """Fold pair ``p``'s lazy decay scale into its bins: they hold true masses again."""
    for s in range(2):
        tot = 0.0
        for b in range(mass.shape[2]):
            mass[p, s, b] *= scale[p]
            tot += mass[p, s, b]
        acc[p, s, HELD] = tot
    scale[p] = 1.0


@njit
def _shift_grid(p: int, sh: int, mass: F64, scale: F64, anchor_k: I64, acc: F64) -> None:
    """Move pair ``p``'s grid up by ``sh`` bins (down if < 0); what falls off is dropped."""
    n = mass.shape[2]
    for s in range(2):
        lost = 0.0
        if sh > 0:  # grid moves up: the lowest sh bins fall off
            for b in range(min(sh, n)):
                lost += mass[p, s, b]
            for b in range(n):
                mass[p, s, b] = mass[p, s, b + sh] if b + sh < n else 0.0
        else:
            for b in range(max(n + sh, 0), n):
                lost += mass[p, s, b]
            for b in range(n - 1, -1, -1):
                mass[p, s, b] = mass[p, s, b + sh] if b + sh >= 0 else 0.0
        acc[p, s, DROPPED] += lost * scale[p]
        kept = 0.0
        for b in range(n):
            kept += mass[p, s, b]
        acc[p, s, HELD] = kept * scale[p]  # re-synced with the bins
    anchor_k[p] += sh


@njit
def _apply_events(
    oi_rows: bool, pair_id: I32, t: F64, side: I8, amount: F64, price: F64,
    tiers: F64, buckets: F64, bins_per_unit: float, recentre_bins: int, decay_per_s: float,
    imb_tau_s: float, max_event_usd: float, oi_position_usd: float,
    mass: F64, scale: F64, anchor_k: I64, price_k: I64, last_price: F64, t_last: F64,
    acc: F64, imb: F64, oi_fed: I8, rejected: I64,
) -> int:  # fmt: skip
    """The loop of ``liqmap_trades`` (``amount`` = notional) and of ``liqmap_oi`` (``oi_rows``:
    ``amount`` = dOI, ``side`` and ``price`` unused), written out in one body. Numba increments
    and decrements, atomically, the reference count of every array it passes to a jitted helper
    (even one inlined at numba-IR level), and its pruning pass leaves most of those pairs: the
    array-taking helpers this loop had cost ~15 ns per trade in them alone. So the per-event
    helpers take scalars only (LLVM inlines them), and only rare paths (fold, grid shift, the
    exact level formula) call out with arrays."""
    n_rej = 0
    n = mass.shape[2]
    offsets, off_max = level_offsets(tiers, buckets, bins_per_unit)
    u_max = LOG_SAFE * bins_per_unit
    for i in range(pair_id.shape[0]):
        p = pair_id[i]
        if p < 0 or p >= mass.shape[0]:
            n_rej += 1
            continue
        ti, q = t[i], amount[i]
        tl = t_last[p]
        if oi_rows:
            s, px = LONG, last_price[p]
            ok = math.isfinite(ti) and math.isfinite(q) and abs(q) <= max_event_usd
            ok = ok and tl != -math.inf  # a price is needed
        else:
            s, px = side[i], price[i]
            ok = (
                math.isfinite(ti) and 0 <= s <= 1 and math.isfinite(q)
                and 0.0 <= q <= max_event_usd and math.isfinite(px) and px > 0.0
            )  # fmt: skip
        if not ok:
            n_rej += 1
            rejected[p] += 1
            continue
        lx = math.log(px)
        kp = price_k[p] if oi_rows else math.floor(lx * bins_per_unit)
        # the clock: decay everything to ti, or the lag of a late event
        lag = 0.0
        if tl == -math.inf:  # the pair's first trade: its price anchors the grid
            anchor_k[p] = kp - n // 2
            price_k[p] = kp
            last_price[p] = px
            t_last[p] = ti
        elif ti < tl:
            lag = tl - ti
        else:
            dt = ti - tl
            if dt > 0.0:
                f, g = decay_factors(decay_per_s * dt)
                for sd in range(2):
                    acc[p, sd, DECAYED] += acc[p, sd, HELD] * g
                    acc[p, sd, HELD] *= f
                scale[p] *= f
                if scale[p] < RENORM_BELOW:
                    _fold_scale(p, mass, scale, acc)
                fi = math.exp(-dt / imb_tau_s)
                imb[p, 0] *= fi
                imb[p, 1] *= fi
            t_last[p] = ti
        if oi_rows:
            oi_fed[p] = 1
            if q <= 0.0:
                continue  # decreases deposit nothing
        else:
            if tl != -math.inf:  # the print liquidates the levels between the price and it
                k0 = anchor_k[p]
                ib, e = price_k[p] - k0, kp - k0  # long bins >= ib and short bins <= ib are empty
                if e != ib:
                    if e < ib:
                        sd, lo, hi = LONG, max(e, 0), ib
                    else:
                        sd, lo, hi = SHORT, ib + 1, min(e, n - 1) + 1
                    tot = 0.0
                    for b in range(lo, hi):
                        tot += mass[p, sd, b]
                        mass[p, sd, b] = 0.0
                    amt = tot * scale[p]
                    acc[p, sd, LIQUIDATED] += amt
                    acc[p, sd, HELD] = max(acc[p, sd, HELD] - amt, 0.0)
                if lag == 0.0:
                    price_k[p] = kp
                    last_price[p] = px
                    sh = kp - k0 - n // 2
                    if abs(sh) > recentre_bins:
                        _shift_grid(p, sh, mass, scale, anchor_k, acc)
            imb[p, s] += q if lag == 0.0 else q * math.exp(-lag / imb_tau_s)
            if oi_fed[p] != 0:
                continue
        # deposits: trades on their taker side, OI increases split by the taker imbalance
        if oi_rows:
            tot = imb[p, 0] + imb[p, 1]
            q_long = q * (imb[p, 0] / tot) if tot > IMB_FLOOR_USD else q * 0.5
            pos, s_first, s_last = oi_position_usd, LONG, SHORT
        else:
            q_long = q if s == LONG else 0.0
            pos, s_first, s_last = q, s, s
        tier0 = not tiers[2, 0] > 0.0 and (tiers.shape[1] == 1 or pos < tiers[0, 1])
        x = lx * bins_per_unit
        tol = LEVEL_GUARD * (abs(lx) + off_max + 1.0) * bins_per_unit
        k0 = anchor_k[p]
        for sd in range(s_first, s_last + 1):
            qd = q_long if sd == LONG else q - q_long
            acc[p, sd, DEPOSITED] += qd
            if lag > 0.0:
                f, g = decay_factors(decay_per_s * lag)
                acc[p, sd, DECAYED] += qd * g
                qd *= f
            limit = min(price_k[p], kp) if sd == LONG else max(price_k[p], kp)
            inv = 1.0 / scale[p]
            held = liq = drop = 0.0
            for j in range(buckets.shape[1]):
                part = qd * buckets[1, j]
                kb = first_tier_bin(x + offsets[sd, j], tol, u_max) if tier0 else NO_LEVEL
                if kb == NO_LEVEL:  # a higher tier, an extreme level or a bin edge
                    kb = level_bin(sd, px, buckets[0, j], pos, tiers, bins_per_unit)
                if kb == NO_LEVEL:
                    drop += part  # never reachable on a log grid
                elif (sd == LONG and kb >= limit) or (sd == SHORT and kb <= limit):
                    liq += part
                elif kb < k0 or kb >= k0 + n:
                    drop += part
                else:
                    mass[p, sd, kb - k0] += part * inv
                    held += part
            acc[p, sd, HELD] += held
            acc[p, sd, LIQUIDATED] += liq
            acc[p, sd, DROPPED] += drop
    return n_rej


@njit
def liqmap_trades(
    pair_id: I32, side: I8, t: F64, notional: F64, price: F64,
    tiers: F64, buckets: F64, bins_per_unit: float, recentre_bins: int, decay_per_s: float,
    imb_tau_s: float, max_event_usd: float,
    mass: F64, scale: F64, anchor_k: I64, price_k: I64, last_price: F64, t_last: F64,
    acc: F64, imb: F64, oi_fed: I8, rejected: I64,
) -> int:  # fmt: skip
    """Apply trades (taker side buy=0 / sell=1) in arrival order; return the rows rejected.

    Rejected (counted, state untouched): pair id out of range, non-finite time, side not 0/1,
    notional not in [0, max_event_usd], price not finite and > 0.
    """
    return _apply_events(False, pair_id, t, side, notional, price, tiers, buckets, bins_per_unit,
                         recentre_bins, decay_per_s, imb_tau_s, max_event_usd, 0.0, mass, scale,
                         anchor_k, price_k, last_price, t_last, acc, imb, oi_fed,
                         rejected)  # fmt: skip


@njit
def liqmap_oi(
    pair_id: I32, t: F64, d_oi_usd: F64,
    tiers: F64, buckets: F64, bins_per_unit: float, decay_per_s: float, imb_tau_s: float,
    max_event_usd: float, oi_position_usd: float,
    mass: F64, scale: F64, anchor_k: I64, price_k: I64, last_price: F64, t_last: F64,
    acc: F64, imb: F64, oi_fed: I8, rejected: I64,
) -> int:  # fmt: skip
    """Apply open-interest changes (USD) in arrival order; return the rows rejected.

    Marks the pair as OI-fed (its trades stop depositing). Rejected (counted, state untouched):
    pair id out of range, non-finite time or change, ``|dOI| > max_event_usd``, no trade price yet.
    """
    return _apply_events(True, pair_id, t, np.empty(0, np.int8), d_oi_usd, np.empty(0), tiers,
                         buckets, bins_per_unit, 0, decay_per_s, imb_tau_s, max_event_usd,
                         oi_position_usd, mass, scale, anchor_k, price_k, last_price, t_last, acc,
                         imb, oi_fed, rejected)  # fmt: skip


@njit
def liqmap_read(
    now: float, sigma: F64, horizon_s: float, traded_usd: F64, levels_pct: F64,
    density_pct: float, bins_per_unit: float, decay_per_s: float,
    mass: F64, scale: F64, anchor_k: I64, price_k: I64, last_price: F64, t_last: F64, acc: F64,
    n_pairs: int,
    at_risk: F64, expected: F64, density: F64, msi: F64, totals: F64,
) -> None:  # fmt: skip
    """Read-outs of the first ``n_pairs`` pairs at ``now`` (see the module docstring).

    Outputs: ``at_risk[p, side, level]``, ``expected[p, side]``, ``density[p, side]`` (USD per
    unit ln P), ``msi[p]``, ``totals[p, side, ACC_FIELDS]`` (accumulators decayed to ``now``; a
    pair whose clock is later than ``now`` is read at its clock). NaN where there is no price.
    """
    n = mass.shape[2]
    n_lv = levels_pct.shape[0]
    for p in range(n_pairs):
        dt = now - t_last[p]
        x = decay_per_s * dt if dt > 0.0 and decay_per_s > 0.0 else 0.0  # no 0 * inf
        f = math.exp(-x)
        g = -math.expm1(-x)
        for s in range(2):
            for a in range(5):
                totals[p, s, a] = acc[p, s, a]
            totals[p, s, DECAYED] += acc[p, s, HELD] * g
            totals[p, s, HELD] = acc[p, s, HELD] * f
        if t_last[p] == -math.inf:
            at_risk[p] = np.nan
            expected[p] = np.nan
            density[p] = np.nan
            msi[p] = np.nan
            continue
        sc = scale[p] * f
        x = math.log(last_price[p]) * bins_per_unit
        k0 = anchor_k[p]
        ib = price_k[p] - k0
        sig = sigma[p]
        usable = math.isfinite(sig) and sig >= 0.0 and math.isfinite(horizon_s) and horizon_s >= 0.0
        sd = sig * math.sqrt(horizon_s) if usable else 0.0
        for s in range(2):
            for j in range(n_lv):
                at_risk[p, s, j] = 0.0
            e_sum = 0.0
            near = 0.0
            lo, hi = (0, min(ib, n)) if s == LONG else (max(ib + 1, 0), n)
            for b in range(lo, hi):
                m = mass[p, s, b]
                if m == 0.0:
                    continue
                amt = m * sc
                d = (x - (float(k0 + b) + 0.5)) / bins_per_unit
                d = d if s == LONG else -d  # > 0: distance to the level
                for j in range(n_lv):
                    if d <= levels_pct[j] / 100.0:
                        at_risk[p, s, j] += amt
                if d <= density_pct / 100.0:
                    near += amt
                if sd > 0.0:
                    e_sum += amt * 2.0 * norm_cdf(-d / sd)
            expected[p, s] = e_sum if usable else np.nan
            density[p, s] = near / (density_pct / 100.0)
        tr = traded_usd[p]
        e_tot = expected[p, LONG] + expected[p, SHORT]
        msi[p] = e_tot / tr if (math.isfinite(tr) and tr > 0.0) else np.nan


# ---- configuration and state ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiqMapParams:
    """Liquidation-map configuration. Percent means 0.01 of natural log-price.

    Defaults: BTCUSDT notional tiers seen in 2021 (floors USD, MMR, max leverage); leverage buckets
    5/10/25/50/100x with equal weights (uncalibrated: Cheng et al. 2021 report ~60x average among
    *liquidated* BitMEX traders, which over-represents high leverage); 10 bins per % over +-30% with
    re-centring after a 5% move (so the 5x levels, ~22% away, stay on the grid); a 12 h half-life.
    """

    tier_floors_usd: tuple[float, ...] = (0.0, 50_000.0, 250_000.0, 1_000_000.0)
    tier_mmr: tuple[float, ...] = (0.004, 0.005, 0.01, 0.025)
    tier_max_leverage: tuple[float, ...] = (125.0, 100.0, 50.0, 20.0)
    use_maintenance_amount: bool = True  # False: cum = 0, the doc's short form
    leverages: tuple[float, ...] = (5.0, 10.0, 25.0, 50.0, 100.0)
    leverage_weights: tuple[float, ...] = (0.2, 0.2, 0.2, 0.2, 0.2)  # normalised to sum 1
    bins_per_pct: int = 10
    half_range_pct: float = 30.0  # grid half-width around its centre
    recentre_pct: float = 5.0  # re-centre once the price is further than this from the centre
    half_life_s: float = 43_200.0  # decay of all mass (positions get closed); inf: no decay
    imbalance_tau_s: float = 60.0  # taker buy/sell memory for splitting OI increases
    oi_position_usd: float = 10_000.0  # position notional that picks the tier of OI deposits
    max_event_usd: float = 1e13  # rows above this are rejected as corrupt
    at_risk_levels_pct: tuple[float, ...] = (1.0, 2.0, 5.0)
    density_window_pct: float = 1.0

    def __post_init__(self) -> None:
        for name in ("tier_floors_usd", "tier_mmr", "tier_max_leverage", "leverages",
                     "leverage_weights", "at_risk_levels_pct"):  # fmt: skip
            v = tuple(float(x) for x in getattr(self, name))
            if not v or not all(math.isfinite(x) for x in v):
                raise ValueError(f"{name} must be a non-empty sequence of finite numbers")
            object.__setattr__(self, name, v)
        fl, mmr, mx = self.tier_floors_usd, self.tier_mmr, self.tier_max_leverage
        if not len(fl) == len(mmr) == len(mx):
            raise ValueError("tier_floors_usd, tier_mmr and tier_max_leverage differ in length")
        if fl[0] != 0.0 or any(b <= a for a, b in itertools.pairwise(fl)):
            raise ValueError("tier_floors_usd must start at 0 and increase strictly")
        if any(not 0.0 < m < 1.0 for m in mmr) or any(b < a for a, b in itertools.pairwise(mmr)):
            raise ValueError("tier_mmr must be in (0, 1) and non-decreasing")
        if any(not (x >= 1.0 and x * m < 1.0) for x, m in zip(mx, mmr, strict=True)):
            raise ValueError("tier_max_leverage must be >= 1 with max_leverage*MMR < 1")
        if len(self.leverages) != len(self.leverage_weights):
            raise ValueError("leverages and leverage_weights differ in length")
        if any(x < 1.0 for x in self.leverages):
            raise ValueError("leverages must be >= 1")
        if any(w < 0.0 for w in self.leverage_weights) or sum(self.leverage_weights) <= 0.0:
            raise ValueError("leverage_weights must be >= 0 with a positive sum")
        if isinstance(self.bins_per_pct, bool) or not isinstance(self.bins_per_pct, int):
            raise ValueError("bins_per_pct must be an int")
        if not 1 <= self.bins_per_pct <= 1000:
            raise ValueError("bins_per_pct must be in [1, 1000]")
        if not (math.isfinite(self.half_range_pct) and 0.0 < self.half_range_pct <= 500.0):
            raise ValueError("half_range_pct must be in (0, 500]")
        if not (self.recentre_pct >= 0.0 and self.recentre_bins < self.n_bins // 2):
            raise ValueError("recentre_pct must be >= 0 and below half_range_pct")
        if not self.half_life_s > 0.0:  # inf allowed
            raise ValueError("half_life_s must be > 0 (inf: no decay)")
        for name in ("imbalance_tau_s", "oi_position_usd", "max_event_usd", "density_window_pct"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"{name} must be finite and > 0")
        if any(x <= 0.0 for x in self.at_risk_levels_pct):
            raise ValueError("at_risk_levels_pct must be > 0")

    @property
    def n_bins(self) -> int:
        """Bins per side: ``2*ceil(half_range_pct*bins_per_pct)``."""
        return 2 * math.ceil(self.half_range_pct * self.bins_per_pct)

    @property
    def bins_per_unit(self) -> float:
        """Bins per unit of ln P."""
        return 100.0 * self.bins_per_pct

    @property
    def recentre_bins(self) -> int:
        return round(self.recentre_pct * self.bins_per_pct)

    @property
    def decay_per_s(self) -> float:
        return math.log(2.0) / self.half_life_s

    @property
    def tier_cum_usd(self) -> tuple[float, ...]:
        """``cum_k = cum_{k-1} + floor_k*(MMR_k - MMR_{k-1})``, ``cum_0 = 0`` (USD)."""
        cum = [0.0]
        for k in range(1, len(self.tier_floors_usd)):
            cum.append(
                cum[-1] + self.tier_floors_usd[k] * (self.tier_mmr[k] - self.tier_mmr[k - 1])
            )
        return tuple(cum)

    def tiers(self) -> F64:
        """Kernel rows: floor USD, MMR, cum USD (0 without the maintenance amount), max leverage."""
        cum = self.tier_cum_usd if self.use_maintenance_amount else (0.0,) * len(self.tier_mmr)
        return np.array([self.tier_floors_usd, self.tier_mmr, cum, self.tier_max_leverage])

    def buckets(self) -> F64:
        """Kernel rows: leverage, weight (normalised)."""
        w = np.asarray(self.leverage_weights)
        return np.array([np.asarray(self.leverages), w / w.sum()])


class LiqMapReadout(NamedTuple):
    """Read-outs of the first ``n`` pairs; side axis LONG=0 / SHORT=1; USD unless stated."""

    now_s: float
    levels_pct: tuple[float, ...]
    price: F64  # [n], NaN before the first trade
    at_risk_usd: F64  # [n, 2, levels]
    expected_usd: F64  # [n, 2], E over the horizon
    density_usd_per_log: F64  # [n, 2], USD per unit ln P near the price
    msi: F64  # [n]
    totals_usd: F64  # [n, 2, ACC_FIELDS]


def _check(arr: npt.NDArray[np.generic], dtype: type[np.generic], name: str) -> None:
    if arr.dtype != dtype or arr.ndim != 1:
        raise TypeError(f"{name} must be a 1-d {np.dtype(dtype).name} array, got {arr.dtype}")


@dataclass(slots=True)
class LiqMapState:
    """Per-pair map state (struct of arrays, first axis = pair id), grown by copying."""

    params: LiqMapParams
    tiers: F64  # [4, tiers]
    buckets: F64  # [2, buckets]
    mass: F64  # [pairs, 2, n_bins], true mass = mass*scale
    scale: F64  # [pairs]
    anchor_k: I64  # [pairs], lattice index of bin 0
    price_k: I64  # [pairs], lattice index of the current price
    last_price: F64  # [pairs], NaN before the first trade
    t_last: F64  # [pairs], -inf before the first trade
    acc: F64  # [pairs, 2, ACC_FIELDS], as of t_last
    imb: F64  # [pairs, 2], decayed taker buy / sell notional
    oi_fed: I8  # [pairs], 1 once open interest was applied
    rejected: I64  # [pairs], screened-out rows

    PER_PAIR: ClassVar[tuple[str, ...]] = (
        "mass", "scale", "anchor_k", "price_k", "last_price", "t_last", "acc", "imb", "oi_fed",
        "rejected",
    )  # fmt: skip

    @classmethod
    def allocate(cls, n_pairs: int, params: LiqMapParams | None = None) -> LiqMapState:
        if n_pairs <= 0:
            raise ValueError("n_pairs must be positive")
        prm = params if params is not None else LiqMapParams()
        c, nb = n_pairs, prm.n_bins
        return cls(
            params=prm, tiers=prm.tiers(), buckets=prm.buckets(),
            mass=np.zeros((c, 2, nb)), scale=np.ones(c), anchor_k=np.zeros(c, np.int64),
            price_k=np.zeros(c, np.int64), last_price=np.full(c, np.nan),
            t_last=np.full(c, -np.inf), acc=np.zeros((c, 2, len(ACC_FIELDS))),
            imb=np.zeros((c, 2)), oi_fed=np.zeros(c, np.int8), rejected=np.zeros(c, np.int64),
        )  # fmt: skip

    @property
    def capacity(self) -> int:
        return int(self.mass.shape[0])

    @property
    def bytes_per_pair(self) -> int:
        return sum(int(getattr(self, f).nbytes) for f in self.PER_PAIR) // self.capacity

    def grow(self, n_pairs: int) -> None:
        """Grow to ``n_pairs`` (never shrinks); existing pairs keep their state."""
        old = self.capacity
        if n_pairs < old:
            raise ValueError(f"cannot shrink from {old} to {n_pairs} pairs")
        new = LiqMapState.allocate(n_pairs, self.params)
        for f in self.PER_PAIR:
            arr = getattr(new, f)
            arr[:old] = getattr(self, f)
            setattr(self, f, arr)

    def apply_trades(self, pair_id: I32, side: I8, t: F64, notional: F64, price: F64) -> int:
        """Trades (taker buy=0 / sell=1, time s, notional USD, price); returns rows rejected."""
        for a, d, nm in ((pair_id, np.int32, "pair_id"), (side, np.int8, "side"),
                         (t, np.float64, "t"), (notional, np.float64, "notional"),
                         (price, np.float64, "price")):  # fmt: skip
            _check(a, d, nm)
        prm = self.params
        return liqmap_trades(pair_id, side, t, notional, price, self.tiers, self.buckets,
                             prm.bins_per_unit, prm.recentre_bins, prm.decay_per_s,
                             prm.imbalance_tau_s, prm.max_event_usd, self.mass, self.scale,
                             self.anchor_k, self.price_k, self.last_price, self.t_last, self.acc,
                             self.imb, self.oi_fed, self.rejected)  # fmt: skip

    def apply_oi(self, pair_id: I32, t: F64, d_oi_usd: F64) -> int:
        """Open-interest changes in USD; returns rows rejected."""
        _check(pair_id, np.int32, "pair_id")
        _check(t, np.float64, "t")
        _check(d_oi_usd, np.float64, "d_oi_usd")
        prm = self.params
        return liqmap_oi(pair_id, t, d_oi_usd, self.tiers, self.buckets, prm.bins_per_unit,
                         prm.decay_per_s, prm.imbalance_tau_s, prm.max_event_usd,
                         prm.oi_position_usd, self.mass, self.scale, self.anchor_k, self.price_k,
                         self.last_price, self.t_last, self.acc, self.imb, self.oi_fed,
                         self.rejected)  # fmt: skip

    def read(
        self,
        now_s: float,
        sigma: F64,
        horizon_s: float,
        traded_usd: F64,
        n_pairs: int | None = None,
    ) -> LiqMapReadout:
        """Read-outs at ``now_s``: ``sigma[p]`` per sqrt-second, ``traded_usd[p]`` over
        ``horizon_s``."""
        n = self.capacity if n_pairs is None else n_pairs
        if not 0 <= n <= self.capacity:
            raise ValueError(f"n_pairs must be in [0, {self.capacity}]")
        _check(sigma, np.float64, "sigma")
        _check(traded_usd, np.float64, "traded_usd")
        if sigma.shape[0] < n or traded_usd.shape[0] < n:
            raise ValueError("sigma and traded_usd need one value per pair")
        prm = self.params
        lv = np.asarray(prm.at_risk_levels_pct)
        out = LiqMapReadout(
            now_s, prm.at_risk_levels_pct, np.where(np.isfinite(self.t_last[:n]),
            self.last_price[:n], np.nan), np.empty((n, 2, lv.shape[0])), np.empty((n, 2)),
            np.empty((n, 2)), np.empty(n), np.empty((n, 2, len(ACC_FIELDS))),
        )  # fmt: skip
        liqmap_read(float(now_s), sigma, float(horizon_s), traded_usd, lv,
                    prm.density_window_pct, prm.bins_per_unit, prm.decay_per_s, self.mass,
                    self.scale, self.anchor_k, self.price_k, self.last_price, self.t_last,
                    self.acc, n, out.at_risk_usd, out.expected_usd, out.density_usd_per_log,
                    out.msi, out.totals_usd)  # fmt: skip
        return out
