"""BitMEX: the ``liquidation`` table (forced-order lifecycle), ``trade:<SYMBOL>`` trades and
``instrument:<SYMBOL>`` market context (mark, index, funding, open interest)."""

from monitor.core.venues import VenueDefaults
from producers.base import Venue
from producers.bitmex.endpoints import DEFAULT_REST_URL, DEFAULT_SYMBOLS, DEFAULT_WS_URL, EXCHANGE
from producers.bitmex.parser import BitmexAdapter

# This venue, as ``producers.registry`` discovers it: its defaults and its adapter.
VENUE = Venue(
    VenueDefaults(EXCHANGE, DEFAULT_WS_URL, DEFAULT_REST_URL, DEFAULT_SYMBOLS, enabled=False),
    BitmexAdapter,
)

__all__ = ["VENUE", "BitmexAdapter"]
