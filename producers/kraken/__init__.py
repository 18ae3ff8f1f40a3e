"""Kraken Futures: the ``trade`` feed; liquidations are trades of ``type`` ``liquidation``; market
context (mark/index price, funding, open interest) from the ``ticker`` feed."""

from monitor.core.venues import VenueDefaults
from producers.base import Venue
from producers.kraken.endpoints import DEFAULT_REST_URL, DEFAULT_SYMBOLS, DEFAULT_WS_URL, EXCHANGE
from producers.kraken.parser import KrakenAdapter

# This venue, as ``producers.registry`` discovers it: its defaults and its adapter.
VENUE = Venue(
    VenueDefaults(EXCHANGE, DEFAULT_WS_URL, DEFAULT_REST_URL, DEFAULT_SYMBOLS, enabled=False),
    KrakenAdapter,
)

__all__ = ["VENUE", "KrakenAdapter"]
