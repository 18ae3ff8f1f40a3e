"""Margin stress read from the liquidation map: notional at risk near the price, expected
liquidations over a horizon, the margin stress index and the liquidation density
(docs/risk-models.md §6). Pure (numpy + numba).

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

import math
from typing import Final

import numpy as np

from consumers.models.jit import F64, I64, njit
from consumers.models.liquidation_map_update import DECAYED, HELD
from consumers.models.liquidation_price import LONG, SHORT

SQRT2: Final = math.sqrt(2.0)


@njit
def norm_cdf(x: float) -> float:
    """Standard normal CDF, accurate in both tails (erfc, no cancellation)."""
    return 0.5 * math.erfc(-x / SQRT2)


@njit
def liqmap_read(
    now: float, sigma: F64, horizon_s: float, traded_usd: F64, levels_pct: F64,
    density_pct: float, bins_per_unit: float, decay_per_s: float,
    mass: F64, scale: F64, anchor_k: I64, price_k: I64, last_price: F64, t_last: F64, acc: F64,
    rows: I64,
    at_risk: F64, expected: F64, density: F64, msi: F64, totals: F64,
) -> None:  # fmt: skip
    """Read-outs at ``now`` of pair ``rows[i]`` into index ``i`` (see the module docstring).

    ``sigma[i]`` and ``traded_usd[i]`` are read-outs of the same pair. Outputs:
    ``at_risk[i, side, level]``, ``expected[i, side]``, ``density[i, side]`` (USD per unit ln P),
    ``msi[i]``, ``totals[i, side, ACC_FIELDS]`` (accumulators decayed to ``now``; a pair whose
    clock is later than ``now`` is read at its clock). NaN where there is no price.
    """
    n = mass.shape[2]
    n_lv = levels_pct.shape[0]
    for i in range(rows.shape[0]):
        p = rows[i]
        dt = now - t_last[p]
        x = decay_per_s * dt if dt > 0.0 and decay_per_s > 0.0 else 0.0  # no 0 * inf
        f = math.exp(-x)
        g = -math.expm1(-x)
        for s in range(2):
            for a in range(5):
                totals[i, s, a] = acc[p, s, a]
            totals[i, s, DECAYED] += acc[p, s, HELD] * g
            totals[i, s, HELD] = acc[p, s, HELD] * f
        if t_last[p] == -math.inf:
            at_risk[i] = np.nan
            expected[i] = np.nan
            density[i] = np.nan
            msi[i] = np.nan
            continue
        sc = scale[p] * f
        x = math.log(last_price[p]) * bins_per_unit
        k0 = anchor_k[p]
        ib = price_k[p] - k0
        sig = sigma[i]
        usable = math.isfinite(sig) and sig >= 0.0 and math.isfinite(horizon_s) and horizon_s >= 0.0
        sd = sig * math.sqrt(horizon_s) if usable else 0.0
        for s in range(2):
            for j in range(n_lv):
                at_risk[i, s, j] = 0.0
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
                        at_risk[i, s, j] += amt
                if d <= density_pct / 100.0:
                    near += amt
                if sd > 0.0:
                    e_sum += amt * 2.0 * norm_cdf(-d / sd)
            expected[i, s] = e_sum if usable else np.nan
            density[i, s] = near / (density_pct / 100.0)
        tr = traded_usd[i]
        e_tot = expected[i, LONG] + expected[i, SHORT]
        msi[i] = e_tot / tr if (math.isfinite(tr) and tr > 0.0) else np.nan
