"""The Kraken Futures protocol module, sans-I/O, and the round trip through the Kraken adapter."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.schema import Liquidation, MarketContext, Side, Trade
from monitor.simulator.ledger import Ledger, SentLiquidation, SentTrade
from monitor.simulator.scenario import SimEvent, SimLiquidation, SimTrade
from monitor.simulator.venues.kraken import SPEC, KrakenFeed, KrakenSession
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
        b'{"event":"subscribe","feed":"trade","product_ids":["PF_XRPUSD"]}', 0
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
    assert sorted(s.subscriptions) == ["heartbeat", "ticker:PF_ETHUSD", "ticker:PF_XBTUSD",
                                       "trade:PF_ETHUSD", "trade:PF_XBTUSD"]  # fmt: skip


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


# ---- market context: ticker --------------------------------------------------------------------


def flat_path(prices: dict[str, float]) -> Any:
    return lambda venue_symbol, t: prices[venue_symbol]


def test_ticker_subscription() -> None:
    s = KrakenSession("c")
    r = s.handle(
        b'{"event":"subscribe","feed":"ticker","product_ids":["PF_XBTUSD","PF_SOLUSD"]}', 0
    )
    assert r.frames == (
        b'{"event":"subscribed","feed":"ticker","product_ids":["PF_XBTUSD","PF_SOLUSD"]}',
    )
    assert r.subscriptions_changed and list(s.subscriptions) == ["ticker:PF_XBTUSD",
                                                                 "ticker:PF_SOLUSD"]  # fmt: skip
    assert s.handle(
        b'{"event":"subscribe","feed":"ticker","product_ids":["PI_XBTUSD"]}', 0
    ).frames == (b'{"event":"error","message":"Invalid product id"}',)


def test_ticker_message_follows_the_price_path_once_a_second() -> None:
    # BTC 3 % below its start: half the scenario's 6 % drop (g = 0.5)
    feed = KrakenFeed(flat_path({"BTCUSDT": 92150.0, "ETHUSDT": 3300.0}))
    trade, ticker = feed.on_event(SimTrade(12.5, "kraken", "BTCUSDT", 92150.5, 0.25, "buy"),
                                  1_700_000_000_123)  # fmt: skip
    assert trade.streams == ("trade:PF_XBTUSD",) and ticker.streams == ("ticker:PF_XBTUSD",)
    assert ticker.keys == () and ticker.items == ()  # context: not in the ledger
    body = orjson.loads(ticker.payload)
    assert list(body)[:7] == ["time", "product_id", "funding_rate", "funding_rate_prediction",
                              "relative_funding_rate", "relative_funding_rate_prediction",
                              "next_funding_rate_time"]  # fmt: skip
    assert {k: body[k] for k in ("time", "feed", "product_id", "markPrice", "index",
                                 "relative_funding_rate", "relative_funding_rate_prediction",
                                 "funding_rate", "next_funding_rate_time", "openInterest",
                                 "last", "volume", "tag")} == {
        "time": 1_700_000_000_123, "feed": "ticker", "product_id": "PF_XBTUSD",
        "markPrice": 92150.0, "index": 92219.11, "relative_funding_rate": -0.0000125,
        "relative_funding_rate_prediction": -0.0000375,
        "funding_rate": round(-0.0000125 * 92219.11, 10), "next_funding_rate_time": 1700002800000,
        "openInterest": round(2.5e8 / 95000 * (1 + 2e-5 * 12.5) * 0.9, 4), "last": 92150.5,
        "volume": 0.25, "tag": "perpetual",
    }  # fmt: skip
    # one ticker per product per second; products independent
    assert len(feed.on_event(SimTrade(13, "kraken", "BTCUSDT", 92150.5, 0.1, "buy"),
                             1_700_000_001_122)) == 1  # fmt: skip
    assert len(feed.on_event(SimTrade(13, "kraken", "ETHUSDT", 3300.0, 0.1, "buy"),
                             1_700_000_001_122)) == 2  # fmt: skip
    assert len(feed.on_event(SimTrade(13, "kraken", "BTCUSDT", 92150.5, 0.1, "buy"),
                             1_700_000_001_123)) == 2  # fmt: skip


def test_zero_funding_is_left_out_as_kraken_does() -> None:
    # 1.5 % down on BTC (g = 0.25): the running hour's rate 1.25e-5 - 1e-4 * g / 2 is 0
    feed = KrakenFeed(flat_path({"BTCUSDT": 95000.0 * (1 - 0.015)}))
    _, ticker = feed.on_event(SimTrade(1, "kraken", "BTCUSDT", 93575.0, 0.1, "sell"), 5)
    body = orjson.loads(ticker.payload)
    assert "relative_funding_rate" not in body and "funding_rate" not in body
    assert body["relative_funding_rate_prediction"] == -0.0000125
    (ctx,) = KrakenAdapter(ExchangeConfig()).parse(ticker.payload, 1).events
    assert isinstance(ctx, MarketContext) and ctx.funding_rate == 0.0


def test_ticker_round_trip_through_the_adapter_and_a_subscribed_session() -> None:
    prices = {"BTCUSDT": 95000.0, "ETHUSDT": 3300.0, "SOLUSDT": 190.0}
    feed, a = KrakenFeed(flat_path(prices)), KrakenAdapter(ExchangeConfig())
    cfg = ExchangeConfig(symbols=("PF_XBTUSD", "PF_ETHUSD", "PF_SOLUSD"))
    s = KrakenSession("c")
    for f in a.connections(cfg, "ws://x")[0].subscribe:
        s.handle(f, 0.0)
    contexts = []
    for k, sym in enumerate(prices):
        ev = SimTrade(0, "kraken", sym, prices[sym], 1.0, "buy")
        for out in feed.on_event(ev, 1_699_999_200_000 + k):  # 22:00 UTC
            (frame,) = s.frames_for(out)
            parsed = a.parse(frame, 9)
            assert parsed.errors == []
            contexts += [e for e in parsed.events if isinstance(e, MarketContext)]
    assert [c.venue_symbol for c in contexts] == ["PF_XBTUSD", "PF_ETHUSD", "PF_SOLUSD"]
    btc = contexts[0]
    assert btc == MarketContext("kraken", "BTC-USD-PERP", "PF_XBTUSD", 95000.0, 95000.0, 0.0000125,
                                1_700_002_800_000, round(2.5e8 / 95000, 4), None,
                                1_699_999_200_000, 9)  # fmt: skip
    assert all(c.open_interest_base and c.mark_price for c in contexts)


def test_no_ticker_without_a_price_path() -> None:
    outs = KrakenFeed().on_event(SimTrade(0, "kraken", "SOLUSDT", 190.0, 1.0, "buy"), 0)
    assert [o.streams for o in outs] == [("trade:PF_SOLUSD",)]
    assert SPEC.new_feed_for is not None
