"""Which input rows the kernels may use. Pure (numpy + numba).

``screen_rows`` is ``RiskState``'s screen before the flow and volatility kernels (and every model):
it marks usable rows (finite time and notional >= 0, known side, price > 0) so the update kernels
never see NaN or negative values.

The microstructure kernels (``consumers.models.microstructure`` runs them) also skip, each on its
own, every row they cannot use (pair id outside the arrays, non-finite or ``|t| > MAX_ABS_T_S``
time, notional not in ``[0, MAX_NOTIONAL_USD]``, side outside ``[0, 2)`` or price not finite and
> 0 where used: ``usable``, ``usable_trade``), so NaN, inf and negative values never reach their
state; ``screen_events`` marks and counts such rows per pair for the caller. ``start_clocks``
starts a pair's baseline grid and saturation slot count at its first event of any kind. An event
older than what a model has closed (a Kyle bucket, a bipower interval, ...) is ignored by that
model and counted in ``late[p, LATE_*]``. Trade sides are taker codes buy=0 / sell=1
(``consumers.columns.TAKER_SIDES``).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from consumers.models.jit import B1, F64, I8, I32, I64, NO_INTERVAL, njit

MAX_ABS_T_S: Final = 1e12  # |event time| accepted, s (keeps floor(t/dt) inside int64)
MAX_NOTIONAL_USD: Final = 1e15  # notional accepted per event, USD
BUY: Final = 0  # taker side code of a buy (consumers.columns.TAKER_SIDES)
LATE_SATURATION, LATE_KYLE, LATE_BIPOWER, LATE_DRAWDOWN = 0, 1, 2, 3
N_LATE: Final = 4


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


@njit
def usable(t: float, q: float) -> bool:
    return math.isfinite(t) and abs(t) <= MAX_ABS_T_S and 0.0 <= q <= MAX_NOTIONAL_USD


@njit
def usable_trade(t: float, side: int, q: float, px: float) -> bool:
    return usable(t, q) and 0 <= side < 2 and math.isfinite(px) and px > 0.0


@njit
def screen_events(
    pair_id: I32, t: F64, side: I8, notional: F64, price: F64, ok: B1, rejected: I64
) -> int:
    """Mark usable rows in ``ok``, count unusable ones in ``rejected[p]``; return the rows rejected.

    Usable: pair id in ``[0, len(rejected))``, the ``usable`` time and notional, and, when ``side``
    / ``price`` are not empty, a taker side in {0, 1} / a finite price > 0. Rows of an unknown pair
    are in the return value only.
    """
    n_p = rejected.shape[0]
    has_side = side.shape[0] > 0
    has_price = price.shape[0] > 0
    n_bad = 0
    for i in range(t.shape[0]):
        p = pair_id[i]
        good = 0 <= p < n_p and usable(t[i], notional[i])
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
        if not (0 <= p < n_p and usable(t[i], 0.0)):
            continue
        if bl_k[p] == NO_INTERVAL:
            bl_k[p] = math.floor(t[i] / sample_s)
        if sat_first[p] == NO_INTERVAL:
            sat_first[p] = math.floor(t[i] / slot_s)
