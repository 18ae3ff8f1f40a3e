"""Bybit v5 public linear endpoint and connection rules (docs/venues.md §2).

The configured URL is the full socket URL (``wss://stream.bybit.com/v5/public/linear``). Topics are
subscribed with JSON requests; without traffic the server cuts the connection after 10 minutes, so
the client sends the JSON heartbeat ``{"op": "ping"}`` every ``ping_interval_s``.
"""

from __future__ import annotations

from typing import Final

EXCHANGE: Final = "bybit"
DEFAULT_WS_URL: Final = "wss://stream.bybit.com/v5/public/linear"
DEFAULT_REST_URL: Final = "https://api.bybit.com"
DEFAULT_SYMBOLS: Final = (
    "BTCUSDT",
    "ETHUSDT",
    "SOLUSDT",
)  # trades and market context; liquidations: all

ALL_LIQUIDATION: Final = "allLiquidation"  # every liquidation, pushed every 500 ms
PUBLIC_TRADE: Final = "publicTrade"
TICKERS: Final = "tickers"  # mark/index price, funding, open interest: snapshot, then deltas

MAX_ARGS_PER_SUBSCRIBE: Final = 10  # topics per subscribe request
PING_FRAME: Final = '{"op":"ping"}'
