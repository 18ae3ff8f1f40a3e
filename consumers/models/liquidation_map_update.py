"""The liquidation map's update per event: deposits, removals when the price crosses a level, decay,
and the grid that follows the price (docs/risk-models.md §6). Pure (numpy + numba).

Grid: per pair, ``n_bins`` bins of ``1/bins_per_unit`` in natural log-price (``bins_per_unit =
100*bins_per_pct``; "1%" means 0.01 in ln P everywhere here). Bin ``b`` holds levels with
``floor(ln(LP)*bins_per_unit) = anchor_k + b`` (an integer lattice, so re-centring shifts whole bins
and never re-bins). The anchor puts the price in the middle bin ``c = n_bins//2``; once the price bin
is more than ``recentre_bins`` from ``c`` the grid shifts to centre it again, and mass shifted off
either edge is counted as dropped.

Deposits (docs/risk-models.md §6): without an open-interest feed, taker-buy notional opens longs and
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

Out of order: an event with ``t >= t_last[p]`` moves the clock (decaying everything to ``t``), the
current price and the grid. A late event (``t < t_last``) does not: its price still liquidates the
levels it touched (it did trade there), its deposit is added already decayed by
``exp(-ln2*(t_last - t)/half_life_s)`` (the rest counted as decayed) at its own entry price, and is
liquidated at once if its level is beyond the current price (the later price has crossed it).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from consumers.models.jit import F64, I8, I32, I64, njit
from consumers.models.liquidation_price import (
    LEVEL_GUARD,
    LOG_SAFE,
    LONG,
    NO_LEVEL,
    SHORT,
    first_tier_bin,
    level_bin,
    level_offsets,
)

ACC_FIELDS: Final = ("deposited", "held", "liquidated", "decayed", "dropped")
DEPOSITED, HELD, LIQUIDATED, DECAYED, DROPPED = range(5)
RENORM_BELOW: Final = 1e-100  # fold the lazy decay scale into the bins below this
IMB_FLOOR_USD: Final = 1e-200  # decayed taker flow below this splits OI increases 50/50
TAYLOR_BELOW: Final = 1e-3  # decay_factors: polynomial below this exponent, libm above


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
