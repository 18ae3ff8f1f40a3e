"""The leveraged positions of one symbol and the order in which their levels get hit. Pure module.

A position is isolated-margin: entry price, quantity (base units), side, venue, the time it will be
closed voluntarily, and its liquidation price (``margin.liquidation_prices``). Two heaps keep the
open levels: longs by highest liquidation price first (a falling price reaches them in that
order), shorts by lowest first. A voluntary close is lazy: the position stays in its heap and is
discarded when popped after its close time, so closing costs nothing and draws nothing.

``seed_book`` builds the book a scenario starts with. Entries are spread around the start price
(lognormal, ``entry_sigma``: positions opened over the previous days), leverages come from a
``LeverageMix``, sizes are lognormal. Positions whose level lies within ``cleared`` of the start
price are dropped: the recent trading range has already liquidated them (a real liquidation map
is thin right at the price and refills as traders open new positions, which ``flow`` models).
Levels further than ``FAR_BAND`` away are dropped too (no scenario reaches them). Positions are drawn until the notional whose level lies within
``NEAR_BAND`` of the price reaches ``density_usd_per_pct * NEAR_BAND * 100``: the density of
leverage near the price is the parameter, whatever mix produced it.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from monitor.simulator.reflexive.margin import LeverageMix, MarginTiers, liquidation_prices

FloatArray = npt.NDArray[np.float64]

NEAR_BAND: Final = 0.10  # the density parameter counts levels within 10 % of the price
FAR_BAND: Final = 0.35  # levels further than this are not kept
SEED_CHUNK: Final = 4096
SIZE_CAP: Final = 60.0  # largest position, in medians
MAX_POSITIONS: Final = 400_000  # per side: a density too large for the event budget is an error
MAX_DRAWS: Final = 1_000  # chunks: a mix that never puts a level near the price is an error


class PositionBook:
    """Struct of lists (appended in the market loop) and the two heaps of open levels."""

    __slots__ = ("close_t", "entry", "levels_long", "levels_short", "liq", "long", "qty", "venue")

    def __init__(self) -> None:
        self.entry: list[float] = []
        self.qty: list[float] = []
        self.long: list[bool] = []
        self.liq: list[float] = []
        self.venue: list[int] = []
        self.close_t: list[float] = []
        self.levels_long: list[tuple[float, int]] = []  # (-liquidation price, index)
        self.levels_short: list[tuple[float, int]] = []  # (liquidation price, index)

    def __len__(self) -> int:
        return len(self.entry)

    def add(
        self, entry: float, qty: float, long: bool, liq: float, venue: int, close_t: float
    ) -> int:
        i = len(self.entry)
        self.entry.append(entry)
        self.qty.append(qty)
        self.long.append(long)
        self.liq.append(liq)
        self.venue.append(venue)
        self.close_t.append(close_t)
        if long:
            heapq.heappush(self.levels_long, (-liq, i))
        else:
            heapq.heappush(self.levels_short, (liq, i))
        return i

    def add_many(
        self,
        entry: FloatArray,
        qty: FloatArray,
        long: npt.NDArray[np.bool_],
        liq: FloatArray,
        venue: npt.NDArray[np.int64],
        close_t: FloatArray,
    ) -> None:
        start = len(self.entry)
        self.entry += entry.tolist()
        self.qty += qty.tolist()
        self.long += long.tolist()
        self.liq += liq.tolist()
        self.venue += venue.tolist()
        self.close_t += close_t.tolist()
        idx = np.arange(start, start + entry.size)
        self.levels_long += list(zip((-liq[long]).tolist(), idx[long].tolist(), strict=True))
        self.levels_short += list(zip(liq[~long].tolist(), idx[~long].tolist(), strict=True))
        heapq.heapify(self.levels_long)
        heapq.heapify(self.levels_short)

    def notional_within(self, price: float, fraction: float, long: bool, t: float) -> float:
        """Open notional (at entry) whose level lies within ``fraction`` of ``price``, on the side
        that a move of that size would liquidate (below for longs, above for shorts)."""
        total = 0.0
        for i, liq in enumerate(self.liq):
            if self.long[i] != long or self.close_t[i] <= t:
                continue
            if (long and price * (1 - fraction) <= liq < price) or (
                not long and price < liq <= price * (1 + fraction)
            ):
                total += self.entry[i] * self.qty[i]
        return total


@dataclass(frozen=True)
class BookShape:
    """How the starting book of one side is drawn."""

    density_usd_per_pct: float  # notional with levels within NEAR_BAND, per 1 % of price
    position_median_usd: float
    position_sigma: float = 1.0
    entry_sigma: float = 0.03  # spread of entry prices around the start price (log)
    hold_mean_s: float = 6 * 3600.0
    cleared: float = 0.01  # no level within this fraction of the start price


def seed_book(
    book: PositionBook,
    rng: np.random.Generator,
    *,
    price: float,
    long: bool,
    shape: BookShape,
    leverage: LeverageMix,
    tiers: MarginTiers,
    venue_probs: FloatArray,
) -> float:
    """Add one side's starting positions to ``book``; returns the notional within NEAR_BAND."""
    target = shape.density_usd_per_pct * NEAR_BAND * 100.0
    near = 0.0
    added = 0
    for _ in range(MAX_DRAWS):
        if near >= target:
            return near
        n = SEED_CHUNK
        entry = price * np.exp(shape.entry_sigma * rng.standard_normal(n))
        notional = shape.position_median_usd * np.minimum(
            np.exp(shape.position_sigma * rng.standard_normal(n)), SIZE_CAP
        )
        qty = notional / entry
        lev_drawn = leverage.draw(rng, n)
        sides = np.full(n, long)
        liq, _ = liquidation_prices(entry, qty, lev_drawn, sides, tiers)
        venue = rng.choice(venue_probs.size, size=n, p=venue_probs).astype(np.int64)
        close_t = rng.exponential(shape.hold_mean_s, n)
        gap = (price - liq) / price if long else (liq - price) / price
        keep = (gap > shape.cleared) & (gap <= FAR_BAND)
        in_band = keep & (gap <= NEAR_BAND)
        cum = np.cumsum(np.where(in_band, notional, 0.0))
        if near + cum[-1] >= target:  # stop at the draw that reaches the target
            last = int(np.searchsorted(cum, target - near, side="left"))
            keep[last + 1 :] = False
            cum_near = float(cum[last])
        else:
            cum_near = float(cum[-1])
        near += cum_near
        book.add_many(entry[keep], qty[keep], sides[keep], liq[keep], venue[keep], close_t[keep])
        added += int(keep.sum())
        if added > MAX_POSITIONS:
            raise ValueError(f"density {shape.density_usd_per_pct:.3g} USD/% needs > "
                             f"{MAX_POSITIONS} positions")  # fmt: skip
        if not math.isfinite(near):
            raise ValueError("seed_book: non-finite notional")
    if near >= target:
        return near
    raise ValueError(f"{MAX_DRAWS} draws of the mix put too few levels within {NEAR_BAND:.0%}")
