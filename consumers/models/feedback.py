"""The structural feedback ratio ``n_struct`` (docs/risk-models.md §3): how much further the liquidations
that a price move triggers would move the price. Pure (numpy only).

With Kyle's lambda ``lambda_K`` (``consumers.models.kyle_lambda``: log-return per sqrt USD of
signed taker flow) and the liquidation map's density ``l`` in the direction of the move
(``consumers.models.margin_stress``: USD per unit log move), a log move ``x`` triggers
``Q = l*x`` of liquidations; executed as one taker sweep they move the price ``lambda_K*sqrt(Q)``,
so ``n_struct = lambda_K*sqrt(l*x)/x``: dimensionless, larger for small moves, and >= 1 a
self-sustaining spiral (Brunnermeier & Pedersen 2009). The read-out takes ``x = 1%``
(``FEEDBACK_MOVE``): ``down`` with the long levels below the price, ``up`` with the short levels
above.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

FEEDBACK_MOVE: Final = 0.01  # n_struct at a 1% (log) move


def feedback_ratio(lambda_k: float, density_usd: float, move: float) -> float:
    """``n_struct`` at a log move ``move`` (> 0) under the square-root impact law (one pair).

    ``density_usd`` is the liquidation notional per unit log move in the direction of the move (USD;
    the map's ``l`` times the price if it is per unit price). The move triggers ``Q = density*move``
    of liquidations; executed as one taker sweep they move the price ``lambda_K*sqrt(Q)``, so
    ``n_struct = lambda_K*sqrt(density*move)/move``: dimensionless, and larger for small moves.
    """
    if not move > 0.0:
        raise ValueError("move must be > 0 (a log return)")
    return lambda_k * math.sqrt(max(density_usd, 0.0) * move) / move


def structural_feedback(
    lambda_k: F64, density_usd_per_log: F64, move: float = FEEDBACK_MOVE
) -> F64:
    """``n_struct`` per pair ``[n, 2]`` (down, up) from ``lambda_K[n]`` and the map's densities
    ``[n, 2]`` (long levels below, short levels above; USD per unit ln P); NaN where either is."""
    out = np.full((lambda_k.shape[0], 2), np.nan)
    for col in (0, 1):
        dens = density_usd_per_log[:, col]
        with np.errstate(invalid="ignore"):
            out[:, col] = lambda_k * np.sqrt(np.maximum(dens, 0.0) * move) / move
    return out
