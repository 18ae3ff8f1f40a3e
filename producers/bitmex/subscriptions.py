"""BitMEX subscribe requests: ``liquidation`` (every symbol) first, then ``trade:<SYMBOL>``."""

from __future__ import annotations

import orjson

from monitor.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.bitmex.endpoints import LIQUIDATION, MAX_ARGS_PER_SUBSCRIBE, TRADE


def topics(symbols: tuple[str, ...]) -> list[str]:
    return [LIQUIDATION] + [f"{TRADE}:{s}" for s in dict.fromkeys(s.upper() for s in symbols)]


def subscribe_frames(args: list[str], per_request: int = MAX_ARGS_PER_SUBSCRIBE) -> tuple[str, ...]:
    return tuple(
        orjson.dumps({"op": "subscribe", "args": args[i : i + per_request]}).decode()
        for i in range(0, len(args), per_request)
    )


def plan_connections(cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
    """One socket: the liquidation table always (it covers every symbol), trades as configured."""
    return [ConnectionPlan("public", base_url, subscribe_frames(topics(cfg.symbols)))]
