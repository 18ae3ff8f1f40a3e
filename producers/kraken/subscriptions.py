"""Kraken Futures subscribe requests: one ``trade`` request for every product, then ``heartbeat``."""

from __future__ import annotations

import orjson

from monitor.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.kraken.endpoints import HEARTBEAT, TRADE


def subscribe_frames(symbols: tuple[str, ...]) -> tuple[str, ...]:
    products = list(dict.fromkeys(s.upper() for s in symbols))
    if not products:
        return ()
    trade = {"event": "subscribe", "feed": TRADE, "product_ids": products}
    beat = {"event": "subscribe", "feed": HEARTBEAT}
    return (orjson.dumps(trade).decode(), orjson.dumps(beat).decode())


def plan_connections(cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
    """One socket; none when no product is configured (liquidations ride on the trade feed)."""
    frames = subscribe_frames(cfg.symbols)
    return [ConnectionPlan("public", base_url, frames)] if frames else []
