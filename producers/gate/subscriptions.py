"""Gate subscribe requests: every liquidation (``!all``) first, then the configured contracts'
trades, then their ``futures.tickers`` (market context), at most ``MAX_CONTRACTS_PER_REQUEST``
contracts a request, on one socket that sends the size-decimal header. ``clock`` gives the
request ``time``.

The plan is built once (at start-up, again after the instrument list is loaded) and the session
re-sends the same frames on every reconnect, so ``time`` is the plan's clock, not the send time.
Gate does not check it on public channels (its documented public examples send ``123456``).
``restamp`` rewrites a frame's ``time`` to a given clock: the session change that would use it is
one call in ``Session._open`` (send ``adapter.restamp(frame)`` when the adapter has it) and, for
the ping, calling ``adapter.heartbeat()`` at every beat instead of once per connection.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from monitor.core.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.gate.endpoints import (
    ALL_CONTRACTS,
    HEADERS,
    LIQUIDATES,
    MAX_CONTRACTS_PER_REQUEST,
    PING,
    TICKERS,
    TRADES,
    contract_name,
)


def request(channel: str, payload: list[str], now_s: float) -> str:
    return orjson.dumps(
        {"time": int(now_s), "channel": channel, "event": "subscribe", "payload": payload}
    ).decode()


def ping(now_s: float) -> str:
    return orjson.dumps({"time": int(now_s), "channel": PING}).decode()


def restamp(frame: str, now_s: float) -> str:
    """``frame`` (a request or ping built here) with ``time`` = ``now_s`` (whole seconds); a frame
    that is not a JSON object with an integer ``time`` is returned unchanged."""
    try:
        doc = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return frame
    if type(doc) is not dict or type(doc.get("time")) is not int:
        return frame
    doc["time"] = int(now_s)
    return orjson.dumps(doc).decode()


def subscribe_frames(
    symbols: tuple[str, ...], now_s: float, per_request: int = MAX_CONTRACTS_PER_REQUEST
) -> tuple[str, ...]:
    contracts = list(dict.fromkeys(contract_name(s) for s in symbols))
    frames = [request(LIQUIDATES, [ALL_CONTRACTS], now_s)]
    for channel in (TRADES, TICKERS):
        for i in range(0, len(contracts), per_request):
            frames.append(request(channel, contracts[i : i + per_request], now_s))
    return tuple(frames)


def plan_connections(
    cfg: ExchangeConfig, base_url: str, clock: Callable[[], float]
) -> list[ConnectionPlan]:
    """One socket, ``public``, always (``!all`` liquidations need no symbol)."""
    return [ConnectionPlan("public", base_url, subscribe_frames(cfg.symbols, clock()), HEADERS)]
