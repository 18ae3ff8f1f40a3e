"""OKX v5 public endpoint, connection rules and REST metadata path (docs/venues.md §3).

The configured URL is the full socket URL (``wss://ws.okx.com:8443/ws/v5/public``). Channels are
subscribed with JSON requests: at most 480 subscribe requests per connection per hour and at most
64 KB of ``args`` per request, so the producer batches every channel into as few requests as fit.
The server drops a connection that receives nothing for 30 s; the client sends the **text**
``ping`` (the server answers the text ``pong``) every ``ping_interval_s``.
"""

from __future__ import annotations

from typing import Final

EXCHANGE: Final = "okx"
DEFAULT_WS_URL: Final = "wss://ws.okx.com:8443/ws/v5/public"
DEFAULT_REST_URL: Final = "https://www.okx.com"
DEFAULT_SYMBOLS: Final = (
    "BTC-USDT-SWAP",
    "ETH-USDT-SWAP",
    "SOL-USDT-SWAP",
)  # trades and market context; liquidations: all

LIQUIDATION_ORDERS: Final = "liquidation-orders"  # one subscription per instType, all instruments
TRADES: Final = "trades"
# Market context, one subscription per instId each: mark price (pushed every 200 ms while it
# changes, else every 10 s), funding rate (every 30-90 s), open interest (every 3 s on change).
MARK_PRICE: Final = "mark-price"
FUNDING_RATE: Final = "funding-rate"
OPEN_INTEREST: Final = "open-interest"
PER_INSTRUMENT_CHANNELS: Final = (TRADES, MARK_PRICE, FUNDING_RATE, OPEN_INTEREST)
INST_TYPE: Final = "SWAP"

MAX_ARGS_BYTES: Final = 64 * 1024  # total length of one subscribe request's args
MAX_SUBSCRIBE_REQUESTS_PER_HOUR: Final = 480  # per connection (subscribe/unsubscribe/login)
SUBSCRIBE_ID_PREFIX: Final = "sub"  # request ids "sub1", "sub2", ... (echoed in replies)

PING_FRAME: Final = "ping"
PONG_FRAME: Final = "pong"
UPGRADE_NOTICE_CODE: Final = "64008"  # sent ~60 s before a service-upgrade disconnect

INSTRUMENTS_PATH: Final = "/api/v5/public/instruments?instType=SWAP"
