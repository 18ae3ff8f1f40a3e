"""Gate subscribe requests: every liquidation (``!all``) first, then the configured contracts'
trades, on one socket that sends the size-decimal header. ``clock`` gives the request ``time``."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from monitor.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.gate.endpoints import (
    ALL_CONTRACTS,
    HEADERS,
    LIQUIDATES,
    MAX_CONTRACTS_PER_REQUEST,
    PING,
    TRADES,
    contract_name,
)


def request(channel: str, payload: list[str], now_s: float) -> str:
    return orjson.dumps(
        {"time": int(now_s), "channel": channel, "event": "subscribe", "payload": payload}
    ).decode()


def ping(now_s: float) -> str:
    return orjson.dumps({"time": int(now_s), "channel": PING}).decode()


def subscribe_frames(
    symbols: tuple[str, ...], now_s: float, per_request: int = MAX_CONTRACTS_PER_REQUEST
) -> tuple[str, ...]:
    contracts = list(dict.fromkeys(contract_name(s) for s in symbols))
    frames = [request(LIQUIDATES, [ALL_CONTRACTS], now_s)]
    for i in range(0, len(contracts), per_request):
        frames.append(request(TRADES, contracts[i : i + per_request], now_s))
    return tuple(frames)


def plan_connections(
    cfg: ExchangeConfig, base_url: str, clock: Callable[[], float]
) -> list[ConnectionPlan]:
    """One socket, ``public``, always (``!all`` liquidations need no symbol)."""
    return [ConnectionPlan("public", base_url, subscribe_frames(cfg.symbols, clock()), HEADERS)]
