"""The Bitget v3 protocol module, sans-I/O: replies, 1 s largest-per-side sampling, trade ticks,
ticker (market context) pushes, and a round trip through the real Bitget adapter. The liquidation
``side`` is the liquidated position's side and ``amount`` is in quote coin, as the venue's
Liquidation Channel page documents them (nothing here reads the producer's constants)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.schema import Liquidation, MarketContext
from monitor.simulator.instruments import instrument
from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.scenario import SimLiquidation, SimTrade, crash_scenario
from monitor.simulator.venues import bitget
from monitor.simulator.venues.bitget import BitgetFeed, BitgetSession
from producers.bitget import BitgetAdapter

LIQ = {"instType": "usdt-futures", "topic": "liquidation"}
TRD = {"instType": "usdt-futures", "topic": "publicTrade", "symbol": "BTCUSDT"}


def replies(s: BitgetSession, request: object) -> list[dict[str, Any]]:
    return [orjson.loads(f) for f in s.handle(orjson.dumps(request), 0.0).frames]


def test_subscribe_acks_and_unsubscribe() -> None:
    s = BitgetSession("c9")
    r = s.handle(orjson.dumps({"op": "subscribe", "args": [LIQ, TRD]}), 0.0)
    assert r.subscriptions_changed
    assert r.frames == (
        b'{"event":"subscribe","arg":{"instType":"usdt-futures","topic":"liquidation"},'
        b'"connId":"c9"}',
        b'{"event":"subscribe","arg":{"instType":"usdt-futures","topic":"publicTrade",'
        b'"symbol":"BTCUSDT"},"connId":"c9"}',
    )
    assert list(s.subscriptions) == ["liquidation:usdt-futures", "publicTrade:usdt-futures:BTCUSDT"]
    assert replies(s, {"op": "unsubscribe", "args": [TRD]}) == [
        {"event": "unsubscribe", "arg": TRD, "connId": "c9"}
    ]
    assert list(s.subscriptions) == ["liquidation:usdt-futures"]


def test_text_ping_pong() -> None:
    assert BitgetSession("c").handle("ping", 0.0).frames == (b"pong",)
    assert BitgetSession("c").handle(b"ping", 0.0).frames == (b"pong",)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"op": "subscribe", "args": [LIQ, {**TRD, "symbol": "NOPEUSDT"}]},
         {"event": "error", "arg": {**TRD, "symbol": "NOPEUSDT"}, "code": 30001,
          "msg": "instType:usdt-futures,topic:publicTrade,symbol:NOPEUSDT doesn't exist",
          "op": "subscribe"}),
        ({"op": "subscribe", "args": [{**LIQ, "instType": "USDT-FUTURES"}]},
         {"event": "error", "arg": {**LIQ, "instType": "USDT-FUTURES"}, "code": 30001,
          "msg": "instType:USDT-FUTURES,topic:liquidation,symbol:None doesn't exist",
          "op": "subscribe"}),
        ({"op": "subscribe", "args": []},
         {"event": "error", "code": 30016, "msg": "Param error: args", "op": "subscribe"}),
        ({"op": "subscribe", "args": [TRD] * 60},
         {"event": "error", "code": 30016, "msg": "Param error: args over 4096 bytes",
          "op": "subscribe"}),
        ({"op": "login", "args": [LIQ]}, {"event": "error", "code": 30003, "msg": "Invalid op: login"}),
    ],
)  # fmt: skip
def test_refused_requests_subscribe_nothing(request_: Any, expected: dict[str, Any]) -> None:
    s = BitgetSession("c")
    assert replies(s, request_) == [expected]
    assert list(s.subscriptions) == []


def test_not_json() -> None:
    (body,) = [orjson.loads(f) for f in BitgetSession("c").handle("{nope", 0.0).frames]
    assert body == {"event": "error", "code": 30002, "msg": "Illegal request"}


def liq(side: str, qty: float, sym: str = "BTCUSDT", price: float = 95000.0) -> SimLiquidation:
    return SimLiquidation(0.0, "bitget", sym, side, price, qty)


def test_liquidations_sampled_largest_per_pair_and_side_per_second() -> None:
    feed = BitgetFeed()
    feed.on_event(liq("long", 0.5), 7_000_100)  # key 0
    feed.on_event(liq("long", 0.9, price=94000.0), 7_000_200)  # key 1: largest long
    feed.on_event(liq("long", 0.9, price=93000.0), 7_000_300)  # key 2: tie, the first stays
    feed.on_event(liq("short", 0.002), 7_000_400)  # key 3: the only short
    feed.on_event(liq("long", 3.0, "ETHUSDT", 3300.0), 7_000_999)  # key 4
    feed.on_event(liq("long", 0.1), 7_001_000)  # key 5: the next second
    assert feed.next_deadline_ms() == 7_001_000
    (out,) = feed.flush(7_001_003)
    assert out.streams == ("liquidation:usdt-futures",)
    assert orjson.loads(out.payload) == {
        "data": [
            {"symbol": "BTCUSDT", "side": "buy", "price": "94000.0", "amount": "84600.000000",
             "ts": "7000200"},
            {"symbol": "BTCUSDT", "side": "sell", "price": "95000.0", "amount": "190.000000",
             "ts": "7000400"},
            {"symbol": "ETHUSDT", "side": "buy", "price": "3300.00", "amount": "9900.000000",
             "ts": "7000999"},
        ],
        "arg": LIQ,
        "action": "update",
        "ts": 7_001_003,
    }  # fmt: skip
    assert out.keys == (1, 3, 4)
    assert out.items == (
        SentLiquidation("bitget", "BTCUSDT", "long", "84600.000000", "94000.0", 7_000_200, 1.0, True),
        SentLiquidation("bitget", "BTCUSDT", "short", "190.000000", "95000.0", 7_000_400, 1.0, True),
        SentLiquidation("bitget", "ETHUSDT", "long", "9900.000000", "3300.00", 7_000_999, 1.0, True),
    )  # fmt: skip
    assert [i.notional for i in out.items if isinstance(i, SentLiquidation)] == [
        84600.0, 190.0, 9900.0,
    ]  # fmt: skip
    (nxt,) = feed.flush(7_002_000)
    assert nxt.keys == (5,) and feed.next_deadline_ms() is None


def test_trades_per_100ms_tick() -> None:
    feed = BitgetFeed()
    feed.on_event(SimTrade(0, "bitget", "ETHUSDT", 3300.01, 1.25, "sell"), 10)
    feed.on_event(SimTrade(0, "bitget", "ETHUSDT", 3300.02, 0.5, "buy"), 99)
    feed.on_event(SimTrade(0, "bitget", "ETHUSDT", 3300.03, 0.5, "buy"), 100)
    (out,) = feed.flush(100)
    assert out.streams == ("publicTrade:usdt-futures:ETHUSDT",)
    assert orjson.loads(out.payload) == {
        "action": "update",
        "arg": {"instType": "usdt-futures", "topic": "publicTrade", "symbol": "ETHUSDT"},
        "data": [
            {"i": "1", "p": "3300.01", "v": "1.250", "S": "sell", "T": "10", "L": "1",
             "isRPI": "no"},
            {"i": "2", "p": "3300.02", "v": "0.500", "S": "buy", "T": "99", "L": "2",
             "isRPI": "no"},
        ],
        "ts": 100,
    }  # fmt: skip
    assert out.items[0] == SentTrade("bitget", "ETHUSDT", "sell", "1.250", "3300.01", 10, "1")
    (nxt,) = feed.flush(200)
    assert orjson.loads(nxt.payload)["data"][0]["i"] == "3"


def test_route_and_spec() -> None:
    assert bitget.SPEC.route("/v3/ws/public") is None
    assert bitget.SPEC.route("/v2/ws/public")[0] == 404  # type: ignore[index]
    assert (bitget.SPEC.name, bitget.SPEC.base_path, bitget.SPEC.rest) == (
        "bitget", "/v3/ws/public", None,
    )  # fmt: skip


def test_round_trip_through_the_adapter_equals_the_ledger() -> None:
    adapter = BitgetAdapter(ExchangeConfig())
    scenario = crash_scenario(duration_s=40, seed=5, venues=("bitget",))
    feed = BitgetFeed()
    start_ms = 1_700_000_000_000
    outs = []
    for ev in scenario.events:
        now = start_ms + round(ev.t * 1000)
        outs += feed.flush(now)
        outs += feed.on_event(ev, now)
    outs += feed.flush(start_ms + 10**9)
    parsed_usd: dict[tuple[str, str], float] = defaultdict(float)
    sent_usd: dict[tuple[str, str], float] = defaultdict(float)
    n_events = 0
    for out in outs:
        parsed = adapter.parse(out.payload, 1)
        assert parsed.errors == []
        for e in parsed.events:
            if isinstance(e, Liquidation):
                parsed_usd[(e.symbol, e.liquidated_side.value)] += e.notional_usd
                n_events += 1
        for item in out.items:
            if isinstance(item, SentLiquidation):
                sym = f"{item.venue_symbol[:-4]}-USDT-PERP"
                sent_usd[(sym, item.liquidated_side)] += item.notional
    n_sent = sum(isinstance(i, SentLiquidation) for o in outs for i in o.items)
    n_scenario = sum(isinstance(e, SimLiquidation) for e in scenario.events)
    assert n_events == n_sent and 20 < n_sent < n_scenario  # sampled: some never sent
    assert set(parsed_usd) == set(sent_usd) and len(sent_usd) >= 4
    for k, v in sent_usd.items():
        assert parsed_usd[k] == pytest.approx(v, abs=1e-6)


# ---- ticker (market context) ----------------------------------------------------------------------

TCK = {"instType": "usdt-futures", "topic": "ticker", "symbol": "BTCUSDT"}
W = 1_700_000_000_000  # wall ms


def test_ticker_subscriptions() -> None:
    s = BitgetSession("c")
    assert replies(s, {"op": "subscribe", "args": [TCK, {**TCK, "symbol": "SOLUSDT"}]}) == [
        {"event": "subscribe", "arg": TCK, "connId": "c"},
        {"event": "subscribe", "arg": {**TCK, "symbol": "SOLUSDT"}, "connId": "c"},
    ]
    assert list(s.subscriptions) == ["ticker:usdt-futures:BTCUSDT", "ticker:usdt-futures:SOLUSDT"]
    (err,) = replies(s, {"op": "subscribe", "args": [{**TCK, "symbol": "NOPEUSDT"}]})
    assert (err["event"], err["code"]) == ("error", 30001)
    feed = BitgetFeed(lambda sym, t: 95000.0)
    (btc,) = feed.on_event(SimTrade(0.0, "bitget", "BTCUSDT", 95000.0, 0.01, "buy"), W)
    (eth,) = feed.on_event(SimTrade(0.0, "bitget", "ETHUSDT", 3300.0, 0.01, "buy"), W)
    assert s.frames_for(btc) == [btc.payload] and s.frames_for(eth) == []


def test_ticker_pushes_from_the_path_throttled_per_symbol() -> None:
    feed = BitgetFeed(lambda sym, t: 95000.04 if t < 1.0 else 89300.0)  # the path: a 6 % fall
    (first,) = feed.on_event(SimTrade(0.0, "bitget", "BTCUSDT", 95000.1, 0.05, "buy"), W)
    assert first.streams == ("ticker:usdt-futures:BTCUSDT",)
    assert (first.keys, first.items) == ((), ())  # tickers are not in the ledger
    assert orjson.loads(first.payload) == {
        "data": [{
            "highPrice24h": "95000.0", "lowPrice24h": "95000.0", "openPrice24h": "95000.0",
            "lastPrice": "95000.1", "turnover24h": "4750.005000", "volume24h": "0.050",
            "bid1Price": "95000.0", "ask1Price": "95000.1", "bid1Size": "0.063",
            "ask1Size": "0.063", "price24hPcnt": "0.00000", "indexPrice": "95000.0",
            "markPrice": "95000.0", "fundingRate": "0.000100",
            # 1_700_000_000_000 is 22:13:20 UTC: the next 8-hour settlement is 00:00 UTC
            "nextFundingTime": "1700006400000",
            "openInterest": "15789.474",  # 1.5e9 USD / 95000
        }],
        "arg": TCK,
        "action": "snapshot",
        "ts": W,
    }  # fmt: skip
    # 299 ms later: throttled; another symbol is not
    assert feed.on_event(SimTrade(0.2, "bitget", "BTCUSDT", 95000.1, 0.05, "buy"), W + 299) == []
    assert len(feed.on_event(SimTrade(0.2, "bitget", "SOLUSDT", 190.0, 1.0, "buy"), W + 299)) == 1
    crash_liq = SimLiquidation(1.0, "bitget", "BTCUSDT", "long", 89300.0, 0.5)
    (crash,) = feed.on_event(crash_liq, W + 300)  # a liquidation moves it too
    item = orjson.loads(crash.payload)["data"][0]
    assert {k: item[k] for k in ("markPrice", "indexPrice", "fundingRate", "openInterest",
                                 "lowPrice24h", "price24hPcnt")} == {
        "markPrice": "89300.0",
        "indexPrice": "89344.6",  # + 5 bp at the full drop
        "fundingRate": "-0.000300",
        # x (1 + 2e-5 x 1 s) x (1 - 0.2) at the full drop, on the 0.001 BTC lot grid
        "openInterest": "12631.832",
        "lowPrice24h": "89300.0",
        "price24hPcnt": "-0.06000",
    }  # fmt: skip
    ctx = BitgetAdapter(ExchangeConfig()).parse(crash.payload, 7).events
    assert ctx == [
        MarketContext("bitget", "BTC-USDT-PERP", "BTCUSDT", 89300.0, 89344.6, -0.0003,
                      1700006400000, 12631.832, None, W + 300, 7)
    ]  # fmt: skip
    # only trades and liquidations wait for a deadline: tickers never delay the end of playback
    assert feed.next_deadline_ms() == W + 100


def test_no_ticker_without_a_price_path() -> None:
    assert BitgetFeed().on_event(SimTrade(0.0, "bitget", "BTCUSDT", 95000.0, 1.0, "buy"), W) == []
    assert bitget.SPEC.new_feed_for is not None


def test_parsed_tickers_follow_the_scenario() -> None:
    adapter = BitgetAdapter(ExchangeConfig())
    scenario = crash_scenario(duration_s=60, seed=7, venues=("bitget",))
    feed = bitget.SPEC.new_feed_for(scenario)  # type: ignore[misc]
    series: dict[str, list[MarketContext]] = defaultdict(list)
    for ev in scenario.events:
        now = W + round(ev.t * 1000)
        for out in feed.on_event(ev, now):
            if not out.streams[0].startswith("ticker:"):
                continue
            parsed = adapter.parse(out.payload, 1)
            (ctx,) = parsed.events
            assert parsed.errors == [] and isinstance(ctx, MarketContext) and ctx.ts_ms == now
            spec = instrument(ev.venue_symbol)
            assert ctx.mark_price == spec.round_price(scenario.price_at(ev.venue_symbol, ev.t))
            series[ctx.symbol].append(ctx)
    assert set(series) == {"BTC-USDT-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP"}
    for symbol, ctxs in series.items():
        gaps = sorted(b.ts_ms - a.ts_ms for a, b in itertools.pairwise(ctxs))
        assert gaps[0] >= 300 and gaps[len(gaps) // 2] <= 1000, symbol
        first, end = ctxs[0], ctxs[-1]
        assert first.mark_price and end.mark_price and end.mark_price < first.mark_price * 0.95
        assert first.open_interest_base and end.open_interest_base
        assert end.open_interest_base < first.open_interest_base * 0.85  # falls in the crash
        assert first.funding_rate == pytest.approx(1e-4, abs=2e-5)
        assert end.funding_rate is not None and end.funding_rate < -2e-4
        assert all(c.index_price and c.next_funding_ms for c in ctxs)
