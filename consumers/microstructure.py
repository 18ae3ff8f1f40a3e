"""Microstructure risk inputs per pair (risk-models.md s1, s3, s4, s5). Pure: numpy + numba only.

Conventions are those of ``consumers.kernels``: kernels take NumPy arrays and scalars only, write
into preallocated struct-of-arrays state indexed by a dense pair id ``p``, are compiled with
``cache=True``, and cost O(1) per event (VPIN: at most ``n_buckets + 2`` loop turns for one trade).
Event time ``t`` is float64 seconds. Every kernel skips rows it cannot use (pair id outside the
arrays, non-finite or ``|t| > MAX_ABS_T_S`` time, notional not in ``[0, MAX_NOTIONAL_USD]``, side
outside ``[0, 2)`` or price not finite and > 0 where used), so NaN, inf and negative values never
reach the state; ``screen_events`` marks and counts such rows per pair for the caller. Slow, obvious
references for every kernel are in ``tests/consumers/microstructure_ref.py``. ``MicroState`` owns
the arrays (``allocate``/``grow``) and runs the kernels; ``MicroParams`` holds the documented
defaults. Trade sides are taker codes buy=0 / sell=1 (``consumers.state.TAKER_SIDES``).

Liquidation flow (s1)
  * ``imbalance = (L_long - L_short)/(L_long + L_short)`` per horizon, read from liquidation rates
    already decayed to the same time (``kernels.flow_rates_at``); NaN when both are 0.
  * ``liq_share = sum_sides L / T`` per horizon, ``T`` the traded-notional rate kept here with the
    decay of ``kernels.flow_update``: ``T = T*exp(-(t - t_last)/tau) + v/tau`` (USD/s; late events
    added already decayed to ``t_last``). NaN when ``T = 0``. Not clipped: liquidation and trade
    feeds differ by venue (sampled liquidation feeds are lower bounds, see coverage below).
  * Baseline: ``x_j`` = total liquidation rate over ``baseline_horizon_s`` (60 s, same decay form)
    sampled at the grid times ``g_j = j*baseline_sample_s`` that follow the pair's first event
    (liquidation or trade). The sample at ``g_j`` counts liquidations applied before the first one
    stamped ``>= g_j`` (a grid time is sampled lazily, by the next in-order liquidation or a
    read-out). EW weights per sample ``alpha = 1 - beta``, ``beta = exp(-sample_s/baseline_tau_s)``
    (24 h), debiased by the total weight ``w``: ``mean = m1/w``, ``var = m2/w - mean^2`` with
    ``w = sum alpha*beta^age``, ``m1 = sum alpha*beta^age*x``, ``m2 = sum alpha*beta^age*x^2``.
    Between liquidations the samples are ``c*rho^i`` (``rho = exp(-sample_s/horizon)``), so ``m``
    samples fold in closed form (geometric sums through ``expm1``): O(1) for any gap.
    ``z = (x_now - mean)/sqrt(var)``, NaN until ``baseline_warmup_s`` of samples and while
    ``var <= 0``.
  * Saturation (coverage): slots ``k = floor(t/saturation_slot_s)`` (1 s); ``b_k = 1`` when slot
    ``k`` carried a liquidation. ``f = sum_k alpha*beta^(K - k)*b_k``, ``beta = exp(-slot/tau)``
    (tau 60 s), divided by the weight of every slot since the pair's first event,
    ``1 - beta^n``: the decayed fraction of slots with a liquidation, in [0, 1]. Binance pushes at
    most one liquidation per symbol per second, Bitget the largest per side per second: near 1 the
    feed is saturated and its sums are lower bounds (never totals). Read-out over completed slots
    plus the current slot once it has a liquidation; NaN until one time constant of slots.

Kyle's lambda (s3)
  Fixed time buckets ``b = floor(t/kyle_bucket_s)`` (1 s). A bucket's return is
  ``r = ln P_end - ln P_start`` (``P_end`` the latest-stamped trade price in the bucket, ``P_start``
  the ``P_end`` of the previous bucket that had trades; a pair's first bucket only sets the
  reference), its signed flow ``S = sum sign(v)*sqrt(|v|)`` (v = taker notional in USD, + buy /
  - sell). ``lambda_K = Cov_w(r, S)/Var_w(S)``, exponentially weighted in time: a bucket closed
  ``d`` buckets before the latest one weighs ``exp(-d*bucket_s/kyle_tau_s)`` (tau 300 s; buckets
  without trades are not observations, they only age the others). Moments by West's weighted
  update (West 1979, numerically stable); a bucket that traded less than ``MIN_OBS_USD`` ($1e-6)
  is no observation (its ``|r|/notional`` could overflow). Unit: log-return per sqrt(USD), i.e. a
  single taker order of ``v`` USD moves the price by ``lambda_K*sqrt(v)`` in log terms. NaN until
  ``kyle_min_buckets`` observations or while ``Var_w(S) <= 1e-10*E_w[S^2]``. The Amihud (2002)
  ratio ``|r|/notional`` (per USD) with the same weights is the cross-check. Kyle (1985) defines
  lambda as price impact per unit of signed order flow; the square-root flow is risk-models.md s3.
  Because the impact is square-root, ``n_struct = lambda_K * l`` is dimensionless only once
  linearised at a move size: see ``feedback_ratio``.

VPIN (s4; Easley, Lopez de Prado & O'Hara 2012, taker side as Andersen & Bondarenko 2013 advise)
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
  surplus ones in closed form (they would all be overwritten by identical entries).

Bipower variation and drawdown (s5)
  Fixed intervals ``k = floor(t/bv_interval_s)`` (5 s), previous-tick log prices (latest-stamped
  trade of the interval). Returns are taken between consecutive intervals that carried trades
  (a return spanning empty intervals is one return, so thin pairs show no spurious jumps from
  zero neighbours) and stamped at their interval's end ``te``. Decayed sums in variance per
  second, the flow form: ``RV = RV*exp(-(te - te_prev)/tau) + r^2/tau``,
  ``BV = BV*exp(...) + (pi/2)*|r_i|*|r_(i-1)|/tau`` (Barndorff-Nielsen & Shephard 2004), tau 900 s.
  ``jump_share = max(0, 1 - BV/RV)`` (the relative jump measure of Huang & Tauchen 2005), NaN
  until ``bv_min_returns`` returns. Read-outs close the open interval once ``now`` has passed its
  end, as ``kernels.variance_at`` does.
  Drawdown: the high relaxes in log price toward the prevailing (last) price with time constant
  ``drawdown_tau_s`` (1 h) and jumps to any higher trade: at a trade ``(t, P)`` after the previous
  ``(t0, P0)``: ``ln H = max(ln P, ln P0 + (ln H - ln P0)*exp(-(t - t0)/tau))``;
  ``drawdown = 1 - P/H`` in [0, 1] (1.0 only when P/H underflows). Mirrored with a decayed low for
  shorts: ``drawup = 1 - L/P`` in [0, 1].

Out-of-order events (``t`` before the pair's last event time)
  * Rates (traded, baseline, VPIN auto): added already decayed, exactly as ``kernels.flow_update``.
  * Baseline samples already taken are not rewritten (the late event enters later samples).
  * Saturation: a late liquidation marks its slot if it lies within ``SLOT_WINDOW`` (62) slots of
    the latest liquidation's slot (kept in a 62-bit mask, so the result is exact); older ones are
    ignored and counted in ``late[p, LATE_SATURATION]``.
  * Kyle and bipower: a trade in an already closed bucket/interval is ignored and counted; inside
    the open one its flow counts (Kyle) but its price replaces ``P_end`` only if it is not older
    than the current ``P_end``.
  * VPIN is volume-clocked: a late trade goes into the open bucket like any other.
  * Drawdown: a trade older than the last applied one is ignored and counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from consumers.kernels import F64, I8, I32, I64, NO_INTERVAL, njit

MAX_ABS_T_S: Final = 1e12  # |event time| accepted, s (keeps floor(t/dt) inside int64)
MAX_NOTIONAL_USD: Final = 1e15  # notional accepted per event, USD
MIN_BUCKET_USD: Final = 1.0  # VPIN bucket size floor, USD
MIN_OBS_USD: Final = 1e-6  # Kyle/Amihud: a bucket with less traded notional is no observation
MIN_INTERVAL_S: Final = 1e-3  # smallest bucket/slot/sampling interval accepted by MicroParams
SLOT_WINDOW: Final = 62  # saturation: slots behind the latest one where a late event still counts
_SLOT_MASK: Final = (1 << SLOT_WINDOW) - 1
_HALF_PI: Final = 0.5 * math.pi
_DEGENERATE_VAR: Final = 1e-10  # Kyle: Var_w(S) below this share of E_w[S^2] reads as NaN
BUY: Final = 0
LATE_SATURATION, LATE_KYLE, LATE_BIPOWER, LATE_DRAWDOWN = 0, 1, 2, 3
N_LATE: Final = 4
BoolArr = npt.NDArray[np.bool_]


# ---- screening --------------------------------------------------------------------------------


@njit
def _usable(t: float, q: float) -> bool:
    return math.isfinite(t) and abs(t) <= MAX_ABS_T_S and 0.0 <= q <= MAX_NOTIONAL_USD


@njit
def _usable_trade(t: float, side: int, q: float, px: float) -> bool:
    return _usable(t, q) and 0 <= side < 2 and math.isfinite(px) and px > 0.0


@njit
def screen_events(
    pair_id: I32, t: F64, side: I8, notional: F64, price: F64, ok: BoolArr, rejected: I64
) -> int:
    """Mark usable rows in ``ok``, count unusable ones in ``rejected[p]``; return the rows rejected.

    Usable: pair id in ``[0, len(rejected))``, the ``_usable`` time and notional, and, when ``side``
    / ``price`` are not empty, a taker side in {0, 1} / a finite price > 0. Rows of an unknown pair
    are in the return value only.
    """
    n_p = rejected.shape[0]
    has_side = side.shape[0] > 0
    has_price = price.shape[0] > 0
    n_bad = 0
    for i in range(t.shape[0]):
        p = pair_id[i]
        good = 0 <= p < n_p and _usable(t[i], notional[i])
        if has_side:
            good = good and 0 <= side[i] < 2
        if has_price:
            good = good and math.isfinite(price[i]) and price[i] > 0.0
        ok[i] = good
        if not good:
            n_bad += 1
            if 0 <= p < n_p:
                rejected[p] += 1
    return n_bad


@njit
def start_clocks(
    pair_id: I32, t: F64, sample_s: float, bl_k: I64, slot_s: float, sat_first: I64
) -> None:
    """Start the baseline grid and the saturation slot count at a pair's first event (any kind)."""
    n_p = bl_k.shape[0]
    for i in range(t.shape[0]):
        p = pair_id[i]
        if not (0 <= p < n_p and _usable(t[i], 0.0)):
            continue
        if bl_k[p] == NO_INTERVAL:
            bl_k[p] = math.floor(t[i] / sample_s)
        if sat_first[p] == NO_INTERVAL:
            sat_first[p] = math.floor(t[i] / slot_s)


# ---- traded-notional rates and the liquidation read-outs -------------------------------------


@njit
def notional_rate_update(
    pair_id: I32, t: F64, notional: F64, tau: F64, rate: F64, t_last: F64
) -> None:
    """``rate[p, h]``: decayed notional rate (USD/s) as of ``t_last[p]``; flow_update's form."""
    n_p, n_h = rate.shape[0], tau.shape[0]
    for i in range(t.shape[0]):
        p = pair_id[i]
        ti, q = t[i], notional[i]
        if not (0 <= p < n_p and _usable(ti, q)):
            continue
        tl = t_last[p]
        if ti >= tl:
            for h in range(n_h):
                rate[p, h] = rate[p, h] * math.exp(-(ti - tl) / tau[h]) + q / tau[h]
            t_last[p] = ti
        else:
            for h in range(n_h):
                rate[p, h] += (q / tau[h]) * math.exp(-(tl - ti) / tau[h])


@njit
def notional_rates_at(now: float, tau: F64, rate: F64, t_last: F64, n_pairs: int, out: F64) -> None:
    """Rates decayed to ``now`` (a pair whose last event is later reads its value at ``t_last``)."""
    for p in range(n_pairs):
        dt = now - t_last[p]
        for h in range(tau.shape[0]):
            out[p, h] = rate[p, h] * math.exp(-dt / tau[h]) if dt > 0.0 else rate[p, h]


@njit
def imbalance_at(liq_rate_at: F64, n_pairs: int, out: F64) -> None:
    """``(L_long - L_short)/(L_long + L_short)`` from rates ``[p, side, h]`` decayed to one time."""
    for p in range(n_pairs):
        for h in range(liq_rate_at.shape[2]):
            lo, sh = liq_rate_at[p, 0, h], liq_rate_at[p, 1, h]
            tot = lo + sh
            out[p, h] = (lo - sh) / tot if tot > 0.0 else np.nan


@njit
def liq_share_at(liq_rate_at: F64, trd_rate_at: F64, n_pairs: int, out: F64) -> None:
    """Liquidation rate (all sides) / traded-notional rate, per horizon; NaN with no trade flow."""
    for p in range(n_pairs):
        for h in range(liq_rate_at.shape[2]):
            liq = 0.0
            for s in range(liq_rate_at.shape[1]):
                liq += liq_rate_at[p, s, h]
            trd = trd_rate_at[p, h]
            out[p, h] = liq / trd if trd > 0.0 else np.nan


# ---- baseline of the 60 s liquidation rate ----------------------------------------------------


@njit
def _geom(log_r: float, m: float) -> float:
    """``sum_{i<m} r^i`` for ``r = exp(log_r) <= 1``."""
    if log_r == 0.0:
        return m
    return math.expm1(m * log_r) / math.expm1(log_r)


@njit
def _baseline_fold(
    k_from: int, k_to: int, rate: float, t_rate: float, w: float, m1: float, m2: float,
    sample_s: float, horizon_s: float, tau_s: float,
) -> tuple[float, float, float]:  # fmt: skip
    """(w, m1, m2) after the samples at grid times ``(k_from, k_to] * sample_s``."""
    m = float(k_to - k_from)
    bm = math.exp(-m * sample_s / tau_s)
    alpha = -math.expm1(-sample_s / tau_s)
    w_new = bm * w - math.expm1(-m * sample_s / tau_s)
    if rate > 0.0:
        c = rate * math.exp(-(float(k_from + 1) * sample_s - t_rate) / horizon_s)
        b1 = math.exp(-(m - 1.0) * sample_s / tau_s)
        lr1 = -sample_s / horizon_s + sample_s / tau_s
        m1 = bm * m1 + alpha * c * b1 * _geom(lr1, m)
        m2 = bm * m2 + alpha * c * c * b1 * _geom(lr1 - sample_s / horizon_s, m)
    else:
        m1 *= bm
        m2 *= bm
    return w_new, m1, m2


@njit
def baseline_update(
    pair_id: I32, t: F64, notional: F64, sample_s: float, horizon_s: float, tau_s: float,
    rate: F64, t_rate: F64, k_s: I64, w: F64, m1: F64, m2: F64, n_s: I64,
) -> None:  # fmt: skip
    """Liquidations into the 60 s total rate and its sampled, decayed baseline moments."""
    n_p = rate.shape[0]
    for i in range(t.shape[0]):
        p = pair_id[i]
        ti, q = t[i], notional[i]
        if not (0 <= p < n_p and _usable(ti, q)):
            continue
        k = math.floor(ti / sample_s)
        if k_s[p] == NO_INTERVAL:
            k_s[p] = k
        tl = t_rate[p]
        if ti >= tl:
            if k > k_s[p]:
                w[p], m1[p], m2[p] = _baseline_fold(
                    k_s[p], k, rate[p], tl, w[p], m1[p], m2[p], sample_s, horizon_s, tau_s
                )
                n_s[p] += k - k_s[p]
                k_s[p] = k
            rate[p] = rate[p] * math.exp(-(ti - tl) / horizon_s) + q / horizon_s
            t_rate[p] = ti
        else:
            rate[p] += (q / horizon_s) * math.exp(-(tl - ti) / horizon_s)


@njit
def baseline_at(
    now: float, sample_s: float, horizon_s: float, tau_s: float, warmup_s: float,
    rate: F64, t_rate: F64, k_s: I64, w: F64, m1: F64, m2: F64, n_s: I64, n_pairs: int,
    out_rate: F64, out_mean: F64, out_sd: F64, out_z: F64,
) -> None:  # fmt: skip
    """Current 60 s rate, baseline mean and sd (USD/s) and z-score at ``now`` (state untouched)."""
    k_now = math.floor(now / sample_s)
    for p in range(n_pairs):
        dt = now - t_rate[p]
        x = rate[p] * math.exp(-dt / horizon_s) if dt > 0.0 else rate[p]
        out_rate[p] = x
        out_mean[p] = out_sd[p] = out_z[p] = np.nan
        if k_s[p] == NO_INTERVAL:
            continue
        wp, a, b = w[p], m1[p], m2[p]
        n = n_s[p]
        if k_now > k_s[p]:
            wp, a, b = _baseline_fold(
                k_s[p], k_now, rate[p], t_rate[p], wp, a, b, sample_s, horizon_s, tau_s
            )
            n += k_now - k_s[p]
        if n == 0:
            continue
        mean = a / wp
        var = b / wp - mean * mean
        out_mean[p] = mean
        out_sd[p] = math.sqrt(var) if var > 0.0 else 0.0
        if var > 0.0 and float(n) * sample_s >= warmup_s:
            out_z[p] = (x - mean) / math.sqrt(var)


# ---- saturation: decayed fraction of slots with a liquidation ---------------------------------


@njit
def saturation_update(
    pair_id: I32, t: F64, notional: F64, slot_s: float, tau_s: float,
    f: F64, k_last: I64, k_first: I64, bits: I64, late: I64,
) -> None:  # fmt: skip
    """Mark the slot of each liquidation (bit ``j`` of ``bits[p]``: slot ``k_last - j`` occupied)."""
    n_p = f.shape[0]
    alpha = -math.expm1(-slot_s / tau_s)
    for i in range(t.shape[0]):
        p = pair_id[i]
        if not (0 <= p < n_p and _usable(t[i], notional[i])):
            continue
        k = math.floor(t[i] / slot_s)
        kl = k_last[p]
        if kl == NO_INTERVAL:
            f[p] = alpha
            k_last[p] = k
            bits[p] = 1
            if k_first[p] == NO_INTERVAL or k < k_first[p]:
                k_first[p] = k
        elif k > kl:
            d = k - kl
            f[p] = f[p] * math.exp(-float(d) * slot_s / tau_s) + alpha
            bits[p] = ((bits[p] << d) | 1) & _SLOT_MASK if d < SLOT_WINDOW else 1
            k_last[p] = k
        elif k < kl:
            j = kl - k
            if j < SLOT_WINDOW:
                bit = np.int64(1) << j
                if bits[p] & bit == 0:
                    bits[p] |= bit
                    f[p] += alpha * math.exp(-float(j) * slot_s / tau_s)
                    k_first[p] = min(k_first[p], k)
            else:
                late[p, LATE_SATURATION] += 1


@njit
def saturation_at(
    now: float, slot_s: float, tau_s: float, f: F64, k_last: I64, k_first: I64, n_pairs: int,
    out: F64,
) -> None:  # fmt: skip
    """Fraction of slots since the pair's first event that carried a liquidation, decayed.

    Over the completed slots and the current one if it already has a liquidation; NaN until
    ``ceil(tau/slot)`` slots.
    """
    k_now = math.floor(now / slot_s)
    min_slots = math.ceil(tau_s / slot_s)
    for p in range(n_pairs):
        out[p] = np.nan
        if k_first[p] == NO_INTERVAL:
            continue
        kl = k_last[p]
        top = k_now - 1 if kl == NO_INTERVAL else max(kl, k_now - 1)
        n = top - k_first[p] + 1
        if n < min_slots:
            continue
        num = 0.0 if kl == NO_INTERVAL else f[p] * math.exp(-float(top - kl) * slot_s / tau_s)
        out[p] = min(1.0, num / -math.expm1(-float(n) * slot_s / tau_s))


# ---- Kyle's lambda ------------------------------------------------------------------------------


@njit
def _kyle_fold(
    b: int, k_obs: int, n_obs: int, l0: float, l1: float, s: float, v: float, decay_per_bucket: float,
    w: float, mx: float, my: float, cxx: float, cxy: float, am: float,
) -> tuple[float, float, float, float, float, float, bool]:  # fmt: skip
    """EW moments after bucket ``b`` (return ``l1 - l0``, flow ``s``, notional ``v``) is folded in."""
    if math.isnan(l0) or not v >= MIN_OBS_USD:
        return w, mx, my, cxx, cxy, am, False
    if n_obs > 0:
        d = math.exp(-float(b - k_obs) * decay_per_bucket)
        w *= d
        cxx *= d
        cxy *= d
    r = l1 - l0
    w += 1.0
    dx = s - mx
    mx += dx / w
    my += (r - my) / w
    cxx += dx * (s - mx)
    cxy += dx * (r - my)
    am += (abs(r) / v - am) / w
    return w, mx, my, cxx, cxy, am, True


@njit
def kyle_update(
    pair_id: I32, side: I8, t: F64, notional: F64, price: F64, bucket_s: float, tau_s: float,
    k_open: I64, l0: F64, l1: F64, t1: F64, s_acc: F64, v_acc: F64, k_obs: I64,
    w: F64, mx: F64, my: F64, cxx: F64, cxy: F64, am: F64, n_obs: I64, late: I64,
) -> None:  # fmt: skip
    """Trades into fixed time buckets; a closing bucket is one observation of ``(S, r)``."""
    n_p = w.shape[0]
    dec = bucket_s / tau_s
    for i in range(t.shape[0]):
        p = pair_id[i]
        ti, q = t[i], notional[i]
        if not (0 <= p < n_p and _usable_trade(ti, side[i], q, price[i])):
            continue
        k = math.floor(ti / bucket_s)
        lp = math.log(price[i])
        sg = math.sqrt(q) if side[i] == BUY else -math.sqrt(q)
        cur = k_open[p]
        if cur == NO_INTERVAL or k > cur:
            if cur != NO_INTERVAL:
                w[p], mx[p], my[p], cxx[p], cxy[p], am[p], folded = _kyle_fold(
                    cur, k_obs[p], n_obs[p], l0[p], l1[p], s_acc[p], v_acc[p], dec,
                    w[p], mx[p], my[p], cxx[p], cxy[p], am[p],
                )  # fmt: skip
                if folded:
                    k_obs[p] = cur
                    n_obs[p] += 1
                l0[p] = l1[p]
            k_open[p] = k
            l1[p], t1[p], s_acc[p], v_acc[p] = lp, ti, sg, q
        elif k == cur:
            s_acc[p] += sg
            v_acc[p] += q
            if ti >= t1[p]:
                l1[p], t1[p] = lp, ti
        else:
            late[p, LATE_KYLE] += 1


@njit
def kyle_at(
    now: float, bucket_s: float, tau_s: float, min_buckets: int,
    k_open: I64, l0: F64, l1: F64, s_acc: F64, v_acc: F64, k_obs: I64,
    w: F64, mx: F64, my: F64, cxx: F64, cxy: F64, am: F64, n_obs: I64, n_pairs: int,
    out_lambda: F64, out_amihud: F64,
) -> None:  # fmt: skip
    """``lambda_K`` (log-return per sqrt(USD)) and Amihud (log-return per USD) at ``now``.

    The open bucket is folded in (on a copy) once ``now`` is past its end.
    """
    k_now = math.floor(now / bucket_s)
    for p in range(n_pairs):
        wp, a, b, sxx, sxy, amp, n = w[p], mx[p], my[p], cxx[p], cxy[p], am[p], n_obs[p]
        cur = k_open[p]
        if cur != NO_INTERVAL and k_now > cur:
            wp, a, b, sxx, sxy, amp, folded = _kyle_fold(
                cur, k_obs[p], n, l0[p], l1[p], s_acc[p], v_acc[p], bucket_s / tau_s,
                wp, a, b, sxx, sxy, amp,
            )  # fmt: skip
            n += 1 if folded else 0
        out_lambda[p] = out_amihud[p] = np.nan
        if n < min_buckets:
            continue
        out_amihud[p] = amp
        var = sxx / wp
        if var > _DEGENERATE_VAR * (var + a * a):
            out_lambda[p] = sxy / sxx


def feedback_ratio(lambda_k: float, density_usd: float, move: float) -> float:
    """``n_struct`` at a log move ``move`` (> 0) under the square-root impact law.

    ``density_usd`` is the liquidation notional per unit log move in the direction of the move (USD;
    the map's ``l`` times the price if it is per unit price). The move triggers ``Q = density*move``
    of liquidations; executed as one taker sweep they move the price ``lambda_K*sqrt(Q)``, so
    ``n_struct = lambda_K*sqrt(density*move)/move``: dimensionless, and larger for small moves.
    """
    if not move > 0.0:
        raise ValueError("move must be > 0 (a log return)")
    return lambda_k * math.sqrt(max(density_usd, 0.0) * move) / move


# ---- VPIN -------------------------------------------------------------------------------------


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
        if not (0 <= p < n_p and _usable(ti, q) and 0 <= sd < 2):
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
    n_closed: I64, rate: F64, t_rate: F64, t0: F64, n_pairs: int, out_vpin: F64, out_size: F64,
) -> None:  # fmt: skip
    """VPIN over the ring (NaN until it is full) and the open (or next) bucket's size in USD."""
    n = ring_imb.shape[1]
    for p in range(n_pairs):
        if cur[p] > 0.0:
            out_size[p] = cur[p]
        elif size_usd[p] > 0.0:
            out_size[p] = max(size_usd[p], MIN_BUCKET_USD)
        else:
            s = _auto_bucket(rate[p], t_rate[p], t0[p], span_s, warmup_s, n)
            out_size[p] = s if s > 0.0 else np.nan
        if n_closed[p] < n:
            out_vpin[p] = np.nan
            continue
        num = 0.0
        den = 0.0
        for j in range(n):
            num += ring_imb[p, j]
            den += ring_vol[p, j]
        out_vpin[p] = num / den


# ---- bipower variation, realized variance -----------------------------------------------------


@njit
def _bv_fold(
    k: int, l0: float, l1: float, prev: float, bv: float, rv: float, t_ref: float,
    interval_s: float, tau_s: float,
) -> tuple[float, float, float, float]:  # fmt: skip
    """(BV, RV, t_ref, |r|) after the return ``l1 - l0`` of interval ``k``, stamped at its end."""
    te = float(k + 1) * interval_s
    r = l1 - l0
    d = math.exp(-(te - t_ref) / tau_s)
    rv = rv * d + r * r / tau_s
    bv = bv * d
    if not math.isnan(prev):
        bv += _HALF_PI * abs(r) * prev / tau_s
    return bv, rv, te, abs(r)


@njit
def bipower_update(
    pair_id: I32, t: F64, price: F64, interval_s: float, tau_s: float,
    k_open: I64, l0: F64, l1: F64, t1: F64, prev: F64, bv: F64, rv: F64, t_ref: F64,
    n_ret: I64, late: I64,
) -> None:  # fmt: skip
    """Trades into fixed intervals; a closing interval adds its return to the decayed BV and RV."""
    n_p = bv.shape[0]
    for i in range(t.shape[0]):
        p = pair_id[i]
        ti, px = t[i], price[i]
        if not (0 <= p < n_p and _usable(ti, 0.0) and math.isfinite(px) and px > 0.0):
            continue
        k = math.floor(ti / interval_s)
        cur = k_open[p]
        if cur == NO_INTERVAL or k > cur:
            if cur != NO_INTERVAL:
                if not math.isnan(l0[p]):
                    bv[p], rv[p], t_ref[p], prev[p] = _bv_fold(
                        cur, l0[p], l1[p], prev[p], bv[p], rv[p], t_ref[p], interval_s, tau_s
                    )
                    n_ret[p] += 1
                l0[p] = l1[p]
            k_open[p] = k
            l1[p], t1[p] = math.log(px), ti
        elif k == cur:
            if ti >= t1[p]:
                l1[p], t1[p] = math.log(px), ti
        else:
            late[p, LATE_BIPOWER] += 1


@njit
def bipower_at(
    now: float, interval_s: float, tau_s: float, min_returns: int,
    k_open: I64, l0: F64, l1: F64, prev: F64, bv: F64, rv: F64, t_ref: F64, n_ret: I64,
    n_pairs: int, out_bv: F64, out_rv: F64, out_jump: F64,
) -> None:  # fmt: skip
    """BV and RV (variance per second) decayed to ``now`` and ``max(0, 1 - BV/RV)``."""
    k_now = math.floor(now / interval_s)
    for p in range(n_pairs):
        b, r, tr, n = bv[p], rv[p], t_ref[p], n_ret[p]
        cur = k_open[p]
        if cur != NO_INTERVAL and k_now > cur and not math.isnan(l0[p]):
            b, r, tr, _ = _bv_fold(cur, l0[p], l1[p], prev[p], b, r, tr, interval_s, tau_s)
            n += 1
        out_bv[p] = out_rv[p] = out_jump[p] = np.nan
        if n == 0:
            continue
        d = math.exp(-(now - tr) / tau_s) if now > tr else 1.0
        out_bv[p], out_rv[p] = b * d, r * d
        if n >= min_returns and r > 0.0:
            out_jump[p] = max(0.0, 1.0 - b / r)


# ---- drawdown from a decayed high -------------------------------------------------------------


@njit
def drawdown_update(
    pair_id: I32, t: F64, price: F64, tau_s: float, lp: F64, t_last: F64, lhi: F64, llo: F64,
    late: I64,
) -> None:  # fmt: skip
    """Log high/low relax toward the prevailing price, then take the new trade's price."""
    n_p = lp.shape[0]
    for i in range(t.shape[0]):
        p = pair_id[i]
        ti, px = t[i], price[i]
        if not (0 <= p < n_p and _usable(ti, 0.0) and math.isfinite(px) and px > 0.0):
            continue
        x = math.log(px)
        if math.isnan(lp[p]):
            lp[p] = lhi[p] = llo[p] = x
            t_last[p] = ti
        elif ti >= t_last[p]:
            f = math.exp(-(ti - t_last[p]) / tau_s)
            lhi[p] = max(x, lp[p] + (lhi[p] - lp[p]) * f)
            llo[p] = min(x, lp[p] + (llo[p] - lp[p]) * f)
            lp[p], t_last[p] = x, ti
        else:
            late[p, LATE_DRAWDOWN] += 1


@njit
def drawdown_at(
    now: float, tau_s: float, lp: F64, t_last: F64, lhi: F64, llo: F64, n_pairs: int,
    out_down: F64, out_up: F64,
) -> None:  # fmt: skip
    """``1 - P/H`` and ``1 - L/P`` at ``now`` (NaN before the first trade)."""
    for p in range(n_pairs):
        if math.isnan(lp[p]):
            out_down[p] = out_up[p] = np.nan
            continue
        dt = now - t_last[p]
        f = math.exp(-dt / tau_s) if dt > 0.0 else 1.0
        out_down[p] = -math.expm1(-(lhi[p] - lp[p]) * f)
        out_up[p] = -math.expm1(-(lp[p] - llo[p]) * f)


# ---- parameters, state, read-out --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MicroParams:
    """Model constants; times in seconds, sizes in USD. Defaults in brackets.

    horizons_s: traded-notional rate horizons, equal to ``RiskState.horizons_s`` [10, 60, 300].
    baseline_horizon_s: the liquidation rate the baseline follows [60]; baseline_sample_s: its
    sampling interval [10]; baseline_tau_s: EW time constant of mean and variance [86400];
    baseline_warmup_s: sampled time before a z-score is given [3600].
    saturation_slot_s: slot length [1]; saturation_tau_s: EW time constant over slots [60].
    kyle_bucket_s: time bucket [1]; kyle_tau_s: EW time constant [300]; kyle_min_buckets:
    observations before lambda is given [30].
    vpin_n_buckets: ring length [50]; vpin_bucket_usd: default bucket size, 0 = auto [0];
    vpin_auto_span_s: auto mode's rate time constant and span covered by the ring [3600];
    vpin_auto_warmup_s: trading time before auto buckets open [900].
    bv_interval_s: return interval [5]; bv_tau_s: decay time constant [900]; bv_min_returns:
    returns before a jump share is given [30].
    drawdown_tau_s: relaxation time constant of the decayed high and low [3600].
    """

    horizons_s: tuple[float, ...] = (10.0, 60.0, 300.0)
    baseline_horizon_s: float = 60.0
    baseline_sample_s: float = 10.0
    baseline_tau_s: float = 86_400.0
    baseline_warmup_s: float = 3_600.0
    saturation_slot_s: float = 1.0
    saturation_tau_s: float = 60.0
    kyle_bucket_s: float = 1.0
    kyle_tau_s: float = 300.0
    kyle_min_buckets: int = 30
    vpin_n_buckets: int = 50
    vpin_bucket_usd: float = 0.0
    vpin_auto_span_s: float = 3_600.0
    vpin_auto_warmup_s: float = 900.0
    bv_interval_s: float = 5.0
    bv_tau_s: float = 900.0
    bv_min_returns: int = 30
    drawdown_tau_s: float = 3_600.0

    def __post_init__(self) -> None:
        hs = self.horizons_s
        if not hs or not all(isinstance(h, int | float) and math.isfinite(h) and h > 0 for h in hs):
            raise ValueError(
                f"horizons_s must be a non-empty tuple of finite values > 0, got {hs!r}"
            )
        for name in ("baseline_sample_s", "saturation_slot_s", "kyle_bucket_s", "bv_interval_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= MIN_INTERVAL_S):
                raise ValueError(f"{name} must be finite and >= {MIN_INTERVAL_S} s, got {v!r}")
        for name in ("baseline_horizon_s", "baseline_tau_s", "saturation_tau_s", "kyle_tau_s",
                     "vpin_auto_span_s", "bv_tau_s", "drawdown_tau_s"):  # fmt: skip
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be finite and > 0, got {v!r}")
        for name in ("baseline_warmup_s", "vpin_auto_warmup_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
        if not self.baseline_tau_s >= 2 * self.baseline_horizon_s:
            raise ValueError(
                f"baseline_tau_s ({self.baseline_tau_s}) must be >= 2 * baseline_horizon_s "
                f"({self.baseline_horizon_s}): the baseline must be slower than the rate it follows"
            )
        for name, lo in (("kyle_min_buckets", 2), ("vpin_n_buckets", 1), ("bv_min_returns", 2)):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= lo):
                raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
        v = self.vpin_bucket_usd
        if not (v == 0 or (math.isfinite(v) and MIN_BUCKET_USD <= v <= MAX_NOTIONAL_USD)):
            raise ValueError(
                f"vpin_bucket_usd must be 0 (auto) or in [{MIN_BUCKET_USD}, {MAX_NOTIONAL_USD}] "
                f"USD, got {v!r}"
            )


def _empty_i64(n: int) -> I64:
    return np.zeros(n, dtype=np.int64)


@dataclass(slots=True, eq=False)
class MicroState:
    """Per-pair arrays (first axis = pair id), allocated by ``allocate``, enlarged by ``grow``.

    Inputs of ``apply_*`` are any rows; unusable ones are counted in ``rejected[p]`` (or returned,
    for pair ids outside the arrays) and never applied.
    """

    params: MicroParams
    tau: F64 = field(default_factory=lambda: np.empty(0))
    # traded notional (both taker sides)
    trd_rate: F64 = field(default_factory=lambda: np.empty((0, 0)))
    trd_t: F64 = field(default_factory=lambda: np.empty(0))
    # baseline of the 60 s liquidation rate
    bl_rate: F64 = field(default_factory=lambda: np.empty(0))
    bl_t: F64 = field(default_factory=lambda: np.empty(0))
    bl_k: I64 = field(default_factory=lambda: _empty_i64(0))
    bl_w: F64 = field(default_factory=lambda: np.empty(0))
    bl_m1: F64 = field(default_factory=lambda: np.empty(0))
    bl_m2: F64 = field(default_factory=lambda: np.empty(0))
    bl_n: I64 = field(default_factory=lambda: _empty_i64(0))
    # saturation
    sat_f: F64 = field(default_factory=lambda: np.empty(0))
    sat_k_last: I64 = field(default_factory=lambda: _empty_i64(0))
    sat_k_first: I64 = field(default_factory=lambda: _empty_i64(0))
    sat_bits: I64 = field(default_factory=lambda: _empty_i64(0))
    # Kyle
    ky_k: I64 = field(default_factory=lambda: _empty_i64(0))
    ky_l0: F64 = field(default_factory=lambda: np.empty(0))
    ky_l1: F64 = field(default_factory=lambda: np.empty(0))
    ky_t1: F64 = field(default_factory=lambda: np.empty(0))
    ky_s: F64 = field(default_factory=lambda: np.empty(0))
    ky_v: F64 = field(default_factory=lambda: np.empty(0))
    ky_k_obs: I64 = field(default_factory=lambda: _empty_i64(0))
    ky_w: F64 = field(default_factory=lambda: np.empty(0))
    ky_mx: F64 = field(default_factory=lambda: np.empty(0))
    ky_my: F64 = field(default_factory=lambda: np.empty(0))
    ky_cxx: F64 = field(default_factory=lambda: np.empty(0))
    ky_cxy: F64 = field(default_factory=lambda: np.empty(0))
    ky_am: F64 = field(default_factory=lambda: np.empty(0))
    ky_n: I64 = field(default_factory=lambda: _empty_i64(0))
    # VPIN
    vp_size: F64 = field(default_factory=lambda: np.empty(0))
    vp_cur: F64 = field(default_factory=lambda: np.empty(0))
    vp_fill: F64 = field(default_factory=lambda: np.empty(0))
    vp_buy: F64 = field(default_factory=lambda: np.empty(0))
    vp_sell: F64 = field(default_factory=lambda: np.empty(0))
    vp_imb: F64 = field(default_factory=lambda: np.empty((0, 0)))
    vp_vol: F64 = field(default_factory=lambda: np.empty((0, 0)))
    vp_n: I64 = field(default_factory=lambda: _empty_i64(0))
    vp_rate: F64 = field(default_factory=lambda: np.empty(0))
    vp_rt: F64 = field(default_factory=lambda: np.empty(0))
    vp_t0: F64 = field(default_factory=lambda: np.empty(0))
    # bipower / realized variance
    bv_k: I64 = field(default_factory=lambda: _empty_i64(0))
    bv_l0: F64 = field(default_factory=lambda: np.empty(0))
    bv_l1: F64 = field(default_factory=lambda: np.empty(0))
    bv_t1: F64 = field(default_factory=lambda: np.empty(0))
    bv_prev: F64 = field(default_factory=lambda: np.empty(0))
    bv_bv: F64 = field(default_factory=lambda: np.empty(0))
    bv_rv: F64 = field(default_factory=lambda: np.empty(0))
    bv_tref: F64 = field(default_factory=lambda: np.empty(0))
    bv_n: I64 = field(default_factory=lambda: _empty_i64(0))
    # drawdown
    dd_lp: F64 = field(default_factory=lambda: np.empty(0))
    dd_t: F64 = field(default_factory=lambda: np.empty(0))
    dd_lhi: F64 = field(default_factory=lambda: np.empty(0))
    dd_llo: F64 = field(default_factory=lambda: np.empty(0))
    # counters
    rejected: I64 = field(default_factory=lambda: _empty_i64(0))
    late: I64 = field(default_factory=lambda: np.zeros((0, N_LATE), dtype=np.int64))
    # False: the caller keeps the traded notional rate and passes it to read() (trd_rate_at)
    own_traded_rate: bool = True

    def _layout(self) -> dict[str, tuple[tuple[int, ...], Any, float]]:
        """Per-pair array name -> (trailing shape, dtype, initial value)."""
        pr = self.params
        f64, i64 = np.float64, np.int64
        nh, nb = len(pr.horizons_s), pr.vpin_n_buckets
        lay: dict[str, tuple[tuple[int, ...], Any, float]] = {}
        for f in fields(self):
            if f.name in ("params", "tau", "own_traded_rate"):
                continue
            dtype = i64 if f.type == "I64" else f64
            lay[f.name] = ((), dtype, NO_INTERVAL if f.name.endswith("_k") else 0.0)
        lay["trd_rate"] = ((nh,), f64, 0.0)
        lay["vp_imb"] = lay["vp_vol"] = ((nb,), f64, 0.0)
        lay["late"] = ((N_LATE,), i64, 0)
        for name in ("sat_k_last", "sat_k_first", "ky_k_obs"):
            lay[name] = ((), i64, NO_INTERVAL)
        for name in ("trd_t", "bl_t", "ky_t1", "vp_rt", "bv_t1", "bv_tref", "dd_t"):
            lay[name] = ((), f64, -math.inf)
        for name in ("ky_l0", "bv_l0", "bv_prev", "dd_lp"):
            lay[name] = ((), f64, math.nan)
        lay["vp_t0"] = ((), f64, math.inf)
        lay["vp_size"] = ((), f64, pr.vpin_bucket_usd)
        return lay

    @classmethod
    def allocate(cls, n_pairs: int, params: MicroParams) -> MicroState:
        """Arrays for ``n_pairs`` pairs (>= 0), every pair in its initial state."""
        if n_pairs < 0:
            raise ValueError(f"n_pairs must be >= 0, got {n_pairs}")
        st = cls(params=params, tau=np.asarray(params.horizons_s, dtype=np.float64))
        for name, (shape, dtype, init) in st._layout().items():
            setattr(st, name, np.full((n_pairs, *shape), init, dtype=dtype))
        return st

    @property
    def capacity(self) -> int:
        return int(self.rejected.shape[0])

    def grow(self, n_pairs: int) -> None:
        """Enlarge every array to ``n_pairs`` pairs (never shrinks); existing pairs keep state."""
        old = self.capacity
        if n_pairs <= old:
            return
        for name, (shape, dtype, init) in self._layout().items():
            arr = np.full((n_pairs, *shape), init, dtype=dtype)
            arr[:old] = getattr(self, name)
            setattr(self, name, arr)

    def set_bucket_usd(self, pair_id: int, size_usd: float) -> None:
        """VPIN bucket size for one pair from its next bucket on (0 = auto)."""
        if not (
            size_usd == 0
            or (math.isfinite(size_usd) and MIN_BUCKET_USD <= size_usd <= MAX_NOTIONAL_USD)
        ):
            raise ValueError(
                f"bucket size must be 0 (auto) or in [{MIN_BUCKET_USD}, {MAX_NOTIONAL_USD}] USD"
            )
        self.vp_size[pair_id] = size_usd

    @staticmethod
    def _check(pair_id: I32, *cols: npt.NDArray[Any]) -> None:
        if pair_id.dtype != np.int32:
            raise TypeError(f"pair ids must be int32, got {pair_id.dtype}")
        for c in cols:
            if c.shape != pair_id.shape:
                raise ValueError("columns must have the pair ids' shape")

    def apply_liquidations(self, pair_id: I32, t: F64, notional: F64) -> int:
        """Apply liquidations (any side) in arrival order; returns the rows applied."""
        self._check(pair_id, t, notional)
        for c in (t, notional):
            if c.dtype != np.float64:
                raise TypeError(f"expected float64 arrays, got {c.dtype}")
        ok = np.empty(t.shape[0], dtype=np.bool_)
        e8, e = np.empty(0, np.int8), np.empty(0)
        if screen_events(pair_id, t, e8, notional, e, ok, self.rejected):
            pair_id, t, notional = pair_id[ok], t[ok], notional[ok]
        pr = self.params
        start_clocks(
            pair_id, t, pr.baseline_sample_s, self.bl_k, pr.saturation_slot_s, self.sat_k_first
        )
        baseline_update(pair_id, t, notional, pr.baseline_sample_s, pr.baseline_horizon_s,
                        pr.baseline_tau_s, self.bl_rate, self.bl_t, self.bl_k, self.bl_w,
                        self.bl_m1, self.bl_m2, self.bl_n)  # fmt: skip
        saturation_update(pair_id, t, notional, pr.saturation_slot_s, pr.saturation_tau_s,
                          self.sat_f, self.sat_k_last, self.sat_k_first, self.sat_bits,
                          self.late)  # fmt: skip
        return int(t.shape[0])

    def apply_trades(self, pair_id: I32, t: F64, side: I8, notional: F64, price: F64) -> int:
        """Apply trades (taker side buy=0 / sell=1) in arrival order; returns the rows applied."""
        self._check(pair_id, t, side, notional, price)
        if side.dtype != np.int8:
            raise TypeError(f"side codes must be int8, got {side.dtype}")
        for c in (t, notional, price):
            if c.dtype != np.float64:
                raise TypeError(f"expected float64 arrays, got {c.dtype}")
        ok = np.empty(t.shape[0], dtype=np.bool_)
        if screen_events(pair_id, t, side, notional, price, ok, self.rejected):
            pair_id, t, side, notional, price = (
                pair_id[ok],
                t[ok],
                side[ok],
                notional[ok],
                price[ok],
            )
        pr = self.params
        start_clocks(
            pair_id, t, pr.baseline_sample_s, self.bl_k, pr.saturation_slot_s, self.sat_k_first
        )
        if self.own_traded_rate:
            notional_rate_update(pair_id, t, notional, self.tau, self.trd_rate, self.trd_t)
        kyle_update(pair_id, side, t, notional, price, pr.kyle_bucket_s, pr.kyle_tau_s, self.ky_k,
                    self.ky_l0, self.ky_l1, self.ky_t1, self.ky_s, self.ky_v, self.ky_k_obs,
                    self.ky_w, self.ky_mx, self.ky_my, self.ky_cxx, self.ky_cxy, self.ky_am,
                    self.ky_n, self.late)  # fmt: skip
        vpin_update(pair_id, side, t, notional, pr.vpin_auto_span_s, pr.vpin_auto_warmup_s,
                    self.vp_size, self.vp_cur, self.vp_fill, self.vp_buy, self.vp_sell,
                    self.vp_imb, self.vp_vol, self.vp_n, self.vp_rate, self.vp_rt,
                    self.vp_t0)  # fmt: skip
        bipower_update(pair_id, t, price, pr.bv_interval_s, pr.bv_tau_s, self.bv_k, self.bv_l0,
                       self.bv_l1, self.bv_t1, self.bv_prev, self.bv_bv, self.bv_rv,
                       self.bv_tref, self.bv_n, self.late)  # fmt: skip
        drawdown_update(pair_id, t, price, pr.drawdown_tau_s, self.dd_lp, self.dd_t, self.dd_lhi,
                        self.dd_llo, self.late)  # fmt: skip
        return int(t.shape[0])

    def read(
        self, now_s: float, n_pairs: int, liq_rate_at: F64, trd_rate_at: F64 | None = None
    ) -> MicroReadout:
        """Values of the first ``n_pairs`` pairs at ``now_s``.

        ``liq_rate_at[p, side, h]``: liquidation rates (long=0, short=1, unknown=2) decayed to
        ``now_s`` over ``params.horizons_s``, as ``kernels.flow_rates_at`` writes them.
        ``trd_rate_at[p, h]``: the traded notional rates at ``now_s``, when the caller keeps them
        (``own_traded_rate = False``: RiskState already decays traded notional per taker side, so
        the trades need not pay for it twice); by default the state's own.
        """
        pr, n = self.params, n_pairs
        if not 0 <= n <= self.capacity:
            raise ValueError(f"n_pairs must be in [0, {self.capacity}], got {n}")
        if (
            liq_rate_at.ndim != 3
            or liq_rate_at.shape[0] < n
            or liq_rate_at.shape[2] != len(self.tau)
        ):
            raise ValueError("liq_rate_at must be [>= n_pairs, sides, len(horizons_s)]")
        nh = len(self.tau)
        imb, share = np.empty((n, nh)), np.empty((n, nh))
        if trd_rate_at is None:
            if not self.own_traded_rate:
                raise ValueError("own_traded_rate is off: pass trd_rate_at")
            trd = np.empty((n, nh))
            notional_rates_at(now_s, self.tau, self.trd_rate, self.trd_t, n, trd)
        else:
            if trd_rate_at.shape[0] < n or trd_rate_at.shape[1] != nh:
                raise ValueError("trd_rate_at must be [>= n_pairs, len(horizons_s)]")
            trd = trd_rate_at[:n]
        imbalance_at(liq_rate_at, n, imb)
        liq_share_at(liq_rate_at, trd, n, share)
        x, mean, sd, z, sat = (np.empty(n) for _ in range(5))
        baseline_at(now_s, pr.baseline_sample_s, pr.baseline_horizon_s, pr.baseline_tau_s,
                    pr.baseline_warmup_s, self.bl_rate, self.bl_t, self.bl_k, self.bl_w,
                    self.bl_m1, self.bl_m2, self.bl_n, n, x, mean, sd, z)  # fmt: skip
        saturation_at(now_s, pr.saturation_slot_s, pr.saturation_tau_s, self.sat_f,
                      self.sat_k_last, self.sat_k_first, n, sat)  # fmt: skip
        lam, ami, vpin, size = (np.empty(n) for _ in range(4))
        kyle_at(now_s, pr.kyle_bucket_s, pr.kyle_tau_s, pr.kyle_min_buckets, self.ky_k, self.ky_l0,
                self.ky_l1, self.ky_s, self.ky_v, self.ky_k_obs, self.ky_w, self.ky_mx, self.ky_my,
                self.ky_cxx, self.ky_cxy, self.ky_am, self.ky_n, n, lam, ami)  # fmt: skip
        vpin_at(pr.vpin_auto_span_s, pr.vpin_auto_warmup_s, self.vp_size, self.vp_cur,
                self.vp_imb, self.vp_vol, self.vp_n, self.vp_rate, self.vp_rt, self.vp_t0, n,
                vpin, size)  # fmt: skip
        bv, rv, jump, down, up = (np.empty(n) for _ in range(5))
        bipower_at(now_s, pr.bv_interval_s, pr.bv_tau_s, pr.bv_min_returns, self.bv_k, self.bv_l0,
                   self.bv_l1, self.bv_prev, self.bv_bv, self.bv_rv, self.bv_tref, self.bv_n, n,
                   bv, rv, jump)  # fmt: skip
        drawdown_at(now_s, pr.drawdown_tau_s, self.dd_lp, self.dd_t, self.dd_lhi, self.dd_llo, n,
                    down, up)  # fmt: skip
        return MicroReadout(
            now_s=now_s, horizons_s=pr.horizons_s, trd_rate=trd, imbalance=imb, liq_share=share,
            liq_rate_60s=x, baseline_mean=mean, baseline_sd=sd, liq_rate_z=z, saturation=sat,
            kyle_lambda=lam, amihud=ami, vpin=vpin, vpin_bucket_usd=size, bipower=bv,
            realized_var=rv, jump_share=jump, drawdown=down, drawup=up,
            rejected=self.rejected[:n].copy(), late=self.late[:n].copy(),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class MicroReadout:
    """Per-pair values at ``now_s`` (first axis = pair id). NaN where a value is not defined yet."""

    now_s: float
    horizons_s: tuple[float, ...]
    trd_rate: F64  # [n, h] traded notional rate, USD/s
    imbalance: F64  # [n, h] (L_long - L_short)/(L_long + L_short), in [-1, 1]
    liq_share: F64  # [n, h] liquidation rate / traded rate (not clipped)
    liq_rate_60s: F64  # [n] total liquidation rate over baseline_horizon_s, USD/s
    baseline_mean: F64  # [n] USD/s
    baseline_sd: F64  # [n] USD/s
    liq_rate_z: F64  # [n] (liq_rate_60s - mean)/sd
    saturation: F64  # [n] decayed fraction of 1 s slots with a liquidation, [0, 1]
    kyle_lambda: F64  # [n] log-return per sqrt(USD) of signed taker flow
    amihud: F64  # [n] |log-return| per USD traded, per bucket
    vpin: F64  # [n] in [0, 1]
    vpin_bucket_usd: F64  # [n] size of the open (or next) VPIN bucket, USD
    bipower: F64  # [n] decayed BV, variance per second
    realized_var: F64  # [n] decayed RV, variance per second
    jump_share: F64  # [n] max(0, 1 - BV/RV)
    drawdown: F64  # [n] 1 - P/decayed high, [0, 1]
    drawup: F64  # [n] 1 - decayed low/P, [0, 1]
    rejected: I64  # [n] unusable rows seen
    late: I64  # [n, N_LATE] late events ignored per model (LATE_* columns)
