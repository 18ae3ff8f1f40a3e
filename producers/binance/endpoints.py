"""Binance USD-M futures market-stream endpoints and connection rules (docs/venues.md §1).

The configured URL is a *base* (``wss://fstream.binance.com/market``, the 2026 routed base for
regular market data); raw streams live under ``{base}/ws/<stream>`` and combined streams under
``{base}/stream?streams=a/b/c`` (frames wrapped as ``{"stream": ..., "data": ...}``).
"""

from __future__ import annotations

from typing import Final

EXCHANGE: Final = "binance"
DEFAULT_WS_URL: Final = "wss://fstream.binance.com/market"
DEFAULT_REST_URL: Final = "https://fapi.binance.com"
DEFAULT_SYMBOLS: Final = (
    "BTCUSDT",
    "ETHUSDT",
    "SOLUSDT",
)  # trades and market context; liquidations: all

RAW_PATH: Final = "/ws/"
COMBINED_PATH: Final = "/stream?streams="

ALL_LIQUIDATIONS_STREAM: Final = "!forceOrder@arr"
AGG_TRADE_SUFFIX: Final = "@aggTrade"
MARK_PRICE_SUFFIX: Final = "@markPrice@1s"  # mark, index, funding: every 1 s (3 s without @1s)

# Connection rules from the USD-M market streams page.
MAX_STREAMS_PER_CONNECTION: Final = 1024
MAX_INCOMING_MESSAGES_PER_S: Final = 10  # SUBSCRIBE etc.; we subscribe through the URL instead
MAX_CONNECTION_AGE_S: Final = 24 * 3600  # the server closes at 24 h; the session rotates earlier


def raw_stream_url(base: str, stream: str) -> str:
    return f"{base.rstrip('/')}{RAW_PATH}{stream}"


def combined_stream_url(base: str, streams: list[str]) -> str:
    return f"{base.rstrip('/')}{COMBINED_PATH}{'/'.join(streams)}"
