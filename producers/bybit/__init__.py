"""Bybit v5 linear: ``allLiquidation.<SYM>`` liquidations, ``publicTrade.<SYM>`` trades and
``tickers.<SYM>`` market context (mark/index price, funding, open interest)."""

from monitor.core.venues import VenueDefaults
from producers.base import Venue
from producers.bybit.endpoints import DEFAULT_REST_URL, DEFAULT_SYMBOLS, DEFAULT_WS_URL, EXCHANGE
from producers.bybit.parser import BybitAdapter

# This venue, as ``producers.registry`` discovers it: its defaults and its adapter.
VENUE = Venue(
    VenueDefaults(EXCHANGE, DEFAULT_WS_URL, DEFAULT_REST_URL, DEFAULT_SYMBOLS, enabled=True),
    BybitAdapter,
)

__all__ = ["VENUE", "BybitAdapter"]
