"""OKX subscribe requests: ``liquidation-orders`` for all SWAPs, then per instId ``trades`` and the
market context channels ``mark-price``, ``funding-rate`` and ``open-interest``.

Every channel goes into one socket; the args are packed greedily into requests whose ``args``
array stays within 64 KB, so a reconnect spends as few of the 480 requests/hour as possible (about
1300 args of about 50 bytes fit in one request: some 330 instIds with their four channels).
"""

from __future__ import annotations

import orjson

from monitor.core.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.okx.endpoints import (
    INST_TYPE,
    LIQUIDATION_ORDERS,
    MAX_ARGS_BYTES,
    PER_INSTRUMENT_CHANNELS,
    SUBSCRIBE_ID_PREFIX,
)


def channel_args(symbols: tuple[str, ...]) -> list[dict[str, str]]:
    """The liquidation channel first, then for each instId (upper-case, deduplicated, in
    configured order) its ``trades``, ``mark-price``, ``funding-rate``, ``open-interest`` args."""
    inst_ids = dict.fromkeys(s.upper() for s in symbols)
    return [{"channel": LIQUIDATION_ORDERS, "instType": INST_TYPE}] + [
        {"channel": c, "instId": i} for i in inst_ids for c in PER_INSTRUMENT_CHANNELS
    ]


def subscribe_frames(
    args: list[dict[str, str]], max_args_bytes: int = MAX_ARGS_BYTES
) -> tuple[str, ...]:
    """``{"id":"subN","op":"subscribe","args":[...]}`` frames, each ``args`` array (as JSON) at most
    ``max_args_bytes`` long. An arg longer than the limit on its own goes alone in a request."""
    batches: list[list[dict[str, str]]] = []
    size = 0
    for arg in args:
        n = len(orjson.dumps(arg))
        if batches and size + 1 + n <= max_args_bytes:  # "," + arg, inside the same "[...]"
            batches[-1].append(arg)
            size += 1 + n
        else:
            batches.append([arg])
            size = 2 + n  # "[" + arg + "]"
    return tuple(
        orjson.dumps({"id": f"{SUBSCRIBE_ID_PREFIX}{i}", "op": "subscribe", "args": b}).decode()
        for i, b in enumerate(batches, start=1)
    )


def plan_connections(cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
    """One socket carrying every channel (liquidations even when no symbol is configured)."""
    return [ConnectionPlan("public", base_url, subscribe_frames(channel_args(cfg.symbols)))]
