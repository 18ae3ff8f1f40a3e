"""Kraken Futures websocket endpoint and connection rules (docs/venues.md §10).

The configured URL is the full socket URL (``wss://futures.kraken.com/ws/v1``). Feeds are
subscribed with ``{"event": "subscribe", "feed": ..., "product_ids": [...]}``: ``trade`` (trades and
liquidations) and ``ticker`` (market context: every field in each message, published at most once a
second per product), one request each for every product. Kraken requires "a
ping at least every 60 seconds" without documenting a JSON ping for this API: the session's
websocket protocol pings (every ``ping_interval_s``, 20 s by default) are taken to satisfy it
(UNVERIFIED), so the adapter has no JSON heartbeat. It also subscribes the ``heartbeat`` feed,
whose server messages keep the stale-feed watchdog fed on quiet products.
"""

from __future__ import annotations

from typing import Final

EXCHANGE: Final = "kraken"
DEFAULT_WS_URL: Final = "wss://futures.kraken.com/ws/v1"
DEFAULT_REST_URL: Final = "https://futures.kraken.com"
DEFAULT_SYMBOLS: Final = (
    "PF_XBTUSD",
    "PF_ETHUSD",
    "PF_SOLUSD",
)  # trades and market context; liquidations: all

TRADE: Final = "trade"
TRADE_SNAPSHOT: Final = "trade_snapshot"
TICKER: Final = "ticker"
HEARTBEAT: Final = "heartbeat"
