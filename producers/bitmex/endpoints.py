"""BitMEX realtime endpoint and connection rules (docs/venues.md §4).

The configured URL is the full socket URL (``wss://ws.bitmex.com/realtime``). Tables are
subscribed with ``{"op": "subscribe", "args": [...]}``: ``liquidation`` (every symbol), then per
configured symbol ``trade:<SYMBOL>`` and ``instrument:<SYMBOL>`` (market context: a ``partial`` row,
then ``update`` deltas of the changed fields). The client heartbeat is the text frame
``ping``, answered by the text frame ``pong``. Instrument metadata comes from the REST API
``GET {rest_base}/api/v1/instrument/active``.
"""

from __future__ import annotations

from typing import Final

EXCHANGE: Final = "bitmex"
DEFAULT_WS_URL: Final = "wss://ws.bitmex.com/realtime"
DEFAULT_REST_URL: Final = "https://www.bitmex.com"
DEFAULT_SYMBOLS: Final = (
    "XBTUSD",
    "ETHUSDT",
    "SOLUSDT",
)  # trades and market context; liquidations: all
INSTRUMENTS_PATH: Final = "/api/v1/instrument/active"

LIQUIDATION: Final = "liquidation"  # all symbols
TRADE: Final = "trade"
INSTRUMENT: Final = "instrument"  # per symbol: mark, index, funding, open interest
PER_SYMBOL_TABLES: Final = (TRADE, INSTRUMENT)
MAX_ARGS_PER_SUBSCRIBE: Final = 50  # our batching choice; the wsAPI page sets no limit
PING_FRAME: Final = "ping"
PONG_FRAME: Final = "pong"
