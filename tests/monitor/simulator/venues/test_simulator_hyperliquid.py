"""The Hyperliquid protocol module, sans-I/O, and the round trip through the adapter (trades and
market context: scenario liquidations reach the adapter as plain trades and produce no
Liquidation; contexts are not in the ledger)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.schema import MarketContext, Trade
from monitor.simulator.ledger import Ledger, SentTrade
from monitor.simulator.scenario import SimEvent, SimLiquidation, SimTrade, crash_scenario
from monitor.simulator.venues import hyperliquid
from monitor.simulator.venues.hyperliquid import SPEC, HyperliquidFeed, HyperliquidSession
from producers.hyperliquid import HyperliquidAdapter

W = 1_700_000_000_000  # wall ms
RECV = W * 1_000_000 + 123


def test_session_subscribe_ping_and_errors() -> None:
    s = HyperliquidSession("c")
    req = b'{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}'
    r = s.handle(req, 0.0)
    assert r.frames == (
        b'{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}}',
    )
    assert r.subscriptions_changed and list(s.subscriptions) == ["trades:BTC"]
    assert s.handle(req, 0.0).frames == (
        b'{"channel":"error","data":"Already subscribed: {\\"type\\":\\"trades\\",\\"coin\\":\\"BTC\\"}"}',
    )
    ctx = s.handle(
        b'{"method":"subscribe","subscription":{"type":"activeAssetCtx","coin":"BTC"}}', 0.0
    )
    assert orjson.loads(ctx.frames[0]) == {
        "channel": "subscriptionResponse",
        "data": {"method": "subscribe", "subscription": {"type": "activeAssetCtx", "coin": "BTC"}},
    }
    assert list(s.subscriptions) == ["trades:BTC", "activeAssetCtx:BTC"]
    assert s.handle(b'{"method":"ping"}', 0.0).frames == (b'{"channel":"pong"}',)
    for sub in (b'{"type":"l2Book","coin":"BTC"}', b'{"type":"activeAssetCtx","coin":"XRP"}',
                b'{"type":"activeSpotAssetCtx","coin":"BTC"}'):  # fmt: skip
        bad = s.handle(b'{"method":"subscribe","subscription":' + sub + b"}", 0.0)
        assert orjson.loads(bad.frames[0])["data"].startswith("Invalid subscription: ")
    s.handle(b'{"method":"unsubscribe","subscription":{"type":"trades","coin":"BTC"}}', 0.0)
    assert list(s.subscriptions) == ["activeAssetCtx:BTC"]


def test_spec() -> None:
    assert SPEC.route("/ws") is None and SPEC.route("/info") == (404, "Not Found")
    assert SPEC.name == "hyperliquid" and SPEC.tick_s is None and SPEC.rest is None
    assert SPEC.new_feed_for is not None


def test_round_trip_trades_and_context() -> None:
    cfg = ExchangeConfig(symbols=("BTC", "ETH", "SOL"))
    a, s, feed, ledger = (
        HyperliquidAdapter(cfg),
        HyperliquidSession("c"),
        HyperliquidFeed(),
        Ledger(),
    )
    for f in a.connections(cfg, "ws://x")[0].subscribe:
        assert a.parse(s.handle(f, 0.0).frames[0], 1).control
    assert len(s.subscriptions) == 6
    events: list[SimEvent] = [
        SimTrade(0, "hyperliquid", "BTCUSDT", 95000.4, 0.0123456, "buy"),
        SimLiquidation(0, "hyperliquid", "ETHUSDT", "long", 3300.04, 1.23456),
        SimTrade(0, "hyperliquid", "SOLUSDT", 190.1234, 3.456, "sell"),
    ]
    got = []
    for k, ev in enumerate(events):
        for out in feed.on_event(ev, W + k):
            ledger.record("hyperliquid", out.keys, out.items)
            (frame,) = s.frames_for(out)
            parsed = a.parse(frame, RECV)
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
    assert ledger.trades[1] == SentTrade("hyperliquid", "ETH", "sell", "1.2346", "3300", W + 1,
                                         ledger.trades[1].trade_id)  # fmt: skip
    # without a price path the mark is the event's price on the tick grid; OI in coins x mark
    contexts = [e for e in got if isinstance(e, MarketContext)]
    assert [(c.symbol, c.mark_price, c.ts_ms) for c in contexts] == [
        ("BTC-USD-PERP", 95000.0, W), ("ETH-USD-PERP", 3300.0, W), ("SOL-USD-PERP", 190.123, W),
    ]  # fmt: skip
    for c in contexts:
        assert c.open_interest_base and c.mark_price
        assert c.open_interest_usd == c.open_interest_base * c.mark_price
        assert c.funding_rate == 0.0000125 and c.next_funding_ms is None


def payloads(outs: list[Any]) -> list[Any]:
    return [(o.streams, orjson.loads(o.payload)) for o in outs]


def test_context_pushes_throttled_per_coin_and_not_in_the_ledger() -> None:
    feed = HyperliquidFeed(lambda sym, t: 95000.04 if t < 1.0 else 89300.0)  # a 6 % fall
    first = feed.on_event(SimTrade(0.0, "hyperliquid", "BTCUSDT", 95000.4, 0.01, "buy"), W)
    assert [o.streams for o in first] == [("trades:BTC",), ("activeAssetCtx:BTC",)]
    assert (first[1].keys, first[1].items) == ((), ())  # a context is not a market item
    # 3e9 USD / 95000 = 31578.94737 BTC (5 decimals, the size grid)
    assert payloads(first[1:]) == [
        (("activeAssetCtx:BTC",), {"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": {
            "funding": "0.0000125", "openInterest": "31578.94737", "prevDayPx": "95000",
            "dayNtlVlm": "950.00", "premium": "0", "oraclePx": "95000", "markPx": "95000",
            "midPx": "95000", "impactPxs": ["94999", "95001"], "dayBaseVlm": "0.01"}}}),
    ]  # fmt: skip
    # 999 ms later: throttled for BTC (the trade goes out), ETH has its own clock
    later = feed.on_event(SimTrade(0.5, "hyperliquid", "BTCUSDT", 95000.0, 0.02, "sell"), W + 999)
    assert [o.streams for o in later] == [("trades:BTC",)]
    eth = feed.on_event(SimTrade(0.5, "hyperliquid", "ETHUSDT", 3300.0, 1.0, "buy"), W + 999)
    assert [o.streams for o in eth] == [("trades:ETH",), ("activeAssetCtx:ETH",)]
    crash = feed.on_event(SimLiquidation(1.0, "hyperliquid", "BTCUSDT", "long", 89300.0, 0.5),
                          W + 1000)  # fmt: skip
    # at the full drop (g = 1): funding 0.0000125 - 0.0000625; oracle 0.2 % above the mark; volumes
    # 950 + 1900 + 44650 USD;
    # open interest x (1 + 2e-5 x 1 s) x (1 - 0.2)
    assert payloads(crash[1:]) == [
        (("activeAssetCtx:BTC",), {"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": {
            "funding": "-0.00005", "openInterest": "25263.66316", "prevDayPx": "95000",
            "dayNtlVlm": "47500.00", "premium": "-0.00200047", "oraclePx": "89479",
            "markPx": "89300", "midPx": "89300", "impactPxs": ["89299", "89301"],
            "dayBaseVlm": "0.53"}}}),
    ]  # fmt: skip
    assert feed.next_deadline_ms() is None and feed.flush(W + 5000) == []


def test_parsed_contexts_follow_the_scenario_path() -> None:
    cfg = ExchangeConfig(symbols=("BTC", "ETH", "SOL"))
    adapter = HyperliquidAdapter(cfg)
    scenario = crash_scenario(duration_s=60, seed=7, venues=("hyperliquid",))
    assert SPEC.new_feed_for is not None
    feed = SPEC.new_feed_for(scenario)
    series: dict[str, list[tuple[int, MarketContext]]] = defaultdict(list)
    for ev in scenario.events:
        now = W + round(ev.t * 1000)
        for out in feed.on_event(ev, now):
            parsed = adapter.parse(out.payload, now * 1_000_000)
            assert parsed.errors == []
            for ctx in parsed.events:
                if isinstance(ctx, MarketContext):
                    assert ctx.ts_ms == now
                    spec = hyperliquid.coin(ev.venue_symbol)
                    assert ctx.mark_price == spec.round_price(scenario.price_at(ev.venue_symbol,
                                                                                ev.t))  # fmt: skip
                    series[ctx.symbol].append((now, ctx))
    assert set(series) == {"BTC-USD-PERP", "ETH-USD-PERP", "SOL-USD-PERP"}
    for symbol, pushes in series.items():
        gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(pushes))
        assert gaps[0] >= hyperliquid.CTX_PUSH_MS and gaps[len(gaps) // 2] <= 2000, symbol
        first, last = pushes[0][1], pushes[-1][1]
        assert first.mark_price and last.mark_price and last.mark_price < first.mark_price * 0.95
        assert first.funding_rate == pytest.approx(0.0000125, abs=5e-6)
        assert last.funding_rate is not None and last.funding_rate < -0.00003
        assert first.open_interest_usd and last.open_interest_usd
        assert last.open_interest_usd < first.open_interest_usd * 0.8  # positions closed
        assert last.index_price and last.index_price > last.mark_price  # spot premium in the fall
