"""Instrument specifications and exact decimal handling for the simulator. Pure module.

Prices and quantities are kept as the float nearest to a decimal on the instrument's grid: an
integer number of ticks (lots) divided by a power of ten, which Python rounds correctly. Formatting
such a float with the grid's number of decimals therefore gives the exact decimal text, with no
float noise ("95000.1", never "95000.09999999999").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

RoundMode = Literal["nearest", "floor", "ceil"]

_EPS: Final = 1e-9  # tolerance for values that already sit on the grid
_POW10: Final[tuple[int, ...]] = tuple(10**i for i in range(19))


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    venue_symbol: str  # same spelling on Binance USD-M and Bybit linear
    start_price: float
    drop: float  # fraction lost from the start to the end of the crash scenario
    price_decimals: int
    tick_units: int  # tick = tick_units / 10**price_decimals
    qty_decimals: int
    lot_units: int  # lot step = lot_units / 10**qty_decimals
    trade_notional_usd: float  # median size of one aggregated trade
    liq_notional_usd: float  # median size of one calm-phase liquidation

    @property
    def tick(self) -> float:
        return self.tick_units / _POW10[self.price_decimals]

    @property
    def lot(self) -> float:
        return self.lot_units / _POW10[self.qty_decimals]

    def round_price(self, x: float, mode: RoundMode = "nearest") -> float:
        return _to_grid(x, self.tick_units, self.price_decimals, mode, minimum=1)

    def round_qty(self, x: float) -> float:
        """Nearest lot, at least one lot."""
        return _to_grid(x, self.lot_units, self.qty_decimals, "nearest", minimum=1)

    def price_text(self, x: float, *, strip: bool = False) -> str:
        return fmt_decimal(x, self.price_decimals, strip=strip)

    def qty_text(self, x: float, *, strip: bool = False) -> str:
        return fmt_decimal(x, self.qty_decimals, strip=strip)


# Ticks and lot steps as on the venues in early 2025 (Binance USD-M and Bybit linear agree for
# BTC and ETH; SOL uses Bybit's 0.1 lot). Start prices and drops echo 27 Jan 2025.
INSTRUMENTS: Final = {
    "BTCUSDT": InstrumentSpec("BTCUSDT", 95000.0, 0.06, 1, 1, 3, 1, 6000.0, 25000.0),
    "ETHUSDT": InstrumentSpec("ETHUSDT", 3300.0, 0.08, 2, 1, 3, 1, 4000.0, 15000.0),
    "SOLUSDT": InstrumentSpec("SOLUSDT", 190.0, 0.11, 2, 1, 1, 1, 2500.0, 8000.0),
    # DOGE: tick 0.00001 and a 1 DOGE lot on Binance USD-M and Bybit linear; 27 Jan 2025: -11 %.
    "DOGEUSDT": InstrumentSpec("DOGEUSDT", 0.34, 0.11, 5, 1, 0, 1, 1500.0, 5000.0),
}


def instrument(venue_symbol: str) -> InstrumentSpec:
    try:
        return INSTRUMENTS[venue_symbol]
    except KeyError:
        raise ValueError(
            f"no simulated instrument {venue_symbol!r} (known: {sorted(INSTRUMENTS)})"
        ) from None


def _to_grid(x: float, units: int, decimals: int, mode: RoundMode, *, minimum: int) -> float:
    steps = x * _POW10[decimals] / units
    if mode == "floor":
        n = math.floor(steps + _EPS)
    elif mode == "ceil":
        n = math.ceil(steps - _EPS)
    else:
        n = round(steps)
    return max(n, minimum) * units / _POW10[decimals]


def fmt_decimal(x: float, decimals: int, *, strip: bool = False) -> str:
    """``x`` with exactly ``decimals`` decimals; ``strip`` drops trailing zeros (and the point)."""
    text = f"{x:.{decimals}f}"
    if strip and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
