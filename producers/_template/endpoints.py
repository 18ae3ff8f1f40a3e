"""A venue's facts, each from its documentation (name the page): endpoints, channels, limits.

This template's venue is fictional: one public socket at ``/ws``, subscribed with
``{"op": "subscribe", "channel": ..., "symbols": [...]}``, pushing
``{"channel": "liquidations" | "trades", "data": [...]}``.
"""

from __future__ import annotations

from typing import Final

EXCHANGE: Final = "template"
DEFAULT_WS_URL: Final = "wss://stream.example.com/ws"
DEFAULT_REST_URL: Final = "https://api.example.com"
DEFAULT_SYMBOLS: Final = ("BTCUSDT", "ETHUSDT")  # trades and market context; liquidations: all
LIQUIDATIONS: Final = "liquidations"  # every symbol, one subscription
TRADES: Final = "trades"  # per symbol
