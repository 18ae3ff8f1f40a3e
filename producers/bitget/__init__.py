"""Bitget UTA (v3) public: ``liquidation`` per instType (sampled), ``publicTrade`` and ``ticker``
(market context) per symbol."""

from monitor.core.venues import VenueDefaults
from producers.base import Venue
from producers.bitget.endpoints import DEFAULT_REST_URL, DEFAULT_SYMBOLS, DEFAULT_WS_URL, EXCHANGE
from producers.bitget.parser import BitgetAdapter

# This venue, as ``producers.registry`` discovers it: its defaults and its adapter.
VENUE = Venue(
    VenueDefaults(EXCHANGE, DEFAULT_WS_URL, DEFAULT_REST_URL, DEFAULT_SYMBOLS, enabled=False),
    BitgetAdapter,
)

__all__ = ["VENUE", "BitgetAdapter"]
