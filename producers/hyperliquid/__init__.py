"""Hyperliquid perpetuals: ``trades`` and the market context ``activeAssetCtx`` per coin.
Hyperliquid has NO public liquidation feed."""

from monitor.core.venues import VenueDefaults
from producers.base import Venue
from producers.hyperliquid.endpoints import (
    DEFAULT_REST_URL,
    DEFAULT_SYMBOLS,
    DEFAULT_WS_URL,
    EXCHANGE,
)
from producers.hyperliquid.parser import HyperliquidAdapter

# This venue, as ``producers.registry`` discovers it: its defaults and its adapter.
VENUE = Venue(
    VenueDefaults(EXCHANGE, DEFAULT_WS_URL, DEFAULT_REST_URL, DEFAULT_SYMBOLS, enabled=False),
    HyperliquidAdapter,
)

__all__ = ["VENUE", "HyperliquidAdapter"]
