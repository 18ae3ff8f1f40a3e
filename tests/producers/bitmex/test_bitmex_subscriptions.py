from __future__ import annotations

import orjson

from monitor.core.config import ExchangeConfig
from producers.bitmex import BitmexAdapter
from producers.bitmex.subscriptions import subscribe_frames

URL = "wss://ws.bitmex.com/realtime"


def test_plan_liquidations_first_then_trades_and_instruments() -> None:
    cfg = ExchangeConfig(symbols=("XBTUSD", "xbtusdt", "XBTUSD"))
    (plan,) = BitmexAdapter(cfg).connections(cfg, URL)
    assert (plan.name, plan.url) == ("public", URL)
    assert [orjson.loads(f) for f in plan.subscribe] == [
        {"op": "subscribe", "args": ["liquidation", "trade:XBTUSD", "instrument:XBTUSD",
                                     "trade:XBTUSDT", "instrument:XBTUSDT"]}
    ]  # fmt: skip


def test_many_symbols_in_requests_of_50() -> None:
    cfg = ExchangeConfig(symbols=tuple(f"S{i}USDT" for i in range(30)))
    (plan,) = BitmexAdapter(cfg).connections(cfg, URL)
    args = [orjson.loads(f)["args"] for f in plan.subscribe]
    assert [len(a) for a in args] == [50, 11]  # 1 + 30 x (trade, instrument)
    assert args[0][:3] == ["liquidation", "trade:S0USDT", "instrument:S0USDT"]
    assert args[1][-1] == "instrument:S29USDT"


def test_liquidations_even_without_trade_symbols() -> None:
    cfg = ExchangeConfig()
    (plan,) = BitmexAdapter(cfg).connections(cfg, URL)
    assert plan.subscribe == ('{"op":"subscribe","args":["liquidation"]}',)


def test_batches() -> None:
    frames = subscribe_frames([f"t{i}" for i in range(5)], per_request=2)
    assert [len(orjson.loads(f)["args"]) for f in frames] == [2, 2, 1]
