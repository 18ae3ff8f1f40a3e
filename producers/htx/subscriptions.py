"""Which HTX sockets to open:

* ``liquidations`` on the notification endpoint: every liquidation (one wildcard subscription),
  then ``public.<CODE>.funding_rate`` for each configured contract (small scopes only: HTX refuses
  a contract topic after the wildcard of the same topic, not a different topic);
* ``trades`` on the market-data endpoint: the configured contracts' trades (one ``sub`` each);
* ``context`` on ``ws_index``: the configured contracts' mark price and index 1-minute klines.

HTX takes one topic per request and at most 40 requests per second on a connection; the session
sends the frames about 8 a second."""

from __future__ import annotations

import orjson

from monitor.core.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.htx.endpoints import (
    LIQUIDATION_BUSINESS_TYPE,
    LIQUIDATION_TOPIC_ALL,
    contract_code,
    funding_topic,
    index_topic,
    index_url,
    mark_price_topic,
    market_url,
    notification_url,
    trade_topic,
)


def contract_codes(symbols: tuple[str, ...]) -> list[str]:
    """The configured symbols in HTX spelling, in configured order, duplicates dropped."""
    return list(dict.fromkeys(contract_code(s) for s in symbols))


def trade_topics(symbols: tuple[str, ...]) -> list[str]:
    """``BTC-USDT`` -> ``market.BTC-USDT.trade.detail``, in configured order, duplicates dropped."""
    return [trade_topic(c) for c in contract_codes(symbols)]


def liquidation_subscribe() -> str:
    return orjson.dumps(
        {
            "op": "sub",
            "cid": "liq-1",
            "topic": LIQUIDATION_TOPIC_ALL,
            "business_type": LIQUIDATION_BUSINESS_TYPE,
        }
    ).decode()


def funding_subscribes(codes: list[str]) -> tuple[str, ...]:
    """``{"op": "sub", "cid": "funding-N", "topic": "public.<CODE>.funding_rate"}`` per contract."""
    return tuple(
        orjson.dumps({"op": "sub", "cid": f"funding-{i + 1}", "topic": funding_topic(c)}).decode()
        for i, c in enumerate(codes)
    )


def trade_subscribes(topics: list[str]) -> tuple[str, ...]:
    """``{"sub": "<topic>", "id": "trades-N"}``, one request per topic (HTX takes one each)."""
    return tuple(
        orjson.dumps({"sub": t, "id": f"trades-{i + 1}"}).decode() for i, t in enumerate(topics)
    )


def context_subscribes(codes: list[str]) -> tuple[str, ...]:
    """Per contract ``{"sub": "market.<CODE>.mark_price.1min", "id": "mark-N"}`` then the same
    for ``index`` (``index-N``)."""
    frames: list[str] = []
    for i, c in enumerate(codes, start=1):
        frames.append(orjson.dumps({"sub": mark_price_topic(c), "id": f"mark-{i}"}).decode())
        frames.append(orjson.dumps({"sub": index_topic(c), "id": f"index-{i}"}).decode())
    return tuple(frames)


def plan_connections(cfg: ExchangeConfig, base_url: str) -> list[ConnectionPlan]:
    """``liquidations`` on ``{base}/linear-swap-notification`` always (the wildcard covers every
    swap; with the configured contracts' funding rates), then ``trades`` on
    ``{base}/linear-swap-ws`` and ``context`` on ``{base}/ws_index`` when symbols are configured."""
    codes = contract_codes(cfg.symbols)
    notification = (liquidation_subscribe(), *funding_subscribes(codes))
    plans = [ConnectionPlan("liquidations", notification_url(base_url), notification)]
    if codes:
        topics = [trade_topic(c) for c in codes]
        plans.append(ConnectionPlan("trades", market_url(base_url), trade_subscribes(topics)))
        plans.append(ConnectionPlan("context", index_url(base_url), context_subscribes(codes)))
    return plans
