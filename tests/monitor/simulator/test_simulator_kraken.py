"""The Kraken Futures protocol module, sans-I/O, and the round trip through the Kraken adapter."""

from __future__ import annotations

import orjson
import pytest

from monitor.config import ExchangeConfig
from monitor.schema import Liquidation, Side, Trade
from monitor.simulator.kraken import SPEC, KrakenFeed, KrakenSession
from monitor.simulator.ledger import Ledger, SentLiquidation, SentTrade
from monitor.simulator.scenario import SimEvent, SimLiquidation, SimTrade
from producers.kraken import KrakenAdapter


def test_subscribe_snapshot_and_errors() -> None:
    s = KrakenSession("c")
    r = s.handle(b'{"event":"subscribe","feed":"trade","product_ids":["PF_XBTUSD"]}', 0.0)
    assert r.frames == (
        b'{"event":"subscribed","feed":"trade","product_ids":["PF_XBTUSD"]}',
        b'{"feed":"trade_snapshot","product_id":"PF_XBTUSD","trades":[]}',
    )
    assert r.subscriptions_changed and list(s.subscriptions) == ["trade:PF_XBTUSD"]
    assert s.handle(b'{"event":"subscribe","feed":"heartbeat"}', 0.0).frames == (
        b'{"event":"subscribed","feed":"heartbeat"}',
    )
    assert s.handle(
        b'{"event":"subscribe","feed":"book","product_ids":["PF_XBTUSD"]}', 0
    ).frames == (b'{"event":"error","message":"Invalid feed"}',)
    assert s.handle(
        b'{"event":"subscribe","feed":"trade","product_ids":["PF_DOGEUSD"]}', 0
    ).frames == (b'{"event":"error","message":"Invalid product id"}',)
    assert s.handle(b"nope", 0).frames == (b'{"event":"error","message":"Json Error"}',)
    s.handle(b'{"event":"unsubscribe","feed":"trade","product_ids":["PF_XBTUSD"]}', 0.0)
    assert list(s.subscriptions) == ["heartbeat"]


def test_adapter_plan_is_accepted_and_replies_are_control() -> None:
    cfg = ExchangeConfig(symbols=("PF_XBTUSD", "PF_ETHUSD"))
    a, s = KrakenAdapter(cfg), KrakenSession("c")
    for f in a.connections(cfg, "ws://x")[0].subscribe:
        for reply in s.handle(f, 0.0).frames:
            assert a.parse(reply, 1).control
    assert sorted(s.subscriptions) == ["heartbeat", "trade:PF_ETHUSD", "trade:PF_XBTUSD"]


def test_spec_and_route() -> None:
    assert SPEC.route("/ws/v1") is None and SPEC.route("/ws/v2") == (404, "Not Found")
    assert SPEC.name == "kraken" and SPEC.rest is None and SPEC.tick_s is None


def test_liquidation_frame() -> None:
    feed = KrakenFeed()
    (out,) = feed.on_event(SimLiquidation(0, "kraken", "BTCUSDT", "long", 95000.26, 0.12345), 9)
    body = orjson.loads(out.payload)
    assert {k: body[k] for k in ("product_id", "side", "type", "seq", "qty", "price")} == {
        "product_id": "PF_XBTUSD", "side": "sell", "type": "liquidation", "seq": 1,
        "qty": 0.1234, "price": 95000.5}  # fmt: skip
    assert out.items == (
        SentTrade("kraken", "PF_XBTUSD", "sell", "0.1234", "95000.5", 9, body["uid"]),
        SentLiquidation("kraken", "PF_XBTUSD", "unknown", "0.1234", "95000.5", 9),
    )
    assert out.keys == (0, 1) and feed.flush(10**15) == [] and feed.next_deadline_ms() is None


def test_round_trip_notional_matches_ledger() -> None:
    feed, ledger, a = KrakenFeed(), Ledger(), KrakenAdapter(ExchangeConfig())
    events: list[SimEvent] = []
    for i in range(60):
        sym = ("BTCUSDT", "ETHUSDT", "SOLUSDT")[i % 3]
        price = {"BTCUSDT": 95000.0, "ETHUSDT": 3300.0, "SOLUSDT": 190.0}[sym] * (1 - i / 1000)
        if i % 4 == 0:
            events.append(SimTrade(i, "kraken", sym, price, 0.3 + i / 7, "buy"))
        else:
            events.append(
                SimLiquidation(i, "kraken", sym, "long" if i % 5 else "short", price, 0.05 + i / 13)
            )
    got: dict[tuple[str, str], float] = {}
    trades = 0
    for k, ev in enumerate(events):
        for out in feed.on_event(ev, 1_700_000_000_000 + k):
            ledger.record("kraken", out.keys, out.items)
            parsed = a.parse(out.payload, 1)
            assert parsed.errors == [] and parsed.gaps == 0
            for e in parsed.events:
                if isinstance(e, Liquidation):
                    assert e.liquidated_side == Side.UNKNOWN
                    got[(e.symbol, "unknown")] = (
                        got.get((e.symbol, "unknown"), 0.0) + e.notional_usd
                    )
                else:
                    assert isinstance(e, Trade)
                    trades += 1
    canonical = {
        "PF_XBTUSD": "BTC-USD-PERP",
        "PF_ETHUSD": "ETH-USD-PERP",
        "PF_SOLUSD": "SOL-USD-PERP",
    }
    want = {
        (canonical[sym], side): v for (_, sym, side), v in ledger.liquidation_notional().items()
    }
    assert len(ledger.liquidations) == 45 and trades == len(ledger.trades) == 60
    assert set(got) == set(want) and len(want) == 3
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6)
