"""VPIN, the volume-synchronised probability of informed trading (docs/risk-models.md §4; Easley,
Lopez de Prado & O'Hara 2012, taker side as Andersen & Bondarenko 2013 advise). Pure (numpy +
numba).

Equal-volume buckets of ``V`` USD per pair: a trade fills the open bucket, the overflow opens the
next one (split across as many buckets as it fills). A closed bucket stores ``|V_buy - V_sell|``
and its size in a ring of ``n`` (50). ``VPIN = sum |V_buy - V_sell| / sum V`` over the ring,
``= sum/(n*V)`` for a constant ``V``; NaN until ``n`` buckets closed. ``V`` is per pair
(``MicroState.vp_size[p]``, ``set_bucket_usd``; default ``vpin_bucket_usd``); 0 is the auto
mode: a bucket opened at ``t`` gets ``V = R*vpin_auto_span_s/n`` (the EW traded notional per
hour / 50 with the defaults), ``R = A/(1 - exp(-(t - t0)/span))`` with ``A`` the decayed
traded-notional rate (time constant ``span`` = 3600 s, the flow decay form) and ``t0`` the
pair's first trade: the division debiases the start-up. No bucket opens before
``vpin_auto_warmup_s`` (900 s) after ``t0``; that volume is not bucketed. Sizes are floored at
``MIN_BUCKET_USD``. A single trade that would close more than ``n + 1`` buckets closes the
surplus ones in closed form (they would all be overwritten by identical entries), so one trade
costs at most ``n + 2`` loop turns.

Out of order: VPIN is volume-clocked, so a late trade goes into the open bucket like any other;
the auto mode's rate takes it already decayed, as ``flow.flow_update`` does.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from consumers.models.jit import F64, I8, I32, I64, njit
from consumers.models.screening import BUY, usable

MIN_BUCKET_USD: Final = 1.0  # bucket size floor, USD


@njit
def _auto_bucket(
    rate: float, t_rate: float, t0: float, span_s: float, warmup_s: float, n: int
) -> float:
    """Auto bucket size (USD) from the debiased hourly rate, 0 before the warm-up has passed."""
    age = t_rate - t0
    if not (age >= warmup_s and age > 0.0):
        return 0.0
    hourly = rate / -math.expm1(-age / span_s) * span_s
    return max(hourly / n, MIN_BUCKET_USD)


@njit
def vpin_update(
    pair_id: I32, side: I8, t: F64, notional: F64, span_s: float, warmup_s: float,
    size_usd: F64, cur: F64, fill: F64, buy: F64, sell: F64, ring_imb: F64, ring_vol: F64,
    n_closed: I64, rate: F64, t_rate: F64, t0: F64,
) -> None:  # fmt: skip
    """Trades into equal-volume buckets (split on overflow); closed buckets into the ring."""
    n_p, n = ring_imb.shape[0], ring_imb.shape[1]
    for i in range(t.shape[0]):
        p = pair_id[i]
        ti, q, sd = t[i], notional[i], side[i]
        if not (0 <= p < n_p and usable(ti, q) and 0 <= sd < 2):
            continue
        tl = t_rate[p]
        if ti >= tl:
            rate[p] = rate[p] * math.exp(-(ti - tl) / span_s) + q / span_s
            t_rate[p] = ti
        else:
            rate[p] += (q / span_s) * math.exp(-(tl - ti) / span_s)
        t0[p] = min(t0[p], ti)
        v = q
        while v > 0.0:
            if cur[p] == 0.0:  # open a bucket
                manual = size_usd[p]
                if manual > 0.0:
                    size = max(manual, MIN_BUCKET_USD)
                else:
                    size = _auto_bucket(rate[p], t_rate[p], t0[p], span_s, warmup_s, n)
                if not size > 0.0:
                    break  # auto mode still warming up: this volume is not bucketed
                cur[p], fill[p], buy[p], sell[p] = size, 0.0, 0.0, 0.0
                if v > (n + 1) * size:  # close the surplus whole buckets in one step
                    rem = v % size  # exact for positive operands
                    whole = np.int64(math.floor((v - rem) / size + 0.5))
                    n_closed[p] += whole - n
                    v = rem + n * size
            room = cur[p] - fill[p]
            take = min(v, room)
            if sd == BUY:
                buy[p] += take
            else:
                sell[p] += take
            if v >= room:
                j = n_closed[p] % n
                ring_imb[p, j] = abs(buy[p] - sell[p])
                ring_vol[p, j] = cur[p]
                n_closed[p] += 1
                cur[p], fill[p], buy[p], sell[p] = 0.0, 0.0, 0.0, 0.0  # no open bucket
            else:
                fill[p] += v
            v -= take


@njit
def vpin_at(
    span_s: float, warmup_s: float, size_usd: F64, cur: F64, ring_imb: F64, ring_vol: F64,
    n_closed: I64, rate: F64, t_rate: F64, t0: F64, rows: I64, out_vpin: F64, out_size: F64,
) -> None:  # fmt: skip
    """VPIN over the ring (NaN until it is full) and the open (or next) bucket's size in USD, of
    pair ``rows[i]`` into index ``i`` of the outputs."""
    n = ring_imb.shape[1]
    for i in range(rows.shape[0]):
        p = rows[i]
        if cur[p] > 0.0:
            out_size[i] = cur[p]
        elif size_usd[p] > 0.0:
            out_size[i] = max(size_usd[p], MIN_BUCKET_USD)
        else:
            s = _auto_bucket(rate[p], t_rate[p], t0[p], span_s, warmup_s, n)
            out_size[i] = s if s > 0.0 else np.nan
        if n_closed[p] < n:
            out_vpin[i] = np.nan
            continue
        num = 0.0
        den = 0.0
        for j in range(n):
            num += ring_imb[p, j]
            den += ring_vol[p, j]
        out_vpin[i] = num / den
