"""Which simulated venue lists which scenario symbol, and under which name. Pure module.

Read from each venue module's own instrument table, so a symbol added there is listed here. A venue
that does not list a symbol gets none of its positions or flow (its share goes to the others).
BitMEX lists no DOGE: its DOGEUSDT is a quanto contract margined in XBT, which the adapter refuses
to size, so the simulator does not serve it.

``LIQUIDATIONS_AS_TRADES``: venues whose feed already turns a scenario liquidation into a trade
print (Deribit and Kraken flag it, Hyperliquid has no liquidation feed); elsewhere the forced
order's fill is added as a trade of its own, as the venue's public trade feed would show it.
"""

from __future__ import annotations

from typing import Final

from monitor.simulator.instruments import INSTRUMENTS
from monitor.simulator.venues import bitmex, deribit, gate, htx, hyperliquid, kraken, okx

LIQUIDATIONS_AS_TRADES: Final = frozenset({"deribit", "kraken", "hyperliquid"})


def venue_symbol(venue: str, symbol: str) -> str | None:
    """The venue's name for scenario symbol ``symbol`` (``BTCUSDT``), or None if not listed."""
    if symbol not in INSTRUMENTS:
        return None
    if venue in ("binance", "bybit", "bitget"):
        return symbol
    if venue == "okx":
        return okx.CONTRACTS[symbol][0] if symbol in okx.CONTRACTS else None
    if venue == "htx":
        return htx.CONTRACTS[symbol].code if symbol in htx.CONTRACTS else None
    if venue == "gate":
        return gate.CONTRACTS[symbol][0] if symbol in gate.CONTRACTS else None
    if venue == "bitmex":
        return bitmex.INSTRUMENTS[symbol].symbol if symbol in bitmex.INSTRUMENTS else None
    if venue == "deribit":
        return deribit.INSTRUMENTS[symbol].name if symbol in deribit.INSTRUMENTS else None
    if venue == "kraken":
        return kraken.PRODUCTS[symbol].venue_symbol if symbol in kraken.PRODUCTS else None
    if venue == "hyperliquid":
        return hyperliquid.COINS[symbol].venue_symbol if symbol in hyperliquid.COINS else None
    raise ValueError(f"unknown venue {venue!r}")


def listed(venue: str, symbol: str) -> bool:
    return venue_symbol(venue, symbol) is not None
