"""Deribit JSON-RPC websocket endpoint and connection rules (docs/venues.md §5).

The configured URL is the full socket URL (``wss://www.deribit.com/ws/api/v2``). Everything is a
JSON-RPC 2.0 request over the socket. Unauthenticated clients may only subscribe the aggregated
channels (``100ms``, ``agg2``); ``raw`` needs an authorized session. Per configured instrument the
producer subscribes ``trades.<NAME>.100ms`` (trades and liquidation flags) and the market context
channel ``ticker.<NAME>.100ms`` (mark and index price, funding, open interest: the full ticker,
pushed at most every 100 ms while it changes).

Heartbeats: right after connecting the client sends ``public/set_heartbeat`` (``interval`` >= 10 s).
The server then sends ``{"method": "heartbeat", "params": {"type": "heartbeat" | "test_request"}}``
and closes the connection when a ``test_request`` is not answered by a ``public/test`` request.
The client's own heartbeat (every ``ping_interval_s``) is also a ``public/test`` request, whose
answer keeps the stale-feed watchdog fed on quiet instruments.
"""

from __future__ import annotations

from typing import Final

EXCHANGE: Final = "deribit"
DEFAULT_WS_URL: Final = "wss://www.deribit.com/ws/api/v2"
DEFAULT_REST_URL: Final = "https://www.deribit.com"
DEFAULT_SYMBOLS: Final = (
    "BTC-PERPETUAL",
    "ETH-PERPETUAL",
    "SOL_USDC-PERPETUAL",
)  # trades and market context; liquidations: all

TRADES: Final = "trades"
TRADE_INTERVAL: Final = "100ms"  # public interval; "raw" needs auth
TICKER: Final = "ticker"  # market context: ticker.<NAME>.<interval>, one full ticker object
TICKER_INTERVAL: Final = "100ms"
INTERVALS: Final = frozenset({"raw", "100ms", "agg2"})
HEARTBEAT_INTERVAL_S: Final = 30  # public/set_heartbeat; Deribit's minimum is 10
MAX_CHANNELS_PER_SUBSCRIBE: Final = 64  # our batching choice; no documented limit

SET_HEARTBEAT_ID: Final = 1
FIRST_SUBSCRIBE_ID: Final = 2
CLIENT_PING_ID: Final = 9  # public/test sent as the client heartbeat
FIRST_TEST_REPLY_ID: Final = 1_000_000  # public/test answering the server's test_request
