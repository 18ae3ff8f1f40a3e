"""Liquidation prices of isolated-margin positions with tiered maintenance margin. Pure module.

The Binance USD-M one-way isolated form (docs/risk-models.md §6). A position of ``Q`` base units
entered at ``EP`` with leverage ``L`` posts ``WB = Q*EP/L``; it is liquidated when its equity falls
to the maintenance margin ``Q*P*MMR - cum`` of its notional tier, which gives

* long:  ``LP = (Q*EP*(1 - 1/L) - cum) / (Q*(1 - MMR))``
* short: ``LP = (Q*EP*(1 + 1/L) + cum) / (Q*(1 + MMR))``

(``cum = 0`` reduces to ``EP*(1 - 1/L)/(1 - MMR)`` and ``EP*(1 + 1/L)/(1 + MMR)``). Tiers are data:
a ``MarginTiers`` of notional floors, maintenance rates and maximum leverages; the cumulative
amounts follow ``cum_k = cum_{k-1} + floor_k*(MMR_k - MMR_{k-1})``. The tier is chosen by the
position's notional at entry (Binance uses the notional at the mark price; at entry is the
simplification here), and a leverage above the tier's maximum is capped to it, as the venue refuses
to open such a position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MarginTiers:
    """Notional brackets: ``floors_usd[k]`` is where bracket ``k`` starts (the first is 0)."""

    floors_usd: tuple[float, ...]
    maintenance_rates: tuple[float, ...]
    max_leverages: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.floors_usd)
        if n == 0 or len(self.maintenance_rates) != n or len(self.max_leverages) != n:
            raise ValueError("tiers: floors, rates and leverages must have the same, non-zero size")
        if self.floors_usd[0] != 0.0 or any(
            b <= a for a, b in zip(self.floors_usd, self.floors_usd[1:], strict=False)
        ):
            raise ValueError(f"tiers: floors {self.floors_usd} must start at 0 and increase")
        for rate, lev in zip(self.maintenance_rates, self.max_leverages, strict=True):
            if not (0.0 < rate < 1.0 and lev >= 1.0 and 1.0 / lev > rate):
                raise ValueError(f"tier rate {rate} / max leverage {lev}: need 1/L > MMR")

    @property
    def cumulative_usd(self) -> tuple[float, ...]:
        """``cum_k = cum_{k-1} + floor_k*(MMR_k - MMR_{k-1})``, ``cum_0 = 0``."""
        cum = [0.0]
        for k in range(1, len(self.floors_usd)):
            step = self.floors_usd[k] * (self.maintenance_rates[k] - self.maintenance_rates[k - 1])
            cum.append(cum[-1] + step)
        return tuple(cum)

    def bracket(self, notional_usd: float) -> int:
        """Index of the bracket holding ``notional_usd``."""
        return int(np.searchsorted(self.floors_usd, notional_usd, side="right")) - 1


# The first four BTCUSDT brackets Binance published in 2021 (docs/risk-models.md §6): 0.4 % below
# $50k notional (125x), 0.5 % to $250k (100x), 1 % to $1M (50x), 2.5 % above (20x).
BINANCE_BTC_2021: Final = MarginTiers(
    floors_usd=(0.0, 50_000.0, 250_000.0, 1_000_000.0),
    maintenance_rates=(0.004, 0.005, 0.01, 0.025),
    max_leverages=(125.0, 100.0, 50.0, 20.0),
)


def liquidation_price(
    entry: float, qty: float, leverage: float, long: bool, tiers: MarginTiers = BINANCE_BTC_2021
) -> float:
    """The liquidation price of one position (``qty`` > 0 base units); leverage capped by tier."""
    (lp,) = liquidation_prices(
        np.array([entry]), np.array([qty]), np.array([leverage]), np.array([long]), tiers
    )[0]
    return float(lp)


def liquidation_prices(
    entry: FloatArray,
    qty: FloatArray,
    leverage: FloatArray,
    long: npt.NDArray[np.bool_],
    tiers: MarginTiers = BINANCE_BTC_2021,
) -> tuple[FloatArray, FloatArray]:
    """Vectorised: ``(liquidation prices, leverages used)`` (each leverage capped at its tier's
    maximum). Arrays of one length; ``long`` True for longs."""
    notional = entry * qty
    k = np.searchsorted(np.asarray(tiers.floors_usd), notional, side="right") - 1
    mmr = np.asarray(tiers.maintenance_rates)[k]
    cum = np.asarray(tiers.cumulative_usd)[k]
    lev = np.minimum(leverage, np.asarray(tiers.max_leverages)[k])
    long_lp = (notional * (1.0 - 1.0 / lev) - cum) / (qty * (1.0 - mmr))
    short_lp = (notional * (1.0 + 1.0 / lev) + cum) / (qty * (1.0 + mmr))
    lp: FloatArray = np.where(long, long_lp, short_lp)
    return lp, lev.astype(np.float64)


@dataclass(frozen=True)
class LeverageMix:
    """The leverage traders choose: values and their weights (normalised on use)."""

    values: tuple[float, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.values) != len(self.weights) or not self.values:
            raise ValueError("leverage mix: values and weights must have the same, non-zero size")
        if min(self.values) < 1.0 or min(self.weights) < 0.0 or sum(self.weights) <= 0.0:
            raise ValueError(f"leverage mix {self}: leverages >= 1, weights >= 0, not all 0")

    def draw(self, rng: np.random.Generator, n: int) -> FloatArray:
        p = np.asarray(self.weights, dtype=np.float64)
        out: FloatArray = rng.choice(
            np.asarray(self.values, dtype=np.float64), size=n, p=p / p.sum()
        )
        return out

    def scaled(self, high_factor: float) -> LeverageMix:
        """The mix with the weights of leverages above 10x multiplied by ``high_factor``."""
        w = tuple(
            w * (high_factor if v > 10.0 else 1.0)
            for v, w in zip(self.values, self.weights, strict=True)
        )
        return LeverageMix(self.values, w)


# A retail-heavy mix over the leverages venues offer by default. Cheng et al. (2021) report that
# liquidated BitMEX traders used about 60x on average: the high end is well populated.
DEFAULT_LEVERAGE: Final = LeverageMix(
    values=(5.0, 10.0, 20.0, 25.0, 50.0, 100.0),
    weights=(0.14, 0.24, 0.22, 0.14, 0.16, 0.10),
)


def weights_text(values: Sequence[float], weights: Sequence[float]) -> dict[str, float]:
    """``{"5x": w, ...}`` with weights normalised: the mix as plain JSON for the ground truth."""
    total = float(sum(weights))
    return {f"{v:g}x": round(float(w) / total, 6) for v, w in zip(values, weights, strict=True)}
