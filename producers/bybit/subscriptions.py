"""Bybit subscribe requests: three topics for every configured symbol, at most 10 args a request.

Liquidation topics come first, so they are live before the (much busier) trade topics; the
market-context ``tickers`` topics come last.
"""

from __future__ import annotations

import orjson

from monitor.core.config import ExchangeConfig
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


# Liquidation topics of listed-but-not-configured symbols go on sockets of their own, at most this
# many topics each (Bybit documents no per-connection cap; 2026 collectors ran ~800 on one).
MAX_TOPICS_PER_CONNECTION = 500


def inverse_url(base_url: str) -> str:
    """The inverse socket beside the configured linear one: ``.../v5/public/inverse``."""
    head, _, last = base_url.rstrip("/").rpartition("/")
    return f"{head}/inverse" if last == "linear" else f"{base_url.rstrip('/')}/inverse"


def plan_connections(
    cfg: ExchangeConfig,
    base_url: str,
    listed: tuple[str, ...] = (),
    listed_inverse: tuple[str, ...] = (),
) -> list[ConnectionPlan]:
    """``public``: every topic of the configured symbols. ``liquidations``, ``liquidations-2``,
    ...: ``allLiquidation`` of every other listed linear symbol (``all_liquidations``).
    ``inverse``, ``inverse-2``, ...: ``allLiquidation`` of every listed inverse perpetual, on the
    inverse socket (``inverse_url``)."""
    plans = []
    args = topics(cfg.symbols)
    if args:
        plans.append(ConnectionPlan("public", base_url, subscribe_frames(args)))
    configured = {s.upper() for s in cfg.symbols}
    rest = [f"{ALL_LIQUIDATION}.{s}" for s in dict.fromkeys(listed) if s not in configured]
    plans += _liquidation_plans("liquidations", base_url, rest)
    inverse = [f"{ALL_LIQUIDATION}.{s}" for s in dict.fromkeys(listed_inverse)]
    plans += _liquidation_plans("inverse", inverse_url(base_url), inverse)
    return plans


def _liquidation_plans(name: str, url: str, args: list[str]) -> list[ConnectionPlan]:
    return [
        ConnectionPlan(
            name if n == 0 else f"{name}-{n + 1}",
            url,
            subscribe_frames(args[i : i + MAX_TOPICS_PER_CONNECTION]),
        )
        for n, i in enumerate(range(0, len(args), MAX_TOPICS_PER_CONNECTION))
    ]
