"""Last price and EWMA volatility (docs/risk-models.md §5). Pure (numpy + numba).

Per pair, on a fixed sampling interval ``dt``: ``interval[p]`` is the index ``floor(t/dt)`` of the
last trade's interval, ``ref_price[p]`` the price at the end of the previous closed interval,
``last_price[p]`` the last trade's price. A trade in a later interval ``k`` closes the current one
with ``r = ln(last/ref)``, ``s2 = lam*s2 + (1-lam)*r^2`` (RiskMetrics, ``lam`` = 0.94 by default),
decays ``s2`` by ``lam**(k - interval - 1)`` for the empty intervals in between (return 0), and
sets ``ref = last``. Trades in an older interval change nothing here.
"""

from __future__ import annotations

import math

import numpy as np

from consumers.models.jit import F64, I32, I64, NO_INTERVAL, njit


@njit
def _closed_variance(s2: float, last: float, ref: float, lam: float, n_intervals: int) -> float:
    """``s2`` after closing the current interval and ``n_intervals - 1`` empty ones after it."""
    r = math.log(last / ref)
    v = lam * s2 + (1.0 - lam) * r * r
    if n_intervals > 1:
        v *= math.pow(lam, float(n_intervals - 1))
    return v


@njit
def price_update(
    pair_id: I32,
    t: F64,
    price: F64,
    dt: float,
    lam: float,
    last_price: F64,
    ref_price: F64,
    interval: I64,  # NO_INTERVAL before the first trade
    s2: F64,
    n_intervals: I64,  # intervals folded into s2 (closed ones, empty ones included)
) -> None:
    """Apply trades in arrival order to the last price and the interval-sampled EWMA variance."""
    for i in range(pair_id.shape[0]):
        p = pair_id[i]
        k = np.int64(math.floor(t[i] / dt))
        cur = interval[p]
        if cur == NO_INTERVAL:
            last_price[p] = price[i]
            ref_price[p] = price[i]
            interval[p] = k
        elif k == cur:
            last_price[p] = price[i]
        elif k > cur:
            s2[p] = _closed_variance(s2[p], last_price[p], ref_price[p], lam, k - cur)
            n_intervals[p] += k - cur
            ref_price[p] = last_price[p]
            last_price[p] = price[i]
            interval[p] = k
        # else: an interval already closed; the variance is not rewritten


@njit
def variance_at(
    now: float,
    dt: float,
    lam: float,
    last_price: F64,
    ref_price: F64,
    interval: I64,
    s2: F64,
    n_intervals: I64,
    rows: I64,
    out: F64,
) -> None:
    """EWMA variance per interval at ``now`` of pair ``rows[i]`` into ``out[i]``, as the next
    trade at ``now`` would see it.

    Intervals that ended before ``now`` are closed (the open one with its return, later ones empty);
    NaN for pairs that have no closed interval yet.
    """
    k_now = np.int64(math.floor(now / dt))
    for i in range(rows.shape[0]):
        p = rows[i]
        cur = interval[p]
        if cur == NO_INTERVAL:
            out[i] = np.nan
        elif k_now > cur:
            out[i] = _closed_variance(s2[p], last_price[p], ref_price[p], lam, k_now - cur)
        elif n_intervals[p] > 0:
            out[i] = s2[p]
        else:
            out[i] = np.nan
