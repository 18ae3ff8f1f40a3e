from __future__ import annotations

import orjson

from monitor.core.config import ExchangeConfig
from producers.bitget.endpoints import MAX_ARGS_BYTES
from producers.bitget.subscriptions import channel_args, plan_connections, subscribe_frames

URL = "wss://ws.bitget.com/v3/ws/public"
LIQ = {"instType": "usdt-futures", "topic": "liquidation"}


def test_default_symbols_one_request() -> None:
    (plan,) = plan_connections(ExchangeConfig(symbols=("BTCUSDT", "ethusdt", "BTCUSDT")), URL)
    assert (plan.name, plan.url) == ("public", URL)
    assert plan.subscribe == (
        '{"op":"subscribe","args":[{"instType":"usdt-futures","topic":"liquidation"},'
        '{"instType":"usdt-futures","topic":"publicTrade","symbol":"BTCUSDT"},'
        '{"instType":"usdt-futures","topic":"ticker","symbol":"BTCUSDT"},'
        '{"instType":"usdt-futures","topic":"publicTrade","symbol":"ETHUSDT"},'
        '{"instType":"usdt-futures","topic":"ticker","symbol":"ETHUSDT"}]}',
    )


def test_liquidations_without_trade_symbols() -> None:
    (plan,) = plan_connections(ExchangeConfig(symbols=()), URL)
    assert [orjson.loads(f)["args"] for f in plan.subscribe] == [[LIQ]]


def test_connections_of_50_channels_and_requests_within_4096_bytes() -> None:
    syms = tuple(f"LONGERCOINNAME{i:03d}XYZUSDT" for i in range(60))
    plans = plan_connections(ExchangeConfig(symbols=syms), URL)
    assert [p.name for p in plans] == ["public", "public-2", "public-3"]
    per_plan = [[a for f in p.subscribe for a in orjson.loads(f)["args"]] for p in plans]
    assert [len(a) for a in per_plan] == [50, 50, 21]  # 1 + 60 x (publicTrade, ticker)
    assert per_plan[0][0] == LIQ and LIQ not in per_plan[1] + per_plan[2]
    assert [a for args in per_plan for a in args] == channel_args(syms)
    for p in plans:
        sizes = [len(orjson.dumps(orjson.loads(f)["args"])) for f in p.subscribe]
        assert all(s <= MAX_ARGS_BYTES for s in sizes)
    assert len(orjson.dumps(per_plan[0])) > MAX_ARGS_BYTES  # so the first socket needs two
    assert [len(p.subscribe) for p in plans] == [2, 2, 1]


def test_trades_and_ticker_per_symbol() -> None:
    assert channel_args(("btcusdt", "ETHUSDT", "BTCUSDT")) == [
        LIQ,
        {"instType": "usdt-futures", "topic": "publicTrade", "symbol": "BTCUSDT"},
        {"instType": "usdt-futures", "topic": "ticker", "symbol": "BTCUSDT"},
        {"instType": "usdt-futures", "topic": "publicTrade", "symbol": "ETHUSDT"},
        {"instType": "usdt-futures", "topic": "ticker", "symbol": "ETHUSDT"},
    ]


def test_small_limit() -> None:
    args = channel_args(("AUSDT", "BUSDT"))
    assert [len(orjson.loads(f)["args"]) for f in subscribe_frames(args, 10)] == [1, 1, 1, 1, 1]
    two = len(orjson.dumps(args[:2]))
    assert [len(orjson.loads(f)["args"]) for f in subscribe_frames(args, two)] == [2, 1, 1, 1]
