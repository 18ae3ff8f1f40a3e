"""HTX USDT-margined swap endpoints and connection rules (docs/venues.md §6).

The configured URL is the host *base* (``wss://api.hbdm.com``): market data (trades) lives under
``{base}/linear-swap-ws``, the public liquidation and funding-rate topics under
``{base}/linear-swap-notification``, and the mark price and index klines under ``{base}/ws_index``
(HTX's "index and basis" endpoint: the mark price kline is documented there, not on the market
endpoint). Every server frame is GZIP-compressed binary. The server pings about every 5 s,
differently per endpoint (``{"ping": n}`` on market data and ws_index, ``{"op": "ping", "ts":
"..."}`` on notification), and disconnects a client that ignores several in a row; the client sends
no heartbeat of its own.

Open interest has no public websocket topic: it is polled over REST,
``GET {rest}/linear-swap-api/v1/swap_open_interest?contract_code=BTC-USDT`` (a "non-market data"
public interface: 240 requests per 3 s per IP, far above one poll per contract per interval).
"""

from __future__ import annotations

from typing import Final

EXCHANGE: Final = "htx"
DEFAULT_WS_URL: Final = (
    "wss://api.hbdm.com"  # + /linear-swap-ws (trades), /linear-swap-notification
)
DEFAULT_REST_URL: Final = "https://api.hbdm.com"
DEFAULT_SYMBOLS: Final = (
    "BTC-USDT",
    "ETH-USDT",
    "SOL-USDT",
)  # trades and market context; liquidations: all

MARKET_PATH: Final = "/linear-swap-ws"
NOTIFICATION_PATH: Final = "/linear-swap-notification"
INDEX_PATH: Final = "/ws_index"
CONTRACT_INFO_PATH: Final = "/linear-swap-api/v1/swap_contract_info"
OPEN_INTEREST_PATH: Final = "/linear-swap-api/v1/swap_open_interest"

# Topics. Liquidations: ``public.<contract_code>.liquidation_orders`` (``*`` = every contract of
# the subscription's ``business_type``); trades: ``market.<contract_code>.trade.detail``.
LIQUIDATION_TOPIC_ALL: Final = "public.*.liquidation_orders"
LIQUIDATION_BUSINESS_TYPE: Final = "swap"  # the wildcard needs a business_type (UNVERIFIED live)
MAX_SUBSCRIPTIONS_PER_S: Final = 40  # per connection; the session spaces frames well under this

# Market context topics, one subscription per configured contract each:
# ``public.<CODE>.funding_rate`` (notification endpoint; the push cadence is not documented),
# ``market.<CODE>.mark_price.<period>`` and ``market.<CODE>.index.<period>`` (ws_index; the index
# kline is pushed whenever the index changes). The close of the current 1-minute kline is the
# latest mark / index price.
FUNDING_RATE: Final = "funding_rate"
MARK_PRICE: Final = "mark_price"
INDEX: Final = "index"
KLINE_PERIOD: Final = "1min"  # subscribed; the parser takes the close of any documented period
KLINE_PERIODS: Final = ("1min", "5min", "15min", "30min", "60min", "4hour", "1day", "1week", "1mon")

# Upper bound of one decompressed frame: a gzip bomb is refused, not inflated.
MAX_JSON_BYTES: Final = 8 * 1024 * 1024
SETTLE: Final = "USDT"


def market_url(base: str) -> str:
    return f"{base.rstrip('/')}{MARKET_PATH}"


def notification_url(base: str) -> str:
    return f"{base.rstrip('/')}{NOTIFICATION_PATH}"


def index_url(base: str) -> str:
    return f"{base.rstrip('/')}{INDEX_PATH}"


def trade_topic(contract_code: str) -> str:
    return f"market.{contract_code}.trade.detail"


def funding_topic(contract_code: str) -> str:
    return f"public.{contract_code}.{FUNDING_RATE}"


def mark_price_topic(contract_code: str) -> str:
    return f"market.{contract_code}.{MARK_PRICE}.{KLINE_PERIOD}"


def index_topic(contract_code: str) -> str:
    return f"market.{contract_code}.{INDEX}.{KLINE_PERIOD}"


def contract_code(symbol: str) -> str:
    """A configured symbol in HTX spelling: ``btc-usdt`` -> ``BTC-USDT``; the concatenated
    ``BTCUSDT`` is accepted too (-> ``BTC-USDT``)."""
    sym = symbol.upper().replace("_", "-")
    if "-" not in sym and sym.endswith(SETTLE) and len(sym) > len(SETTLE):
        sym = f"{sym[: -len(SETTLE)]}-{SETTLE}"
    return sym
