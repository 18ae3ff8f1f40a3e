"""HTX (Huobi) USDT-margined swaps: ``public.*.liquidation_orders`` liquidations and
``public.<CODE>.funding_rate`` on the notification endpoint, ``market.<CODE>.trade.detail`` trades
on the market-data endpoint, ``market.<CODE>.mark_price.1min`` / ``.index.1min`` klines on ws_index
(gzip frames), open interest by REST polling (``swap_open_interest``)."""

from monitor.core.venues import VenueDefaults
from producers.base import Venue
from producers.htx.endpoints import DEFAULT_REST_URL, DEFAULT_SYMBOLS, DEFAULT_WS_URL, EXCHANGE
from producers.htx.parser import HtxAdapter

# This venue, as ``producers.registry`` discovers it: its defaults and its adapter.
VENUE = Venue(
    VenueDefaults(EXCHANGE, DEFAULT_WS_URL, DEFAULT_REST_URL, DEFAULT_SYMBOLS, enabled=False),
    HtxAdapter,
)

__all__ = ["VENUE", "HtxAdapter"]
