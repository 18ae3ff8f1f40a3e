"""The BitMEX protocol module, sans-I/O: subscribe replies, the forced-order lifecycle, the REST
instrument list, and the round trip through the BitMEX adapter."""

from __future__ import annotations

import orjson
import pytest

from monitor.config import ExchangeConfig
from monitor.schema import Liquidation, Trade
from monitor.simulator.bitmex import SPEC, BitmexFeed, BitmexSession, iso
from monitor.simulator.ledger import Ledger, SentLiquidation, SentTrade
from monitor.simulator.scenario import SimEvent, SimLiquidation, SimTrade
from producers.bitmex import BitmexAdapter
from producers.bitmex.parser import iso_ms


def test_ping_subscribe_and_errors() -> None:
    s = BitmexSession("c")
    assert s.handle("ping", 0.0).frames == (b"pong",)
    r = s.handle(b'{"op":"subscribe","args":["liquidation","trade:XBTUSD"]}', 0.0)
    req = {"op": "subscribe", "args": ["liquidation", "trade:XBTUSD"]}
    assert [orjson.loads(f) for f in r.frames] == [
        {"success": True, "subscribe": "liquidation", "request": req},
        {"table": "liquidation", "action": "partial", "keys": ["orderID"], "filter": {}, "data": []},
        {"success": True, "subscribe": "trade:XBTUSD", "request": req},
        {"table": "trade", "action": "partial", "keys": [], "filter": {"symbol": "XBTUSD"}, "data": []},
    ]  # fmt: skip
    assert r.subscriptions_changed and list(s.subscriptions) == ["liquidation", "trade:XBTUSD"]
    again = s.handle(b'{"op":"subscribe","args":["trade:XBTUSD"]}', 0.0)
    assert (
        orjson.loads(again.frames[0])["error"]
        == "You are already subscribed to this topic: trade:XBTUSD"
    )
    bad = orjson.loads(s.handle(b'{"op":"subscribe","args":["orderBook"]}', 0.0).frames[0])
    assert (bad["status"], bad["error"]) == (400, "Unknown table: orderBook")
    s.handle(b'{"op":"unsubscribe","args":["trade:XBTUSD"]}', 0.0)
    assert list(s.subscriptions) == ["liquidation"]


def test_adapter_reads_the_session_replies_as_control() -> None:
    cfg = ExchangeConfig(symbols=("XBTUSD",))
    a = BitmexAdapter(cfg)
    s = BitmexSession("c")
    for f in a.connections(cfg, "ws://x")[0].subscribe:
        for reply in s.handle(f, 0.0).frames:
            assert a.parse(reply, 1).control
    assert a.parse(s.handle(a.heartbeat() or "", 0.0).frames[0], 1).control


def test_rest_and_route() -> None:
    assert SPEC.route("/realtime") is None and SPEC.route("/realtime?subscribe=x") is None
    assert SPEC.route("/ws") == (404, "Not Found")
    assert SPEC.rest is not None and SPEC.rest("/api/v1/other") is None
    got = SPEC.rest("/api/v1/instrument/active")
    assert got is not None and got[0] == 200
    a = BitmexAdapter(ExchangeConfig())
    assert a.load_instruments("u", got[1]) == 3  # the quanto ETHUSD is refused


def test_iso_round_trips() -> None:
    for ms in (1, 1526732726632, 1_700_000_000_999):
        assert iso_ms(iso(ms)) == ms
    assert iso(1526732726632) == "2018-05-19T12:25:26.632Z"


def test_liquidation_lifecycle_frames() -> None:
    feed = BitmexFeed()
    (ins,) = feed.on_event(SimLiquidation(0, "bitmex", "BTCUSDT", "long", 95000.0, 0.0123), 5_000)
    (row,) = orjson.loads(ins.payload)["data"]
    assert (row["side"], row["price"], row["leavesQty"]) == ("Sell", 94525.0, 1200)
    assert ins.items == (
        SentLiquidation("bitmex", "XBTUSD", "long", "1200", "94525", 5_000, 1.0, True),
    )
    assert feed.next_deadline_ms() == 5_200
    (upd,) = feed.flush(5_200)
    assert orjson.loads(upd.payload)["action"] == "update" and upd.keys == () and upd.items == ()
    assert orjson.loads(upd.payload)["data"][0]["leavesQty"] == 600
    (dele,) = feed.flush(6_000)
    assert orjson.loads(dele.payload)["action"] == "delete" and feed.next_deadline_ms() is None


def test_linear_trade_frame() -> None:
    (out,) = BitmexFeed().on_event(SimTrade(0, "bitmex", "ETHUSDT", 3300.02, 0.0123, "sell"), 7)
    (item,) = orjson.loads(out.payload)["data"]
    assert (item["size"], item["price"], item["side"]) == (12000, 3300.0, "Sell")
    assert item["homeNotional"] == 12000 * 1e-6 and item["foreignNotional"] == 12000 * 1e-6 * 3300.0
    assert out.streams == ("trade", "trade:ETHUSDT")
    (sent,) = out.items
    assert isinstance(sent, SentTrade) and (sent.qty_text, sent.price_text) == ("12000", "3300")


def scenario_events() -> list[SimEvent]:
    events: list[SimEvent] = []
    for i in range(60):
        sym = ("BTCUSDT", "ETHUSDT", "SOLUSDT")[i % 3]
        price = {"BTCUSDT": 95000.0, "ETHUSDT": 3300.0, "SOLUSDT": 190.0}[sym] * (1 - i / 1000)
        if i % 4 == 0:
            events.append(SimTrade(i, "bitmex", sym, price, 0.3 + i / 7, "buy"))
        else:
            side = "long" if i % 5 else "short"
            events.append(SimLiquidation(i, "bitmex", sym, side, price, 0.05 + i / 13))
    return events


def test_round_trip_notional_matches_ledger() -> None:
    feed, ledger = BitmexFeed(), Ledger()
    a = BitmexAdapter(ExchangeConfig())
    assert SPEC.rest is not None
    rest = SPEC.rest("/api/v1/instrument/active")
    assert rest is not None
    a.load_instruments("u", rest[1])
    outs = []
    for k, ev in enumerate(scenario_events()):
        now = 1_700_000_000_000 + 50 * k
        outs += feed.flush(now)
        outs += feed.on_event(ev, now)
    outs += feed.flush(1_800_000_000_000)
    got: dict[tuple[str, str], float] = {}
    trades = 0
    for out in outs:
        ledger.record("bitmex", out.keys, out.items)
        parsed = a.parse(out.payload, 1_700_000_000_000_000_000)
        assert parsed.errors == []
        for e in parsed.events:
            if isinstance(e, Liquidation):
                key = (e.symbol, e.liquidated_side.value)
                got[key] = got.get(key, 0.0) + e.notional_usd
            else:
                assert isinstance(e, Trade)
                trades += 1
    canonical = {"XBTUSD": "BTC-USD-PERP", "ETHUSDT": "ETH-USDT-PERP", "SOLUSDT": "SOL-USDT-PERP"}
    want = {
        (canonical[sym], side): v for (_, sym, side), v in ledger.liquidation_notional().items()
    }
    assert len(ledger.liquidations) == 45 and trades == len(ledger.trades) == 15
    assert set(got) == set(want) and len(want) == 6
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6)
    assert a.open_orders == {}  # every lifecycle ended with its delete
