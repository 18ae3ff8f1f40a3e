"""Gate.io USDT futures: ``futures.public_liquidates`` (``!all``) liquidations, ``futures.trades``
trades and ``futures.tickers`` market context (mark, index, funding rate, open interest) on one
socket, sizes in contracts x ``quanto_multiplier``."""

from monitor.core.venues import VenueDefaults
from producers.base import Venue
from producers.gate.endpoints import DEFAULT_REST_URL, DEFAULT_SYMBOLS, DEFAULT_WS_URL, EXCHANGE
from producers.gate.parser import GateAdapter

# This venue, as ``producers.registry`` discovers it: its defaults and its adapter.
VENUE = Venue(
    VenueDefaults(EXCHANGE, DEFAULT_WS_URL, DEFAULT_REST_URL, DEFAULT_SYMBOLS, enabled=False),
    GateAdapter,
)

__all__ = ["VENUE", "GateAdapter"]
