"""Kraken Futures subscribe requests: one ``trade`` request for every product, then one ``ticker``
request (market context) for the same products, then ``heartbeat``."""

from __future__ import annotations

import orjson

from monitor.core.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.kraken.endpoints import HEARTBEAT, TICKER, TRADE


def subscribe_frames(symbols: tuple[str, ...]) -> tuple[str, ...]:
    products = list(dict.fromkeys(s.upper() for s in symbols))
    if not products:
        return ()
    trade = {"event": "subscribe", "feed": TRADE, "product_ids": products}
    ticker = {"event": "subscribe", "feed": TICKER, "product_ids": products}
    beat = {"event": "subscribe", "feed": HEARTBEAT}
    return tuple(orjson.dumps(r).decode() for r in (trade, ticker, beat))


def plan_connections(cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
    """One socket; none when no product is configured (liquidations ride on the trade feed)."""
    frames = subscribe_frames(cfg.symbols)
    return [ConnectionPlan("public", base_url, frames)] if frames else []
