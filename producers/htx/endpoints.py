"""HTX USDT-margined swap endpoints and connection rules (exchange-feeds.md s6).

The configured URL is the host *base* (``wss://api.hbdm.com``): market data (trades) lives under
``{base}/linear-swap-ws`` and the public liquidation topic under ``{base}/linear-swap-notification``.
Every server frame is GZIP-compressed binary. The server pings about every 5 s, differently per
endpoint (``{"ping": n}`` on market data, ``{"op": "ping", "ts": "..."}`` on notification), and
disconnects a client that ignores several in a row; the client sends no heartbeat of its own.
"""

from __future__ import annotations

from typing import Final

EXCHANGE: Final = "htx"

DEFAULT_WS_BASE: Final = "wss://api.hbdm.com"
DEFAULT_REST_BASE: Final = "https://api.hbdm.com"
MARKET_PATH: Final = "/linear-swap-ws"
NOTIFICATION_PATH: Final = "/linear-swap-notification"
CONTRACT_INFO_PATH: Final = "/linear-swap-api/v1/swap_contract_info"

# Topics. Liquidations: ``public.<contract_code>.liquidation_orders`` (``*`` = every contract of
# the subscription's ``business_type``); trades: ``market.<contract_code>.trade.detail``.
LIQUIDATION_TOPIC_ALL: Final = "public.*.liquidation_orders"
LIQUIDATION_BUSINESS_TYPE: Final = "swap"  # the wildcard needs a business_type (UNVERIFIED live)
MAX_SUBSCRIPTIONS_PER_S: Final = 40  # per connection; the session spaces frames well under this

# Upper bound of one decompressed frame: a gzip bomb is refused, not inflated.
MAX_JSON_BYTES: Final = 8 * 1024 * 1024
SETTLE: Final = "USDT"


def market_url(base: str) -> str:
    return f"{base.rstrip('/')}{MARKET_PATH}"


def notification_url(base: str) -> str:
    return f"{base.rstrip('/')}{NOTIFICATION_PATH}"


def trade_topic(contract_code: str) -> str:
    return f"market.{contract_code}.trade.detail"


def contract_code(symbol: str) -> str:
    """A configured symbol in HTX spelling: ``btc-usdt`` -> ``BTC-USDT``; the concatenated
    ``BTCUSDT`` is accepted too (-> ``BTC-USDT``)."""
    sym = symbol.upper().replace("_", "-")
    if "-" not in sym and sym.endswith(SETTLE) and len(sym) > len(SETTLE):
        sym = f"{sym[: -len(SETTLE)]}-{SETTLE}"
    return sym
