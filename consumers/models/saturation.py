"""Saturation of a liquidation feed: the decayed fraction of time slots that carried a liquidation
(docs/risk-models.md §1, coverage). Pure (numpy + numba).

Slots ``k = floor(t/saturation_slot_s)`` (1 s); ``b_k = 1`` when slot ``k`` carried a liquidation.
``f = sum_k alpha*beta^(K - k)*b_k``, ``beta = exp(-slot/tau)`` (tau 60 s), divided by the weight of
every slot since the pair's first event, ``1 - beta^n``: the decayed fraction of slots with a
liquidation, in [0, 1]. Binance pushes at most one liquidation per symbol per second, Bitget the
largest per side per second: near 1 the feed is saturated and its sums are lower bounds (never
totals). Read-out over completed slots plus the current slot once it has a liquidation; NaN until
one time constant of slots.

Out of order: a late liquidation marks its slot if it lies within ``SLOT_WINDOW`` (62) slots of the
latest liquidation's slot (kept in a 62-bit mask, so the result is exact); older ones are ignored
and counted in ``late[p, LATE_SATURATION]``.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from consumers.models.jit import F64, I32, I64, NO_INTERVAL, njit
from consumers.models.screening import LATE_SATURATION, usable

SLOT_WINDOW: Final = 62  # slots behind the latest one where a late event still counts
_SLOT_MASK: Final = (1 << SLOT_WINDOW) - 1


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
        if not (0 <= p < n_p and usable(t[i], notional[i])):
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
    now: float, slot_s: float, tau_s: float, f: F64, k_last: I64, k_first: I64, rows: I64,
    out: F64,
) -> None:  # fmt: skip
    """Fraction of slots since the pair's first event that carried a liquidation, decayed, of
    pair ``rows[i]`` into ``out[i]``.

    Over the completed slots and the current one if it already has a liquidation; NaN until
    ``ceil(tau/slot)`` slots.
    """
    k_now = math.floor(now / slot_s)
    min_slots = math.ceil(tau_s / slot_s)
    for i in range(rows.shape[0]):
        p = rows[i]
        out[i] = np.nan
        if k_first[p] == NO_INTERVAL:
            continue
        kl = k_last[p]
        top = k_now - 1 if kl == NO_INTERVAL else max(kl, k_now - 1)
        n = top - k_first[p] + 1
        if n < min_slots:
            continue
        num = 0.0 if kl == NO_INTERVAL else f[p] * math.exp(-float(top - kl) * slot_s / tau_s)
        out[i] = min(1.0, num / -math.expm1(-float(n) * slot_s / tau_s))
