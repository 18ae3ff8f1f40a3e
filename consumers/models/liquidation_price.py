"""Where a leveraged position is liquidated, and in which bin of the liquidation map's log-price
lattice that level falls (docs/risk-models.md §6). Pure (numpy + numba).

Liquidation price, one-way isolated margin, Binance USD-M form (docs/risk-models.md §6; Binance "How to
calculate liquidation price of USDS-M futures", isolated: wallet balance = N/L, ``cum`` = the
maintenance amount of the notional tier):

* long ``LP = EP*(1 - 1/L - cum_k/N)/(1 - MMR_k)``, short ``LP = EP*(1 + 1/L + cum_k/N)/(1 + MMR_k)``;
  tier ``k`` is the last one whose floor is <= the position notional ``N``;
  ``cum_0 = 0``, ``cum_k = cum_{k-1} + floor_k*(MMR_k - MMR_{k-1})``. With
  ``use_maintenance_amount=False`` ``cum`` is 0 and this is the doc's ``EP*(1 -/+ 1/L)/(1 -/+ MMR)``.
* the leverage is capped at the tier's maximum (the exchange refuses more), so LP stays on the far
  side of EP. Defaults: BTCUSDT tiers seen in 2021 (floors 0/50k/250k/1M USD, MMR 0.4/0.5/1/2.5%,
  max leverage 125/100/50/20x, cum 0/50/1300/16300 USD).
* the position notional ``N`` that picks the tier: a trade deposit is one taker order, taken as one
  position of the trade's notional; an open-interest deposit aggregates many positions of unknown
  size and uses ``oi_position_usd`` (default 10k USD, first tier).

Level bins are exactly ``floor(ln(LP)*bins_per_unit)`` of the formula above, computed cheaply: in
the first notional tier (``cum_0 = 0``) ``LP = EP*r_j`` with ``r_j`` fixed per side and leverage
bucket, so a deposit takes ``u = ln(EP)*bins_per_unit + ln(r_j)*bins_per_unit`` (``level_offsets``,
once per kernel call) and ``floor(u)``: one log per event instead of a division and a log per
bucket. The two roundings differ by a few 1e-16 relative, which can move a level across a bin edge
(measured: 0.6-7% of entry prices placed within 40 ulps of an edge); so wherever ``u`` lies within
``LEVEL_GUARD*(|ln EP| + max_j |ln r_j| + 1)*bins_per_unit`` of an integer (1e-12 relative, ~2,500
times the largest disagreement measured), and for higher tiers and ``|ln LP| >= 600``, the formula
itself decides (``level_bin``). The bins are the formula's, bit for bit, with no rule of its own.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from consumers.models.jit import F64, njit

LONG: Final = 0
SHORT: Final = 1
LEVEL_GUARD: Final = 1e-12  # bin-edge guard of the first-tier shortcut, relative (see docstring)
LOG_SAFE: Final = 600.0  # the shortcut only for |ln LP| below this (no under/overflow in LP)
NO_LEVEL: Final = np.iinfo(np.int64).min  # level_bin of a level that is not finite and > 0


@njit
def liquidation_price(
    side: int, ep: float, leverage: float, position_usd: float, tiers: F64
) -> float:
    """Isolated-margin liquidation price; ``tiers`` rows: floor USD, MMR, cum USD, max leverage."""
    k = 0
    while k + 1 < tiers.shape[1] and position_usd >= tiers[0, k + 1]:
        k += 1
    mmr = tiers[1, k]
    lev = min(leverage, tiers[3, k])
    c = tiers[2, k] / position_usd if tiers[2, k] > 0.0 else 0.0
    if side == LONG:
        return float(ep * (1.0 - 1.0 / lev - c) / (1.0 - mmr))
    return float(ep * (1.0 + 1.0 / lev + c) / (1.0 + mmr))


@njit
def level_offsets(tiers: F64, buckets: F64, bins_per_unit: float) -> tuple[F64, float]:
    """First notional tier: ``ln(LP/EP)*bins_per_unit`` per ``[side, bucket]`` (NaN where the
    level is not > 0) and the largest finite ``|ln(LP/EP)|``."""
    out = np.empty((2, buckets.shape[1]))
    big = 0.0
    for s in range(2):
        for j in range(buckets.shape[1]):
            r = liquidation_price(s, 1.0, buckets[0, j], 0.0, tiers)
            if r > 0.0 and math.isfinite(r):
                out[s, j] = math.log(r) * bins_per_unit
                big = max(big, abs(math.log(r)))
            else:
                out[s, j] = np.nan
    return out, big


@njit
def level_bin(
    side: int, ep: float, leverage: float, position_usd: float, tiers: F64, bins_per_unit: float
) -> int:
    """``floor(ln(LP)*bins_per_unit)`` by the tiered formula; ``NO_LEVEL`` unless LP is finite and
    > 0."""
    lp = liquidation_price(side, ep, leverage, position_usd, tiers)
    if not (math.isfinite(lp) and lp > 0.0):
        return NO_LEVEL
    return math.floor(math.log(lp) * bins_per_unit)


@njit
def first_tier_bin(u: float, tol: float, u_max: float) -> int:
    """``floor(u)`` for the first-tier shortcut ``u = ln(EP)*bins_per_unit + offset``; ``NO_LEVEL``
    (use the formula) when ``u`` is NaN, not below ``u_max`` or within ``tol`` of a bin edge."""
    if abs(u) < u_max:
        k = math.floor(u)
        if tol < u - k < 1.0 - tol:
            return k
    return NO_LEVEL
