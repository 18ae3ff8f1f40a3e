"""Deribit subscribe requests: ``public/set_heartbeat`` first, then ``public/subscribe`` batches.

The trade channels of every instrument come first (liquidations ride on them), then the market
context ``ticker`` channels; at most ``MAX_CHANNELS_PER_SUBSCRIBE`` channels per request.
"""

from __future__ import annotations

import orjson

from monitor.core.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.deribit.endpoints import (
    CLIENT_PING_ID,
    FIRST_SUBSCRIBE_ID,
    HEARTBEAT_INTERVAL_S,
    MAX_CHANNELS_PER_SUBSCRIBE,
    SET_HEARTBEAT_ID,
    TICKER,
    TICKER_INTERVAL,
    TRADE_INTERVAL,
    TRADES,
)


def channels(symbols: tuple[str, ...]) -> list[str]:
    """``BTC-PERPETUAL`` -> ``trades.BTC-PERPETUAL.100ms``, in order, duplicates dropped; then
    ``ticker.BTC-PERPETUAL.100ms`` for the same instruments."""
    names = list(dict.fromkeys(s.upper() for s in symbols))
    return [f"{TRADES}.{s}.{TRADE_INTERVAL}" for s in names] + [
        f"{TICKER}.{s}.{TICKER_INTERVAL}" for s in names
    ]


def _request(rid: int, method: str, params: dict[str, object]) -> str:
    return orjson.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}).decode()


def set_heartbeat_frame(interval_s: int = HEARTBEAT_INTERVAL_S) -> str:
    return _request(SET_HEARTBEAT_ID, "public/set_heartbeat", {"interval": interval_s})


def test_frame(rid: int) -> str:
    """``public/test``: the answer to a server ``test_request`` and the client heartbeat."""
    return _request(rid, "public/test", {})


CLIENT_PING_FRAME = test_frame(CLIENT_PING_ID)


def subscribe_frames(
    chans: list[str], per_request: int = MAX_CHANNELS_PER_SUBSCRIBE
) -> tuple[str, ...]:
    frames = []
    for i in range(0, len(chans), per_request):
        params: dict[str, object] = {"channels": chans[i : i + per_request]}
        frames.append(_request(FIRST_SUBSCRIBE_ID + i // per_request, "public/subscribe", params))
    return tuple(frames)


def plan_connections(cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
    """One socket: set_heartbeat, then every trade and ticker channel; none when no symbol is
    configured."""
    chans = channels(cfg.symbols)
    if not chans:
        return []
    return [ConnectionPlan("public", base_url, (set_heartbeat_frame(), *subscribe_frames(chans)))]
