from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from monitor.core.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.binance import BinanceAdapter
from producers.binance.endpoints import DEFAULT_WS_URL, MAX_STREAMS_PER_CONNECTION
from producers.binance.subscriptions import plan_connections


def test_default_plan_against_the_real_base() -> None:
    cfg = ExchangeConfig(symbols=("BTCUSDT", "ethusdt", "BTCUSDT"))
    plans = BinanceAdapter(cfg).connections(cfg, DEFAULT_WS_URL)
    assert plans == [
        ConnectionPlan("liquidations", "wss://fstream.binance.com/market/ws/!forceOrder@arr"),
        ConnectionPlan(
            "trades",
            "wss://fstream.binance.com/market/stream?streams="
            "btcusdt@aggTrade/btcusdt@markPrice@1s/ethusdt@aggTrade/ethusdt@markPrice@1s",
        ),
    ]
    assert all(p.subscribe == () for p in plans)  # subscribed through the URL


def test_trailing_slash_and_no_symbols() -> None:
    plans = plan_connections(ExchangeConfig(symbols=()), "ws://127.0.0.1:9000/market/")
    assert plans == [
        ConnectionPlan("liquidations", "ws://127.0.0.1:9000/market/ws/!forceOrder@arr")
    ]


def test_symbol_streams_are_sharded_at_1024_streams() -> None:
    # two streams per symbol: 512 symbols per connection
    symbols = tuple(f"C{i}USDT" for i in range(MAX_STREAMS_PER_CONNECTION + 5))
    plans = plan_connections(ExchangeConfig(symbols=symbols), "ws://h/market")
    assert [p.name for p in plans] == ["liquidations", "trades", "trades-2", "trades-3"]
    shards = [parse_qs(urlsplit(p.url).query)["streams"][0].split("/") for p in plans[1:]]
    assert [len(s) for s in shards] == [1024, 1024, 10]
    flat = [s for shard in shards for s in shard]
    assert flat == [
        f"c{i}usdt{suffix}"
        for i in range(len(symbols))
        for suffix in ("@aggTrade", "@markPrice@1s")
    ]
    assert shards[1][:2] == ["c512usdt@aggTrade", "c512usdt@markPrice@1s"]
    assert all(urlsplit(p.url).path == "/market/stream" for p in plans[1:])


def test_an_odd_limit_never_splits_a_symbol() -> None:
    plans = plan_connections(ExchangeConfig(symbols=("AUSDT", "BUSDT", "CUSDT")), "ws://h/m", 5)
    assert [p.url for p in plans[1:]] == [
        "ws://h/m/stream?streams=ausdt@aggTrade/ausdt@markPrice@1s/busdt@aggTrade/busdt@markPrice@1s",
        "ws://h/m/stream?streams=cusdt@aggTrade/cusdt@markPrice@1s",
    ]
    with pytest.raises(ValueError, match="two streams"):
        plan_connections(ExchangeConfig(symbols=("AUSDT",)), "ws://h/m", 1)


def test_heartbeat_is_left_to_the_server() -> None:
    assert BinanceAdapter(ExchangeConfig()).heartbeat() is None
