"""Hyperliquid subscribe requests: one ``trades`` subscription per configured coin."""

from __future__ import annotations

import orjson

from monitor.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.hyperliquid.endpoints import MAX_SUBSCRIPTIONS, TRADES


def subscribe_frames(coins: tuple[str, ...]) -> tuple[str, ...]:
    """Coins as Hyperliquid spells them (``BTC``, ``kPEPE``: case kept), duplicates dropped."""
    unique = list(dict.fromkeys(coins))[:MAX_SUBSCRIPTIONS]
    return tuple(
        orjson.dumps({"method": "subscribe", "subscription": {"type": TRADES, "coin": c}}).decode()
        for c in unique
    )


def plan_connections(cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
    frames = subscribe_frames(cfg.symbols)
    return [ConnectionPlan("trades", base_url, frames)] if frames else []
