"""The BitMEX protocol module, sans-I/O: subscribe replies, the forced-order lifecycle, the REST
instrument list, instrument rows (market context: partial then deltas), and the round trip through
the BitMEX adapter."""

from __future__ import annotations

import itertools
from collections import defaultdict

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.schema import Liquidation, MarketContext, Trade
from monitor.simulator.ledger import Ledger, SentLiquidation, SentTrade
from monitor.simulator.scenario import SimEvent, SimLiquidation, SimTrade, crash_scenario
from monitor.simulator.venues.bitmex import SPEC, BitmexFeed, BitmexSession, InstrumentOutgoing, iso
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


# ---- instrument rows (market context) -------------------------------------------------------------

W = 1_700_000_000_000  # wall ms: 2023-11-14T22:13:20Z


def loaded_adapter() -> BitmexAdapter:
    a = BitmexAdapter(ExchangeConfig())
    assert SPEC.rest is not None
    rest = SPEC.rest("/api/v1/instrument/active")
    assert rest is not None
    a.load_instruments("u", rest[1])
    return a


def test_instrument_subscription_acks_then_partial_with_the_first_push() -> None:
    s = BitmexSession("c")
    req = {"op": "subscribe", "args": ["instrument:XBTUSD"]}
    r = s.handle(orjson.dumps(req), 0.0)
    assert [orjson.loads(f) for f in r.frames] == [
        {"success": True, "subscribe": "instrument:XBTUSD", "request": req}
    ]
    bad = orjson.loads(s.handle(b'{"op":"subscribe","args":["instrument:NOPE"]}', 0.0).frames[0])
    assert bad["error"] == "Unknown table: instrument:NOPE"
    feed = BitmexFeed(lambda sym, t: 95000.04 if t < 1.0 else 89300.0)
    trade, first = feed.on_event(SimTrade(0.0, "bitmex", "BTCUSDT", 95000.0, 0.01, "buy"), W)
    assert isinstance(first, InstrumentOutgoing) and first.streams == ("instrument:XBTUSD",)
    assert (first.keys, first.items) == ((), ())  # not in the ledger
    assert s.frames_for(trade) == [] and s.frames_for(first) == [first.snapshot]
    assert orjson.loads(first.snapshot)["data"][0] == {
        **SPEC_ROW, "fundingInterval": "2000-01-01T08:00:00.000Z",
        "fundingTimestamp": "2023-11-15T04:00:00.000Z",  # next of 04:00/12:00/20:00 UTC
        "fundingRate": 0.0001, "indicativeFundingRate": 0.0001,
        "openInterest": 400000000,  # 4e8 USD of 1 USD contracts
        "openValue": 421052454294,  # XBt: 4e8 / 95000.04 BTC
        "fairPrice": 95000.04, "markPrice": 95000.04, "indicativeSettlePrice": 95000.04,
        "lastPrice": 95000.0, "fairMethod": "FundingRate", "markMethod": "FairPrice",
        "timestamp": "2023-11-14T22:13:20.000Z",
    }  # fmt: skip
    assert orjson.loads(first.snapshot)["action"] == "partial"
    # within the second: nothing; after it, a delta of the changed fields only
    assert feed.on_event(liq_at(0.5), W + 999)[1:] == []
    (_, nxt) = feed.on_event(liq_at(1.0), W + 1000)
    assert s.frames_for(nxt) == [nxt.payload]
    assert orjson.loads(nxt.payload) == {"table": "instrument", "action": "update", "data": [{
        "symbol": "XBTUSD", "indicativeFundingRate": -0.0003,
        "openInterest": 320006400,  # x (1 + 2e-5 x 1 s) x (1 - 0.2) at the full drop
        "openValue": 358349832027, "fairPrice": 89300.0, "markPrice": 89300.0,
        "indicativeSettlePrice": 89344.65, "timestamp": "2023-11-14T22:13:21.000Z",
    }]}  # fmt: skip
    s.handle(b'{"op":"unsubscribe","args":["instrument:XBTUSD"]}', 0.0)
    assert s.frames_for(nxt) == []
    s.handle(orjson.dumps(req), 0.0)
    assert isinstance(nxt, InstrumentOutgoing)
    assert s.frames_for(nxt) == [nxt.snapshot]  # a new subscription starts with a partial
    # an unchanged state sends nothing
    assert feed.on_event(liq_at(1.0), W + 2000)[1:] == []


SPEC_ROW = {"symbol": "XBTUSD", "rootSymbol": "XBT", "state": "Open", "typ": "FFWCSX",
            "quoteCurrency": "USD", "settlCurrency": "XBt", "isQuanto": False, "isInverse": True,
            "multiplier": -100000000, "underlyingToSettleMultiplier": -100000000,
            "quoteToSettleMultiplier": None, "lotSize": 100, "tickSize": 0.5}  # fmt: skip


def liq_at(t: float) -> SimLiquidation:
    return SimLiquidation(t, "bitmex", "BTCUSDT", "long", 89300.0, 0.01)


def test_adapter_reads_partial_and_update() -> None:
    a = loaded_adapter()
    feed = BitmexFeed(lambda sym, t: 3300.0 if t < 1.0 else 3036.0)
    (_, first) = feed.on_event(SimTrade(0.0, "bitmex", "ETHUSDT", 3300.0, 1.0, "buy"), W)
    (_, nxt) = feed.on_event(SimTrade(1.0, "bitmex", "ETHUSDT", 3036.0, 1.0, "sell"), W + 1000)
    assert isinstance(first, InstrumentOutgoing)
    (p,) = a.parse(first.snapshot, 5).events
    (u,) = a.parse(nxt.payload, 5).events
    # 6e7 USD / 3300 = 18181.818 ETH = 18181818182 contracts of 0.000001 ETH
    assert p == MarketContext("bitmex", "ETH-USDT-PERP", "ETHUSDT", 3300.0, 3300.0, 0.0001,
                              1700020800000, 18181818182 * 1e-6, None, W, 5)  # fmt: skip
    assert u == MarketContext("bitmex", "ETH-USDT-PERP", "ETHUSDT", 3036.0, 3037.52, None,
                              None, 14545745455 * 1e-6, None, W + 1000, 5)  # fmt: skip


def test_no_instrument_rows_without_a_price_path() -> None:
    (out,) = BitmexFeed().on_event(SimTrade(0, "bitmex", "BTCUSDT", 95000.0, 1.0, "buy"), W)
    assert out.streams == ("trade", "trade:XBTUSD")
    assert SPEC.new_feed_for is not None


def test_parsed_instrument_rows_follow_the_scenario() -> None:
    adapter = loaded_adapter()
    scenario = crash_scenario(duration_s=60, seed=7, venues=("bitmex",))
    feed = SPEC.new_feed_for(scenario)  # type: ignore[misc]
    series: dict[str, list[MarketContext]] = defaultdict(list)
    for ev in scenario.events:
        now = W + round(ev.t * 1000)
        for out in feed.on_event(ev, now):
            if isinstance(out, InstrumentOutgoing):
                for raw in (out.payload, out.snapshot):
                    parsed = adapter.parse(raw, 1)
                    (ctx,) = parsed.events
                    assert parsed.errors == [] and isinstance(ctx, MarketContext)
                    assert ctx.ts_ms == now
                    if ctx.mark_price is not None:
                        path = scenario.price_at(ev.venue_symbol, ev.t)
                        assert ctx.mark_price == round(path, 2)
                    if raw is out.snapshot:  # the partial: every field
                        series[ctx.symbol].append(ctx)
    assert set(series) == {"BTC-USD-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP"}
    for symbol, ctxs in series.items():
        gaps = sorted(b.ts_ms - a.ts_ms for a, b in itertools.pairwise(ctxs))
        assert gaps[0] >= 1000 and gaps[len(gaps) // 2] <= 2000, symbol
        first, end = ctxs[0], ctxs[-1]
        assert first.mark_price and end.mark_price and end.mark_price < first.mark_price * 0.95
        oi = "open_interest_usd" if symbol == "BTC-USD-PERP" else "open_interest_base"
        assert getattr(end, oi) < getattr(first, oi) * 0.85  # positions closed in the crash
        assert first.funding_rate == end.funding_rate == 0.0001
        assert all(c.index_price and c.next_funding_ms for c in ctxs)
