"""Binance USD-M futures: ``!forceOrder@arr`` liquidations, ``<symbol>@aggTrade`` trades and
``<symbol>@markPrice@1s`` market context (mark, index, funding)."""

from monitor.core.venues import VenueDefaults
from producers.base import Venue
from producers.binance.endpoints import DEFAULT_REST_URL, DEFAULT_SYMBOLS, DEFAULT_WS_URL, EXCHANGE
from producers.binance.parser import BinanceAdapter

# This venue, as ``producers.registry`` discovers it: its defaults and its adapter.
VENUE = Venue(
    VenueDefaults(EXCHANGE, DEFAULT_WS_URL, DEFAULT_REST_URL, DEFAULT_SYMBOLS, enabled=True),
    BinanceAdapter,
)

__all__ = ["VENUE", "BinanceAdapter"]
