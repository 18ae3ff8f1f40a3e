"""Bitget subscribe requests: ``liquidation`` for the whole usdt-futures segment, then per
configured symbol ``publicTrade`` and ``ticker`` (market context).

Sockets carry at most ``MAX_CHANNELS_PER_CONNECTION`` channels: ``public`` (the liquidation topic
first, then the per-symbol topics), then ``public-2``, ... for further ones. Each request's
``args`` stays within ``MAX_ARGS_BYTES``.
"""

from __future__ import annotations

import orjson

from monitor.core.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.bitget.endpoints import (
    INST_TYPE,
    LIQUIDATION,
    MAX_ARGS_BYTES,
    MAX_CHANNELS_PER_CONNECTION,
    PER_SYMBOL_TOPICS,
)


def channel_args(symbols: tuple[str, ...]) -> list[dict[str, str]]:
    """The liquidation topic first, then for each symbol (upper-case, deduplicated, in configured
    order) its ``publicTrade`` and ``ticker`` args."""
    syms = dict.fromkeys(s.upper() for s in symbols)
    return [{"instType": INST_TYPE, "topic": LIQUIDATION}] + [
        {"instType": INST_TYPE, "topic": t, "symbol": s} for s in syms for t in PER_SYMBOL_TOPICS
    ]


def subscribe_frames(
    args: list[dict[str, str]], max_args_bytes: int = MAX_ARGS_BYTES
) -> tuple[str, ...]:
    """``{"op":"subscribe","args":[...]}`` frames, each ``args`` array at most ``max_args_bytes``
    long as JSON (an arg longer than that on its own goes alone)."""
    batches: list[list[dict[str, str]]] = []
    size = 0
    for arg in args:
        n = len(orjson.dumps(arg))
        if batches and size + 1 + n <= max_args_bytes:
            batches[-1].append(arg)
            size += 1 + n
        else:
            batches.append([arg])
            size = 2 + n
    return tuple(orjson.dumps({"op": "subscribe", "args": b}).decode() for b in batches)


def plan_connections(
    cfg: ExchangeConfig, base_url: str, per_connection: int = MAX_CHANNELS_PER_CONNECTION
) -> list[ConnectionPlan]:
    args = channel_args(cfg.symbols)
    plans = []
    for i in range(0, len(args), per_connection):
        shard = i // per_connection
        name = "public" if shard == 0 else f"public-{shard + 1}"
        plans.append(ConnectionPlan(name, base_url, subscribe_frames(args[i : i + per_connection])))
    return plans
