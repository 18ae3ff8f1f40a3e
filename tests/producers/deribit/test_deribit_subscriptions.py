from __future__ import annotations

import orjson

from monitor.core.config import ExchangeConfig
from producers.base import ConnectionPlan
from producers.deribit import DeribitAdapter
from producers.deribit.subscriptions import channels, subscribe_frames

URL = "wss://www.deribit.com/ws/api/v2"


def test_plan_sets_heartbeat_then_subscribes() -> None:
    cfg = ExchangeConfig(symbols=("BTC-PERPETUAL", "eth-perpetual", "BTC-PERPETUAL"))
    plans = DeribitAdapter(cfg).connections(cfg, URL)
    assert [(p.name, p.url) for p in plans] == [("public", URL)]
    assert [orjson.loads(f) for f in plans[0].subscribe] == [
        {"jsonrpc": "2.0", "id": 1, "method": "public/set_heartbeat", "params": {"interval": 30}},
        {"jsonrpc": "2.0", "id": 2, "method": "public/subscribe",
         "params": {"channels": ["trades.BTC-PERPETUAL.100ms", "trades.ETH-PERPETUAL.100ms",
                                 "ticker.BTC-PERPETUAL.100ms", "ticker.ETH-PERPETUAL.100ms"]}},
    ]  # fmt: skip


def test_no_symbols_no_socket() -> None:
    cfg = ExchangeConfig()
    assert DeribitAdapter(cfg).connections(cfg, URL) == []


def test_subscribe_batches() -> None:
    chans = channels(tuple(f"S{i}-PERPETUAL" for i in range(5)))
    assert len(chans) == 10 and chans[4] == "trades.S4-PERPETUAL.100ms"
    assert chans[5] == "ticker.S0-PERPETUAL.100ms"  # market context after every trade channel
    frames = [orjson.loads(f) for f in subscribe_frames(chans, per_request=4)]
    assert [(f["id"], len(f["params"]["channels"])) for f in frames] == [(2, 4), (3, 4), (4, 2)]


def test_many_instruments_stay_within_the_batch_size() -> None:
    cfg = ExchangeConfig(symbols=tuple(f"S{i}-PERPETUAL" for i in range(40)), max_symbols=100)
    (plan,) = DeribitAdapter(cfg).connections(cfg, URL)
    batches = [orjson.loads(f)["params"]["channels"] for f in plan.subscribe[1:]]
    assert [len(b) for b in batches] == [64, 16]
    assert sum(c.startswith("ticker.") for b in batches for c in b) == 40


def test_client_heartbeat_is_public_test() -> None:
    hb = DeribitAdapter(ExchangeConfig()).heartbeat()
    assert hb is not None
    assert orjson.loads(hb) == {"jsonrpc": "2.0", "id": 9, "method": "public/test", "params": {}}
    assert isinstance(ConnectionPlan("x", URL), ConnectionPlan)
