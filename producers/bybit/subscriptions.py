"""Bybit subscribe requests: three topics for every configured symbol, at most 10 args a request.

Liquidation topics come first, so they are live before the (much busier) trade topics; the
market-context ``tickers`` topics come last.
"""

from __future__ import annotations

import orjson

from monitor.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.bybit.endpoints import (
    ALL_LIQUIDATION,
    MAX_ARGS_PER_SUBSCRIBE,
    PUBLIC_TRADE,
    TICKERS,
)


def topics(symbols: tuple[str, ...]) -> list[str]:
    syms = list(dict.fromkeys(s.upper() for s in symbols))
    return [f"{channel}.{s}" for channel in (ALL_LIQUIDATION, PUBLIC_TRADE, TICKERS) for s in syms]


def subscribe_frames(args: list[str], per_request: int = MAX_ARGS_PER_SUBSCRIBE) -> tuple[str, ...]:
    """``{"op":"subscribe","args":[...],"req_id":"sub-N"}`` frames, ``per_request`` args each."""
    return tuple(
        orjson.dumps(
            {
                "op": "subscribe",
                "args": args[i : i + per_request],
                "req_id": f"sub-{i // per_request + 1}",
            }
        ).decode()
        for i in range(0, len(args), per_request)
    )


def plan_connections(cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
    """One socket carrying every topic; none when no symbol is configured."""
    args = topics(cfg.symbols)
    if not args:
        return []
    return [ConnectionPlan("public", base_url, subscribe_frames(args))]
