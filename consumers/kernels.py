"""Numba kernels over per-pair struct-of-arrays risk state. Pure module (numpy + numba only).

Every kernel takes NumPy arrays and scalars only, writes into preallocated arrays, touches no Python
object or global, and is compiled with ``cache=True``. State is indexed by a dense pair id
(``consumers.state.RiskState`` owns the arrays, assigns the ids and checks dtypes). Time is event
time in seconds (float64). Each kernel has a slow, obvious pure-Python reference in
``tests/consumers/consumer_refs.py``.

Flow (risk-models.md s1), per pair ``p`` and side ``s`` (liquidated side long=0 / short=1 /
unknown=2, or taker side buy=0 / sell=1 for trades), per horizon ``tau[h]``:

* ``rate[p, s, h]`` is the decayed notional rate (USD/s) as of ``t_last[p, s]``. An event at
  ``t >= t_last`` does ``L = L*exp(-(t - t_last)/tau) + q/tau`` and moves ``t_last``; an event
  slightly out of order (``t < t_last``) adds its contribution already decayed to ``t_last``,
  ``L += (q/tau)*exp(-(t_last - t)/tau)``, without moving ``t_last``. Both are exact for the linear
  sum ``L(t_last) = sum_i (q_i/tau) exp(-(t_last - t_i)/tau)``, so arrival order does not matter.
* ``cum[p, s]`` / ``count[p, s]``: cumulative notional and event count, summed in arrival order.

``screen_rows`` marks usable input rows (finite time and notional >= 0, known side, price > 0) so
the update kernels never see NaN or negative values.

Price and volatility (risk-models.md s5), per pair, on a fixed sampling interval ``dt``:
``interval[p]`` is the index ``floor(t/dt)`` of the last trade's interval, ``ref_price[p]`` the
price at the end of the previous closed interval, ``last_price[p]`` the last trade's price. A trade
in a later interval ``k`` closes the current one with ``r = ln(last/ref)``,
``s2 = lam*s2 + (1-lam)*r^2``, decays ``s2`` by ``lam**(k - interval - 1)`` for the empty intervals in
between (return 0), and sets ``ref = last``. Trades in an older interval change nothing here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

F = TypeVar("F", bound=Callable[..., object])

NO_INTERVAL: Final = np.iinfo(np.int64).min  # interval[p] of a pair that has seen no trade

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def njit(fn: F) -> F:
    """``numba.njit(cache=True)`` that keeps the function's signature for mypy."""
    return cast(F, numba.njit(cache=True)(fn))


# ---- input screening --------------------------------------------------------------------------


@njit
def screen_rows(
    t: F64, side: I8, notional: F64, price: F64, n_sides: int, ok: npt.NDArray[np.bool_]
) -> tuple[int, float]:
    """Mark usable rows in ``ok``; return (rows rejected, latest usable time or -inf).

    Usable: finite time, side code in [0, n_sides), finite notional >= 0, and, when ``price`` is
    not empty, a finite price > 0.
    """
    n_bad = 0
    t_max = -np.inf
    has_price = price.shape[0] > 0
    for i in range(t.shape[0]):
        good = (
            math.isfinite(t[i])
            and 0 <= side[i] < n_sides
            and math.isfinite(notional[i])
            and notional[i] >= 0.0
        )
        if has_price:
            good = good and math.isfinite(price[i]) and price[i] > 0.0
        ok[i] = good
        if good:
            t_max = max(t_max, t[i])
        else:
            n_bad += 1
    return n_bad, t_max


# ---- decayed flow -----------------------------------------------------------------------------


@njit
def flow_update(
    pair_id: I32,
    side: I8,
    t: F64,
    notional: F64,
    tau: F64,
    rate: F64,  # [pairs, sides, horizons]
    t_last: F64,  # [pairs, sides], -inf before the first event
    cum: F64,  # [pairs, sides]
    count: I64,  # [pairs, sides]
) -> None:
    """Apply events in arrival order to the decayed rates and cumulative sums of their slot."""
    n_h = tau.shape[0]
    for i in range(pair_id.shape[0]):
        p = pair_id[i]
        s = side[i]
        ti = t[i]
        q = notional[i]
        tl = t_last[p, s]
        if ti >= tl:
            dt = ti - tl  # +inf for the first event: exp(-inf) = 0 and the state is 0 anyway
            for h in range(n_h):
                rate[p, s, h] = rate[p, s, h] * math.exp(-dt / tau[h]) + q / tau[h]
            t_last[p, s] = ti
        else:
            dt = tl - ti
            for h in range(n_h):
                rate[p, s, h] += (q / tau[h]) * math.exp(-dt / tau[h])
        cum[p, s] += q
        count[p, s] += 1


@njit
def flow_rates_at(now: float, tau: F64, rate: F64, t_last: F64, n_pairs: int, out: F64) -> None:
    """Decayed rates of the first ``n_pairs`` pairs at ``now`` into ``out[:n_pairs]``.

    A slot whose last event is later than ``now`` reads its value at ``t_last`` (never grown back).
    """
    n_s = rate.shape[1]
    n_h = tau.shape[0]
    for p in range(n_pairs):
        for s in range(n_s):
            dt = now - t_last[p, s]
            if dt > 0.0:
                for h in range(n_h):
                    out[p, s, h] = rate[p, s, h] * math.exp(-dt / tau[h])
            else:
                for h in range(n_h):
                    out[p, s, h] = rate[p, s, h]


# ---- price and EWMA volatility ----------------------------------------------------------------


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
    n_pairs: int,
    out: F64,
) -> None:
    """EWMA variance per interval at ``now``, as the next trade at ``now`` would see it.

    Intervals that ended before ``now`` are closed (the open one with its return, later ones empty);
    NaN for pairs that have no closed interval yet.
    """
    k_now = np.int64(math.floor(now / dt))
    for p in range(n_pairs):
        cur = interval[p]
        if cur == NO_INTERVAL:
            out[p] = np.nan
        elif k_now > cur:
            out[p] = _closed_variance(s2[p], last_price[p], ref_price[p], lam, k_now - cur)
        elif n_intervals[p] > 0:
            out[p] = s2[p]
        else:
            out[p] = np.nan
