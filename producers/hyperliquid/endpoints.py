"""Hyperliquid websocket endpoint and connection rules (exchange-feeds.md s9).

The configured URL is the full socket URL (``wss://api.hyperliquid.xyz/ws``). One subscribe
request per coin (``{"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}}``);
the server closes a connection it has sent nothing to for 60 s, so the client sends the JSON
heartbeat ``{"method": "ping"}`` (answered ``{"channel": "pong"}``) every ``ping_interval_s``.
Limits (official rate-limits page): 1000 subscriptions and 2000 messages/min sent per IP.
"""

from __future__ import annotations

from typing import Final

EXCHANGE: Final = "hyperliquid"
DEFAULT_WS_URL: Final = "wss://api.hyperliquid.xyz/ws"
TRADES: Final = "trades"
MAX_SUBSCRIPTIONS: Final = 1000
PING_FRAME: Final = '{"method":"ping"}'
