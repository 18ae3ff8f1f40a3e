"""Price impact: Kyle's lambda and the Amihud ratio (docs/risk-models.md §3). Pure (numpy + numba).

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
lambda as price impact per unit of signed order flow; the square-root flow is docs/risk-models.md §3.
Because the impact is square-root, ``n_struct = lambda_K * l`` is dimensionless only once
linearised at a move size: see ``consumers.models.feedback``.

Out of order: a trade in an already closed bucket is ignored and counted in
``late[p, LATE_KYLE]``; inside the open one its flow counts but its price replaces ``P_end`` only
if it is not older than the current ``P_end``. Read-outs fold the open bucket in (on a copy) once
``now`` is past its end.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from consumers.models.jit import F64, I8, I32, I64, NO_INTERVAL, njit
from consumers.models.screening import BUY, LATE_KYLE, usable_trade

MIN_OBS_USD: Final = 1e-6  # a bucket with less traded notional is no observation
_DEGENERATE_VAR: Final = 1e-10  # Var_w(S) below this share of E_w[S^2] reads as NaN


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
        if not (0 <= p < n_p and usable_trade(ti, side[i], q, price[i])):
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
    w: F64, mx: F64, my: F64, cxx: F64, cxy: F64, am: F64, n_obs: I64, rows: I64,
    out_lambda: F64, out_amihud: F64,
) -> None:  # fmt: skip
    """``lambda_K`` (log-return per sqrt(USD)) and Amihud (log-return per USD) at ``now`` of pair
    ``rows[i]`` into index ``i`` of the outputs.

    The open bucket is folded in (on a copy) once ``now`` is past its end.
    """
    k_now = math.floor(now / bucket_s)
    for i in range(rows.shape[0]):
        p = rows[i]
        wp, a, b, sxx, sxy, amp, n = w[p], mx[p], my[p], cxx[p], cxy[p], am[p], n_obs[p]
        cur = k_open[p]
        if cur != NO_INTERVAL and k_now > cur:
            wp, a, b, sxx, sxy, amp, folded = _kyle_fold(
                cur, k_obs[p], n, l0[p], l1[p], s_acc[p], v_acc[p], bucket_s / tau_s,
                wp, a, b, sxx, sxy, amp,
            )  # fmt: skip
            n += 1 if folded else 0
        out_lambda[i] = out_amihud[i] = np.nan
        if n < min_buckets:
            continue
        out_amihud[i] = amp
        var = sxx / wp
        if var > _DEGENERATE_VAR * (var + a * a):
            out_lambda[i] = sxy / sxx
