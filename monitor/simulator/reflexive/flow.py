"""Noise traders: the taker trades that happen whatever the liquidations do. Pure module.

Per symbol, trades arrive as a Poisson process whose rate is ``rate_per_s * activity(t)`` (the
exogenous activity of ``exogenous.activity``), counted per simulation step and placed uniformly in
it. Sizes are lognormal USD notionals (``median_usd``, ``sigma``, capped at ``SIZE_CAP`` medians);
the taker side is a fair coin, so noise flow moves the price only through its random imbalance.
Each trade lands on a venue drawn from the symbol's venue shares.

A fraction ``open_prob`` of the trades open a leveraged position of the same notional on the
taker's side (a buy opens a long): the book refills near the price as the market trades, the
assumption the liquidation map of docs/risk-models.md §6 makes. What such a position needs besides its
entry price (leverage, holding time) is drawn here, in advance, so the loop that runs the market
draws nothing and a run with the feedback switched off sees exactly the same noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from monitor.simulator.reflexive.margin import LeverageMix

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SIZE_CAP: Final = 40.0  # largest trade, in medians


@dataclass(frozen=True)
class NoiseFlow:
    """One symbol's noise trades, in time order (parallel arrays), and their net per step."""

    t: FloatArray
    step: IntArray
    notional: FloatArray  # USD, > 0
    buy: BoolArray  # taker side
    venue: IntArray  # index into the scenario's venue tuple
    opens: BoolArray  # this trade opens a leveraged position
    leverage: FloatArray  # of that position (meaningful where ``opens``)
    hold_s: FloatArray  # how long that position would be held before a voluntary close
    net_by_step: FloatArray  # signed taker notional per step (buys +)

    @property
    def size(self) -> int:
        return int(self.t.size)


def noise_flow(
    rng: np.random.Generator,
    *,
    dt: float,
    activity: FloatArray,
    rate_per_s: float,
    median_usd: float,
    sigma: float,
    venue_probs: FloatArray,
    open_prob: float,
    leverage: LeverageMix,
    hold_mean_s: float,
) -> NoiseFlow:
    """The noise trades over ``activity.size`` steps of ``dt`` seconds."""
    n_steps = activity.size
    counts = rng.poisson(rate_per_s * activity * dt)
    step = np.repeat(np.arange(n_steps, dtype=np.int64), counts)
    n = step.size
    t = (step + rng.random(n)) * dt
    order = np.lexsort((t, step))  # within a step, by time
    step, t = step[order], t[order]
    notional = median_usd * np.minimum(np.exp(sigma * rng.standard_normal(n)), SIZE_CAP)
    buy = rng.random(n) < 0.5
    venue = rng.choice(venue_probs.size, size=n, p=venue_probs).astype(np.int64)
    opens = rng.random(n) < open_prob
    lev = leverage.draw(rng, n)
    hold = rng.exponential(hold_mean_s, n)
    signed = np.where(buy, notional, -notional)
    net = np.bincount(step, weights=signed, minlength=n_steps).astype(np.float64)
    return NoiseFlow(t, step, notional, buy, venue, opens, lev, hold, net)
