"""Drawdown from a decayed high, and drawup from a decayed low (docs/risk-models.md §5). Pure (numpy +
numba).

The high relaxes in log price toward the prevailing (last) price with time constant
``drawdown_tau_s`` (1 h) and jumps to any higher trade: at a trade ``(t, P)`` after the previous
``(t0, P0)``: ``ln H = max(ln P, ln P0 + (ln H - ln P0)*exp(-(t - t0)/tau))``;
``drawdown = 1 - P/H`` in [0, 1] (1.0 only when P/H underflows). Mirrored with a decayed low for
shorts: ``drawup = 1 - L/P`` in [0, 1].

Out of order: a trade older than the last applied one is ignored and counted in
``late[p, LATE_DRAWDOWN]``.
"""

from __future__ import annotations

import math

import numpy as np

from consumers.models.jit import F64, I32, I64, njit
from consumers.models.screening import LATE_DRAWDOWN, usable


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
        if not (0 <= p < n_p and usable(ti, 0.0) and math.isfinite(px) and px > 0.0):
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
    now: float, tau_s: float, lp: F64, t_last: F64, lhi: F64, llo: F64, rows: I64,
    out_down: F64, out_up: F64,
) -> None:  # fmt: skip
    """``1 - P/H`` and ``1 - L/P`` at ``now`` of pair ``rows[i]`` into index ``i`` of the outputs
    (NaN before the first trade)."""
    for i in range(rows.shape[0]):
        p = rows[i]
        if math.isnan(lp[p]):
            out_down[i] = out_up[i] = np.nan
            continue
        dt = now - t_last[p]
        f = math.exp(-dt / tau_s) if dt > 0.0 else 1.0
        out_down[i] = -math.expm1(-(lhi[p] - lp[p]) * f)
        out_up[i] = -math.expm1(-(lp[p] - llo[p]) * f)
