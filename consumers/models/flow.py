"""Decayed notional flow: liquidation and traded-notional rates, and what is read from them
(docs/risk-models.md §1). Pure (numpy + numba).

Per pair ``p`` and side ``s`` (liquidated side long=0 / short=1 / unknown=2, or taker side buy=0 /
sell=1 for trades), per horizon ``tau[h]`` (``flow_update``, ``flow_rates_at``):

* ``rate[p, s, h]`` is the decayed notional rate (USD/s) as of ``t_last[p, s]``. An event at
  ``t >= t_last`` does ``L = L*exp(-(t - t_last)/tau) + q/tau`` and moves ``t_last``; an event
  slightly out of order (``t < t_last``) adds its contribution already decayed to ``t_last``,
  ``L += (q/tau)*exp(-(t_last - t)/tau)``, without moving ``t_last``. Both are exact for the linear
  sum ``L(t_last) = sum_i (q_i/tau) exp(-(t_last - t_i)/tau)``, so arrival order does not matter.
* ``cum[p, s]`` / ``count[p, s]``: cumulative notional and event count, summed in arrival order.

Read from the liquidation rates already decayed to the same time (``flow_rates_at``):

* ``imbalance = (L_long - L_short)/(L_long + L_short)`` per horizon; NaN when both are 0.
* ``liq_share = sum_sides L / T`` per horizon, ``T`` the traded-notional rate (both taker sides,
  ``notional_rate_update``: the same decay, one slot per pair). NaN when ``T = 0``. Not clipped:
  liquidation and trade feeds differ by venue (sampled liquidation feeds are lower bounds, see
  ``consumers.models.saturation``).

The update kernels expect screened rows (``consumers.models.screening``); ``notional_rate_update``
skips unusable ones itself, as every microstructure kernel does.
"""

from __future__ import annotations

import math

import numpy as np

from consumers.models.jit import F64, I8, I32, I64, njit
from consumers.models.screening import usable


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
def flow_rates_at(now: float, tau: F64, rate: F64, t_last: F64, rows: I64, out: F64) -> None:
    """Decayed rates at ``now`` of pair ``rows[i]`` into ``out[i]`` (``[i, side, h]``).

    A slot whose last event is later than ``now`` reads its value at ``t_last`` (never grown back).
    """
    n_s = rate.shape[1]
    n_h = tau.shape[0]
    for i in range(rows.shape[0]):
        p = rows[i]
        for s in range(n_s):
            dt = now - t_last[p, s]
            if dt > 0.0:
                for h in range(n_h):
                    out[i, s, h] = rate[p, s, h] * math.exp(-dt / tau[h])
            else:
                for h in range(n_h):
                    out[i, s, h] = rate[p, s, h]


@njit
def notional_rate_update(
    pair_id: I32, t: F64, notional: F64, tau: F64, rate: F64, t_last: F64
) -> None:
    """``rate[p, h]``: decayed notional rate (USD/s) as of ``t_last[p]``; flow_update's form."""
    n_p, n_h = rate.shape[0], tau.shape[0]
    for i in range(t.shape[0]):
        p = pair_id[i]
        ti, q = t[i], notional[i]
        if not (0 <= p < n_p and usable(ti, q)):
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
def notional_rates_at(now: float, tau: F64, rate: F64, t_last: F64, rows: I64, out: F64) -> None:
    """Pair ``rows[i]``'s rates decayed to ``now`` into ``out[i]`` (a pair whose last event is
    later reads its value at ``t_last``)."""
    for i in range(rows.shape[0]):
        p = rows[i]
        dt = now - t_last[p]
        for h in range(tau.shape[0]):
            out[i, h] = rate[p, h] * math.exp(-dt / tau[h]) if dt > 0.0 else rate[p, h]


@njit
def imbalance_at(liq_rate_at: F64, rows: I64, out: F64) -> None:
    """``(L_long - L_short)/(L_long + L_short)`` from rates ``[i, side, h]`` decayed to one time
    (a read-out: row ``i`` is pair ``rows[i]``'s, as ``out[i]``)."""
    for i in range(rows.shape[0]):
        for h in range(liq_rate_at.shape[2]):
            lo, sh = liq_rate_at[i, 0, h], liq_rate_at[i, 1, h]
            tot = lo + sh
            out[i, h] = (lo - sh) / tot if tot > 0.0 else np.nan


@njit
def liq_share_at(liq_rate_at: F64, trd_rate_at: F64, rows: I64, out: F64) -> None:
    """Liquidation rate (all sides) / traded-notional rate, per horizon; NaN with no trade flow.
    Both inputs are read-outs indexed like ``out`` (row ``i`` is pair ``rows[i]``'s)."""
    for i in range(rows.shape[0]):
        for h in range(liq_rate_at.shape[2]):
            liq = 0.0
            for s in range(liq_rate_at.shape[1]):
                liq += liq_rate_at[i, s, h]
            trd = trd_rate_at[i, h]
            out[i, h] = liq / trd if trd > 0.0 else np.nan
