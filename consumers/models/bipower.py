"""Bipower variation, realized variance and the jump share (docs/risk-models.md §5). Pure (numpy +
numba).

Fixed intervals ``k = floor(t/bv_interval_s)`` (5 s), previous-tick log prices (latest-stamped
trade of the interval). Returns are taken between consecutive intervals that carried trades (a
return spanning empty intervals is one return, so thin pairs show no spurious jumps from zero
neighbours) and stamped at their interval's end ``te``. Decayed sums in variance per second, the
flow form: ``RV = RV*exp(-(te - te_prev)/tau) + r^2/tau``,
``BV = BV*exp(...) + (pi/2)*|r_i|*|r_(i-1)|/tau`` (Barndorff-Nielsen & Shephard 2004), tau 900 s.
``jump_share = max(0, 1 - BV/RV)`` (the relative jump measure of Huang & Tauchen 2005), NaN until
``bv_min_returns`` returns. Read-outs close the open interval once ``now`` has passed its end, as
``volatility.variance_at`` does.

Out of order: a trade in an already closed interval is ignored and counted in
``late[p, LATE_BIPOWER]``; inside the open one its price replaces the interval's last price only
if it is not older than it.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from consumers.models.jit import F64, I32, I64, NO_INTERVAL, njit
from consumers.models.screening import LATE_BIPOWER, usable

_HALF_PI: Final = 0.5 * math.pi


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
        if not (0 <= p < n_p and usable(ti, 0.0) and math.isfinite(px) and px > 0.0):
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
    rows: I64, out_bv: F64, out_rv: F64, out_jump: F64,
) -> None:  # fmt: skip
    """BV and RV (variance per second) decayed to ``now`` and ``max(0, 1 - BV/RV)``, of pair
    ``rows[i]`` into index ``i`` of the outputs."""
    k_now = math.floor(now / interval_s)
    for i in range(rows.shape[0]):
        p = rows[i]
        b, r, tr, n = bv[p], rv[p], t_ref[p], n_ret[p]
        cur = k_open[p]
        if cur != NO_INTERVAL and k_now > cur and not math.isnan(l0[p]):
            b, r, tr, _ = _bv_fold(cur, l0[p], l1[p], prev[p], b, r, tr, interval_s, tau_s)
            n += 1
        out_bv[i] = out_rv[i] = out_jump[i] = np.nan
        if n == 0:
            continue
        d = math.exp(-(now - tr) / tau_s) if now > tr else 1.0
        out_bv[i], out_rv[i] = b * d, r * d
        if n >= min_returns and r > 0.0:
            out_jump[i] = max(0.0, 1.0 - b / r)
