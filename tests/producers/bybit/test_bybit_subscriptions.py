from __future__ import annotations

import orjson

from monitor.core.config import ExchangeConfig
from producers.bybit.endpoints import MAX_ARGS_PER_SUBSCRIBE
from producers.bybit.subscriptions import plan_connections, subscribe_frames, topics


def test_topics_liquidations_first_deduplicated_upper_case() -> None:
    assert topics(("BTCUSDT", "solusdt", "BTCUSDT")) == [
        "allLiquidation.BTCUSDT",
        "allLiquidation.SOLUSDT",
        "publicTrade.BTCUSDT",
        "publicTrade.SOLUSDT",
        "tickers.BTCUSDT",
        "tickers.SOLUSDT",
    ]


def test_at_most_ten_args_per_request_with_distinct_req_ids() -> None:
    syms = tuple(f"C{i}USDT" for i in range(23))
    frames = [orjson.loads(f) for f in subscribe_frames(topics(syms))]
    assert [len(f["args"]) for f in frames] == [10, 10, 10, 10, 10, 10, 9]
    assert all(len(f["args"]) <= MAX_ARGS_PER_SUBSCRIBE for f in frames)
    assert [f["req_id"] for f in frames] == [f"sub-{i}" for i in range(1, 8)]
    assert [a for f in frames for a in f["args"]] == topics(syms)
    assert {f["op"] for f in frames} == {"subscribe"}


def test_one_connection_or_none() -> None:
    (plan,) = plan_connections(ExchangeConfig(symbols=("BTCUSDT",)), "ws://127.0.0.1:1/v5")
    assert (plan.name, plan.url, len(plan.subscribe)) == ("public", "ws://127.0.0.1:1/v5", 1)
    assert plan_connections(ExchangeConfig(symbols=()), "ws://127.0.0.1:1/v5") == []


def test_tickers_are_batched_with_the_other_topics() -> None:
    """4 symbols x 3 channels = 12 topics: two requests, the tickers spilling into the second."""
    cfg = ExchangeConfig(symbols=("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"))
    (plan,) = plan_connections(cfg, "ws://127.0.0.1:1/v5")
    frames = [orjson.loads(f) for f in plan.subscribe]
    assert [f["args"] for f in frames] == [
        [
            "allLiquidation.BTCUSDT", "allLiquidation.ETHUSDT", "allLiquidation.SOLUSDT",
            "allLiquidation.XRPUSDT", "publicTrade.BTCUSDT", "publicTrade.ETHUSDT",
            "publicTrade.SOLUSDT", "publicTrade.XRPUSDT", "tickers.BTCUSDT", "tickers.ETHUSDT",
        ],
        ["tickers.SOLUSDT", "tickers.XRPUSDT"],
    ]  # fmt: skip
    assert [f["req_id"] for f in frames] == ["sub-1", "sub-2"]
