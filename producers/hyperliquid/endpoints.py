"""Hyperliquid websocket endpoint and connection rules (docs/venues.md §9).

The configured URL is the full socket URL (``wss://api.hyperliquid.xyz/ws``). One subscribe
request per coin and subscription type: ``{"method": "subscribe", "subscription": {"type":
"trades", "coin": "BTC"}}`` and the market context ``{"type": "activeAssetCtx", "coin": "BTC"}``
(mark, oracle and mid price, funding, open interest; pushed when it changes, about every second).
The server closes a connection it has sent nothing to for 60 s, so the client sends the JSON
heartbeat ``{"method": "ping"}`` (answered ``{"channel": "pong"}``) every ``ping_interval_s``.
Limits (official rate-limits page): 1000 subscriptions and 2000 messages/min sent per IP, so at
most ``MAX_COINS`` (500) coins with their two subscriptions each.
"""

from __future__ import annotations

from typing import Final

EXCHANGE: Final = "hyperliquid"
DEFAULT_WS_URL: Final = "wss://api.hyperliquid.xyz/ws"
DEFAULT_REST_URL: Final = "https://api.hyperliquid.xyz"
DEFAULT_SYMBOLS: Final = ("BTC", "ETH", "SOL")  # trades and market context; liquidations: all
TRADES: Final = "trades"
ACTIVE_ASSET_CTX: Final = "activeAssetCtx"  # perpetuals only (spot: activeSpotAssetCtx)
PER_COIN_SUBSCRIPTIONS: Final = (TRADES, ACTIVE_ASSET_CTX)
MAX_SUBSCRIPTIONS: Final = 1000
MAX_COINS: Final = MAX_SUBSCRIPTIONS // len(PER_COIN_SUBSCRIPTIONS)
PING_FRAME: Final = '{"method":"ping"}'
