"""Deribit: ``trades.<INSTRUMENT>.100ms`` trades; liquidations from the trades' ``liquidation`` flag;
market context (mark/index price, funding, open interest) from ``ticker.<INSTRUMENT>.100ms``."""

from monitor.core.venues import VenueDefaults
from producers.base import Venue
from producers.deribit.endpoints import DEFAULT_REST_URL, DEFAULT_SYMBOLS, DEFAULT_WS_URL, EXCHANGE
from producers.deribit.parser import DeribitAdapter

# This venue, as ``producers.registry`` discovers it: its defaults and its adapter.
VENUE = Venue(
    VenueDefaults(EXCHANGE, DEFAULT_WS_URL, DEFAULT_REST_URL, DEFAULT_SYMBOLS, enabled=False),
    DeribitAdapter,
)

__all__ = ["VENUE", "DeribitAdapter"]
