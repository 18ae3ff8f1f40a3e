"""Hyperliquid subscribe requests: per configured coin, ``trades`` then ``activeAssetCtx``.

Each subscription is its own request (Hyperliquid takes one per message); both count against the
1000 subscriptions per IP, so only the first ``MAX_COINS`` (500) distinct coins are subscribed.
"""

from __future__ import annotations

import orjson

from monitor.core.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.hyperliquid.endpoints import MAX_COINS, PER_COIN_SUBSCRIPTIONS


def subscribe_frames(coins: tuple[str, ...]) -> tuple[str, ...]:
    """Coins as Hyperliquid spells them (``BTC``, ``kPEPE``: case kept), duplicates dropped; for
    each coin its ``trades`` and ``activeAssetCtx`` requests, in that order."""
    unique = list(dict.fromkeys(coins))[:MAX_COINS]
    return tuple(
        orjson.dumps({"method": "subscribe", "subscription": {"type": t, "coin": c}}).decode()
        for c in unique
        for t in PER_COIN_SUBSCRIPTIONS
    )


def plan_connections(cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
    """One socket carrying every coin's trades and market context."""
    frames = subscribe_frames(cfg.symbols)
    return [ConnectionPlan("public", base_url, frames)] if frames else []
