"""OKX v5 public: ``liquidation-orders`` (all SWAP instruments); ``trades``, ``mark-price``,
``funding-rate`` and ``open-interest`` per instId."""

from monitor.core.venues import VenueDefaults
from producers.base import Venue
from producers.okx.endpoints import DEFAULT_REST_URL, DEFAULT_SYMBOLS, DEFAULT_WS_URL, EXCHANGE
from producers.okx.parser import OkxAdapter

# This venue, as ``producers.registry`` discovers it: its defaults and its adapter.
VENUE = Venue(
    VenueDefaults(EXCHANGE, DEFAULT_WS_URL, DEFAULT_REST_URL, DEFAULT_SYMBOLS, enabled=False),
    OkxAdapter,
)

__all__ = ["VENUE", "OkxAdapter"]
