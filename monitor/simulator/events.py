"""The simulated market's events and the ``Scenario`` that holds them. Pure module (numpy).

Plain data at the bottom of the simulator: the scenario builders (``scenario``, ``reflexive``)
create these events, every venue module (``venues``) turns them into its feed's frames, and the
builders read each venue's description from ``venues.SPECS``. Keeping the types here lets the
builders import the venues without the venues importing the builders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class SimTrade:
    t: float  # scenario seconds from the start
    venue: str
    venue_symbol: str
    price: float
    qty: float
    taker_side: str  # "buy" / "sell"


@dataclass(frozen=True, slots=True)
class SimLiquidation:
    t: float
    venue: str
    venue_symbol: str
    liquidated_side: str  # "long" / "short"
    price: float  # market price when the position was closed (Binance ``ap``)
    qty: float


SimEvent = SimTrade | SimLiquidation


@dataclass(frozen=True, eq=False)
class Scenario:
    events: list[SimEvent]  # sorted by (t, venue, symbol)
    duration_s: float
    seed: int
    venues: tuple[str, ...]
    symbols: tuple[str, ...]
    crash_start_s: float
    path_times: tuple[float, ...]
    paths: Mapping[str, tuple[float, ...]]  # symbol -> price on ``path_times``

    def price_at(self, venue_symbol: str, t: float) -> float:
        return float(np.interp(t, self.path_times, self.paths[venue_symbol]))

    def liquidations(self, venue: str | None = None) -> list[SimLiquidation]:
        return [
            e
            for e in self.events
            if isinstance(e, SimLiquidation) and (venue is None or e.venue == venue)
        ]

    def trades(self, venue: str | None = None) -> list[SimTrade]:
        return [
            e
            for e in self.events
            if isinstance(e, SimTrade) and (venue is None or e.venue == venue)
        ]

    def summary(self) -> dict[str, Any]:
        """Counts, notionals and price moves; plain JSON-able values."""
        venues: dict[str, Any] = {}
        for v in self.venues:
            liqs = self.liquidations(v)
            notional = {"long": 0.0, "short": 0.0}
            for liq in liqs:
                notional[liq.liquidated_side] += liq.qty * liq.price
            crash = [x for x in liqs if x.t >= self.crash_start_s]
            crash_long = sum(x.qty * x.price for x in crash if x.liquidated_side == "long")
            crash_total = sum(x.qty * x.price for x in crash)
            venues[v] = {
                "trades": len(self.trades(v)),
                "liquidations": len(liqs),
                "long_liquidations": sum(x.liquidated_side == "long" for x in liqs),
                "liquidation_notional_usd": notional,
                "crash_long_share": crash_long / crash_total if crash_total else 0.0,
            }
        symbols: dict[str, Any] = {}
        for s in self.symbols:
            path = self.paths[s]
            symbols[s] = {
                "start_price": path[0],
                "end_price": path[-1],
                "min_price": min(path),
                "drawdown": 1.0 - path[-1] / path[0],
            }
        return {
            "duration_s": self.duration_s,
            "seed": self.seed,
            "crash_start_s": self.crash_start_s,
            "events": len(self.events),
            "venues": venues,
            "symbols": symbols,
        }
