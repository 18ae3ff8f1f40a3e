"""BitMEX subscribe requests: ``liquidation`` (every symbol) first, then per configured symbol
``trade:<SYMBOL>`` and ``instrument:<SYMBOL>`` (market context)."""

from __future__ import annotations

import orjson

from monitor.core.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.bitmex.endpoints import LIQUIDATION, MAX_ARGS_PER_SUBSCRIBE, PER_SYMBOL_TABLES


def topics(symbols: tuple[str, ...]) -> list[str]:
    """``liquidation``, then for each symbol (upper-case, deduplicated, in configured order) its
    ``trade:`` and ``instrument:`` topics."""
    syms = dict.fromkeys(s.upper() for s in symbols)
    return [LIQUIDATION] + [f"{t}:{s}" for s in syms for t in PER_SYMBOL_TABLES]


def subscribe_frames(args: list[str], per_request: int = MAX_ARGS_PER_SUBSCRIBE) -> tuple[str, ...]:
    return tuple(
        orjson.dumps({"op": "subscribe", "args": args[i : i + per_request]}).decode()
        for i in range(0, len(args), per_request)
    )


def plan_connections(cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
    """One socket: the liquidation table always (it covers every symbol), trades and instruments
    as configured (the wsAPI page sets no subscription limit per connection)."""
    return [ConnectionPlan("public", base_url, subscribe_frames(topics(cfg.symbols)))]
