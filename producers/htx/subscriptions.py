"""Which HTX sockets to open: the notification endpoint for every liquidation (one wildcard
subscription), the market-data endpoint for the configured contracts' trades (one ``sub`` each)."""

from __future__ import annotations

import orjson

from monitor.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.htx.endpoints import (
    LIQUIDATION_BUSINESS_TYPE,
    LIQUIDATION_TOPIC_ALL,
    contract_code,
    market_url,
    notification_url,
    trade_topic,
)


def trade_topics(symbols: tuple[str, ...]) -> list[str]:
    """``BTC-USDT`` -> ``market.BTC-USDT.trade.detail``, in configured order, duplicates dropped."""
    return [trade_topic(c) for c in dict.fromkeys(contract_code(s) for s in symbols)]


def liquidation_subscribe() -> str:
    return orjson.dumps(
        {
            "op": "sub",
            "cid": "liq-1",
            "topic": LIQUIDATION_TOPIC_ALL,
            "business_type": LIQUIDATION_BUSINESS_TYPE,
        }
    ).decode()


def trade_subscribes(topics: list[str]) -> tuple[str, ...]:
    """``{"sub": "<topic>", "id": "trades-N"}``, one request per topic (HTX takes one each)."""
    return tuple(
        orjson.dumps({"sub": t, "id": f"trades-{i + 1}"}).decode() for i, t in enumerate(topics)
    )


def plan_connections(cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
    """``liquidations`` on ``{base}/linear-swap-notification`` always (the wildcard covers every
    swap), then ``trades`` on ``{base}/linear-swap-ws`` when symbols are configured."""
    plans = [ConnectionPlan("liquidations", notification_url(base_url), (liquidation_subscribe(),))]
    topics = trade_topics(cfg.symbols)
    if topics:
        plans.append(ConnectionPlan("trades", market_url(base_url), trade_subscribes(topics)))
    return plans
