"""The Hyperliquid protocol module, sans-I/O, and the round trip through the adapter (trades only:
scenario liquidations reach the adapter as plain trades and produce no Liquidation)."""

from __future__ import annotations

import orjson

from monitor.config import ExchangeConfig
from monitor.schema import Trade
from monitor.simulator.hyperliquid import SPEC, HyperliquidFeed, HyperliquidSession
from monitor.simulator.ledger import Ledger, SentTrade
from monitor.simulator.scenario import SimLiquidation, SimTrade
from producers.hyperliquid import HyperliquidAdapter


def test_session_subscribe_ping_and_errors() -> None:
    s = HyperliquidSession("c")
    req = b'{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}'
    r = s.handle(req, 0.0)
    assert r.frames == (
        b'{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}}',
    )
    assert r.subscriptions_changed and list(s.subscriptions) == ["BTC"]
    assert s.handle(req, 0.0).frames == (
        b'{"channel":"error","data":"Already subscribed: {\\"type\\":\\"trades\\",\\"coin\\":\\"BTC\\"}"}',
    )
    assert s.handle(b'{"method":"ping"}', 0.0).frames == (b'{"channel":"pong"}',)
    bad = s.handle(b'{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC"}}', 0.0)
    assert orjson.loads(bad.frames[0])["data"].startswith("Invalid subscription: ")
    s.handle(b'{"method":"unsubscribe","subscription":{"type":"trades","coin":"BTC"}}', 0.0)
    assert list(s.subscriptions) == []


def test_spec() -> None:
    assert SPEC.route("/ws") is None and SPEC.route("/info") == (404, "Not Found")
    assert SPEC.name == "hyperliquid" and SPEC.tick_s is None


def test_round_trip_trades_only() -> None:
    cfg = ExchangeConfig(symbols=("BTC", "ETH", "SOL"))
    a, s, feed, ledger = (
        HyperliquidAdapter(cfg),
        HyperliquidSession("c"),
        HyperliquidFeed(),
        Ledger(),
    )
    for f in a.connections(cfg, "ws://x")[0].subscribe:
        assert a.parse(s.handle(f, 0.0).frames[0], 1).control
    events = [
        SimTrade(0, "hyperliquid", "BTCUSDT", 95000.4, 0.0123456, "buy"),
        SimLiquidation(0, "hyperliquid", "ETHUSDT", "long", 3300.04, 1.23456),
        SimTrade(0, "hyperliquid", "SOLUSDT", 190.1234, 3.456, "sell"),
    ]
    got = []
    for k, ev in enumerate(events):
        for out in feed.on_event(ev, 1_700_000_000_000 + k):
            ledger.record("hyperliquid", out.keys, out.items)
            (frame,) = s.frames_for(out)
            parsed = a.parse(frame, 1)
            assert parsed.errors == []
            got += parsed.events
    assert ledger.liquidations == []
    assert [
        (t.symbol, t.taker_side.value, t.qty_raw, t.price) for t in got if isinstance(t, Trade)
    ] == [
        ("BTC-USD-PERP", "buy", 0.01235, 95000.0),
        ("ETH-USD-PERP", "sell", 1.2346, 3300.0),
        ("SOL-USD-PERP", "sell", 3.46, 190.123),
    ]
    assert [t.trade_id for t in got if isinstance(t, Trade)] == [x.trade_id for x in ledger.trades]
    assert ledger.trades[1] == SentTrade("hyperliquid", "ETH", "sell", "1.2346", "3300", 1_700_000_000_001,
                                         ledger.trades[1].trade_id)  # fmt: skip
