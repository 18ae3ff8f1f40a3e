from __future__ import annotations

import orjson

from monitor.config import ExchangeConfig
from producers.bybit.endpoints import MAX_ARGS_PER_SUBSCRIBE
from producers.bybit.subscriptions import plan_connections, subscribe_frames, topics


def test_topics_liquidations_first_deduplicated_upper_case() -> None:
    assert topics(("BTCUSDT", "solusdt", "BTCUSDT")) == [
        "allLiquidation.BTCUSDT",
        "allLiquidation.SOLUSDT",
        "publicTrade.BTCUSDT",
        "publicTrade.SOLUSDT",
    ]


def test_at_most_ten_args_per_request_with_distinct_req_ids() -> None:
    syms = tuple(f"C{i}USDT" for i in range(23))
    frames = [orjson.loads(f) for f in subscribe_frames(topics(syms))]
    assert [len(f["args"]) for f in frames] == [10, 10, 10, 10, 6]
    assert all(len(f["args"]) <= MAX_ARGS_PER_SUBSCRIBE for f in frames)
    assert [f["req_id"] for f in frames] == ["sub-1", "sub-2", "sub-3", "sub-4", "sub-5"]
    assert [a for f in frames for a in f["args"]] == topics(syms)
    assert {f["op"] for f in frames} == {"subscribe"}


def test_one_connection_or_none() -> None:
    (plan,) = plan_connections(ExchangeConfig(symbols=("BTCUSDT",)), "ws://127.0.0.1:1/v5")
    assert (plan.name, plan.url, len(plan.subscribe)) == ("public", "ws://127.0.0.1:1/v5", 1)
    assert plan_connections(ExchangeConfig(symbols=()), "ws://127.0.0.1:1/v5") == []
