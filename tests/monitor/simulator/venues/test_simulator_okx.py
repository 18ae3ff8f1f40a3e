"""The OKX protocol module, sans-I/O: replies, contract sizes, batching, market context pushes,
REST, and round trips through the real OKX adapter."""

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
from monitor.simulator.venues import okx
from monitor.simulator.venues.okx import OkxFeed, OkxSession
from producers.okx import OkxAdapter

LIQ_ARG = {"channel": "liquidation-orders", "instType": "SWAP"}


def replies(s: OkxSession, request: object, now_s: float = 0.0) -> list[dict[str, Any]]:
    return [orjson.loads(f) for f in s.handle(orjson.dumps(request), now_s).frames]


def test_subscribe_acks_one_per_arg_and_unsubscribe() -> None:
    s = OkxSession("c1")
    trade_arg = {"channel": "trades", "instId": "BTC-USDT-SWAP"}
    r = s.handle(orjson.dumps({"id": "sub1", "op": "subscribe", "args": [LIQ_ARG, trade_arg]}), 0)
    assert r.subscriptions_changed
    assert r.frames == (
        b'{"id":"sub1","event":"subscribe","arg":{"channel":"liquidation-orders",'
        b'"instType":"SWAP"},"connId":"c1"}',
        b'{"id":"sub1","event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},'
        b'"connId":"c1"}',
    )
    assert list(s.subscriptions) == ["liquidation-orders:SWAP", "trades:BTC-USDT-SWAP"]
    # idempotent re-subscribe; no id sent: none echoed
    assert replies(s, {"op": "subscribe", "args": [LIQ_ARG]}) == [
        {"event": "subscribe", "arg": LIQ_ARG, "connId": "c1"}
    ]
    assert replies(s, {"op": "unsubscribe", "args": [trade_arg]})[0]["event"] == "unsubscribe"
    assert list(s.subscriptions) == ["liquidation-orders:SWAP"]


def test_context_channels_per_inst_id() -> None:
    s = OkxSession("c")
    args = [{"channel": c, "instId": i} for i in ("BTC-USDT-SWAP", "BTC-USD-SWAP")
            for c in ("mark-price", "funding-rate", "open-interest")]  # fmt: skip
    acks = replies(s, {"id": "sub1", "op": "subscribe", "args": args})
    assert acks == [{"id": "sub1", "event": "subscribe", "arg": a, "connId": "c"} for a in args]
    assert list(s.subscriptions) == [
        "mark-price:BTC-USDT-SWAP", "funding-rate:BTC-USDT-SWAP", "open-interest:BTC-USDT-SWAP",
        "mark-price:BTC-USD-SWAP", "funding-rate:BTC-USD-SWAP", "open-interest:BTC-USD-SWAP",
    ]  # fmt: skip
    mark = okx._context_out("mark-price", "BTC-USDT-SWAP", {"markPx": "1"})
    assert s.frames_for(mark) == [mark.payload]
    assert s.frames_for(okx._context_out("mark-price", "ETH-USDT-SWAP", {"markPx": "1"})) == []


def test_text_ping_pong() -> None:
    s = OkxSession("c")
    assert s.handle("ping", 0).frames == (b"pong",)
    assert s.handle(b"ping", 0).frames == (b"pong",)


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        ({"id": "x", "op": "subscribe", "args": [{"channel": "trades", "instId": "NOPE-USDT-SWAP"}]},
         "60018"),
        ({"id": "x", "op": "subscribe", "args": [LIQ_ARG, {"channel": "tickers", "instId": "BTC"}]},
         "60018"),
        ({"id": "x", "op": "subscribe", "args": [{"channel": "liquidation-orders", "instType": "X"}]},
         "60018"),
        ({"id": "x", "op": "subscribe", "args": [{"channel": "mark-price", "instId": "NOPE-SWAP"}]},
         "60018"),
        ({"id": "x", "op": "subscribe", "args": [{"channel": "open-interest", "instType": "SWAP"}]},
         "60018"),
        ({"id": "x", "op": "subscribe", "args": [{"channel": "index-tickers", "instId": "BTC"}]},
         "60018"),
        ({"id": "x", "op": "subscribe", "args": []}, "60013"),
        ({"id": "x", "op": "subscribe", "args": ["trades"]}, "60013"),
        ({"id": "x", "op": "login", "args": [LIQ_ARG]}, "60019"),
    ],
)  # fmt: skip
def test_refused_requests_subscribe_nothing(request_: dict[str, Any], code: str) -> None:
    s = OkxSession("c")
    (body,) = replies(s, request_)
    assert (body["id"], body["event"], body["code"], body["connId"]) == ("x", "error", code, "c")
    assert list(s.subscriptions) == []


def test_not_json_and_oversized_args() -> None:
    s = OkxSession("c")
    (body,) = [orjson.loads(f) for f in s.handle("hello", 0).frames]
    assert (body["event"], body["code"], body["msg"]) == (
        "error",
        "60012",
        "Invalid request: hello",
    )
    big = [{"channel": "trades", "instId": "BTC-USDT-SWAP", "pad": "x" * 1000}] * 66
    assert replies(s, {"op": "subscribe", "args": big})[0]["code"] == "60013"


def test_480_requests_an_hour() -> None:
    s = OkxSession("c")
    for i in range(480):
        assert (
            replies(s, {"op": "subscribe", "args": [LIQ_ARG]}, now_s=i)[0]["event"] == "subscribe"
        )
    assert replies(s, {"op": "subscribe", "args": [LIQ_ARG]}, now_s=3599)[0]["code"] == "60014"
    # the first request (t=0) left the window at t=3600
    assert replies(s, {"op": "subscribe", "args": [LIQ_ARG]}, now_s=3600)[0]["event"] == "subscribe"


def liq(side: str, qty: float, sym: str = "BTCUSDT", price: float = 95000.0) -> SimLiquidation:
    return SimLiquidation(0.0, "okx", sym, side, price, qty)


def test_liquidations_sampled_one_per_contract_per_second_in_whole_contracts() -> None:
    """OKX documents at most one liquidation order per contract per second: the latest stays."""
    feed = OkxFeed()
    feed.on_event(liq("long", 0.5), 1_000_100)  # key 0: replaced by key 1 (same second)
    assert feed.on_event(liq("long", 0.004), 1_000_200) == []  # 0.4 contract: not sent
    feed.on_event(liq("short", 0.026), 1_000_300)  # key 1: 2.6 -> 3 contracts, posSide short
    feed.on_event(liq("long", 2.0, "ETHUSDT", 3300.0), 1_000_999)  # key 2: 20 contracts
    feed.on_event(liq("long", 1.0), 1_001_000)  # key 3: next window
    assert feed.next_deadline_ms() == 1_001_000
    (out,) = feed.flush(1_001_000)
    assert out.streams == ("liquidation-orders:SWAP",)
    assert orjson.loads(out.payload) == {
        "arg": LIQ_ARG,
        "data": [
            {"details": [
                {"bkLoss": "0", "bkPx": "95475.0", "ccy": "", "posSide": "short", "side": "buy",
                 "sz": "3", "ts": "1000300"}],
             "instFamily": "BTC-USDT", "instId": "BTC-USDT-SWAP", "instType": "SWAP",
             "uly": "BTC-USDT"},
            {"details": [
                {"bkLoss": "0", "bkPx": "3283.50", "ccy": "", "posSide": "net", "side": "sell",
                 "sz": "20", "ts": "1000999"}],
             "instFamily": "ETH-USDT", "instId": "ETH-USDT-SWAP", "instType": "SWAP",
             "uly": "ETH-USDT"},
        ],
    }  # fmt: skip
    assert out.keys == (1, 2)
    assert out.items == (
        SentLiquidation("okx", "BTC-USDT-SWAP", "short", "3", "95475.0", 1_000_300, 0.01),
        SentLiquidation("okx", "ETH-USDT-SWAP", "long", "20", "3283.50", 1_000_999, 0.1),
    )
    assert out.items[0].notional == 3 * 0.01 * 95475.0
    assert feed.next_deadline_ms() == 1_002_000
    (nxt,) = feed.flush(1_002_000)
    assert nxt.keys == (3,) and feed.next_deadline_ms() is None


def test_trades_per_100ms_tick_in_contracts() -> None:
    feed = OkxFeed()
    feed.on_event(SimTrade(0, "okx", "SOLUSDT", 190.12, 12.6, "sell"), 5_010)
    feed.on_event(SimTrade(0, "okx", "SOLUSDT", 190.13, 0.4, "buy"), 5_020)  # 0 contracts
    feed.on_event(SimTrade(0, "okx", "SOLUSDT", 190.13, 1.0, "buy"), 5_099)
    feed.on_event(SimTrade(0, "okx", "BTCUSDT", 95000.1, 0.05, "buy"), 5_100)
    (sol,) = feed.flush(5_100)
    assert sol.streams == ("trades:SOL-USDT-SWAP",)
    assert orjson.loads(sol.payload) == {
        "arg": {"channel": "trades", "instId": "SOL-USDT-SWAP"},
        "data": [
            {"instId": "SOL-USDT-SWAP", "tradeId": "1", "px": "190.12", "sz": "13", "side": "sell",
             "ts": "5010", "count": "1", "source": "0"},
            {"instId": "SOL-USDT-SWAP", "tradeId": "2", "px": "190.13", "sz": "1", "side": "buy",
             "ts": "5099", "count": "1", "source": "0"},
        ],
    }  # fmt: skip
    assert sol.items[0] == SentTrade("okx", "SOL-USDT-SWAP", "sell", "13", "190.12", 5_010, "1")
    (btc,) = feed.flush(5_200)
    assert orjson.loads(btc.payload)["data"][0]["sz"] == "5"


W = 1_700_000_000_000  # wall ms


def payloads(outs: list[Any]) -> list[Any]:
    assert all(o.keys == () and o.items == () for o in outs)  # contexts are not in the ledger
    return [(o.streams, orjson.loads(o.payload)) for o in outs]


def test_context_pushes_on_events_throttled_per_channel() -> None:
    feed = OkxFeed(lambda sym, t: 95000.04 if t < 1.0 else 89300.0)  # the path: a 6 % fall
    # an event too small for a contract still moves the context
    first = feed.on_event(SimLiquidation(0.0, "okx", "BTCUSDT", "long", 95000.0, 0.004), W)
    btc = {"channel": "mark-price", "instId": "BTC-USDT-SWAP"}
    funding = {"formulaType": "withRate", "fundingRate": "0.0001000000",
               "fundingTime": "1700006400000", "impactValue": "", "instId": "BTC-USDT-SWAP",
               "instType": "SWAP", "interestRate": "0.0001", "maxFundingRate": "0.00375",
               "method": "current_period", "minFundingRate": "-0.00375", "nextFundingRate": "",
               "nextFundingTime": "1700035200000", "premium": "", "settFundingRate": "0.0001",
               "settState": "settled", "ts": "1700000000000"}  # fmt: skip
    assert payloads(first) == [
        (("mark-price:BTC-USDT-SWAP",), {"arg": btc, "data": [
            {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "markPx": "95000.0",
             "ts": "1700000000000"}]}),
        # 8-hour funding: 1_700_000_000_000 is 22:13:20 UTC, the next settlement 00:00 UTC
        (("funding-rate:BTC-USDT-SWAP",),
         {"arg": {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"}, "data": [funding]}),
        # 2e9 USD / 95000 = 21052.63 BTC = 2105263 contracts of 0.01 BTC, x markPx 95000.0
        (("open-interest:BTC-USDT-SWAP",),
         {"arg": {"channel": "open-interest", "instId": "BTC-USDT-SWAP"}, "data": [
             {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "oi": "2105263",
              "oiCcy": "21052.63", "oiUsd": "1999999850.000", "ts": "1700000000000"}]}),
    ]  # fmt: skip
    # 199 ms later: every channel is throttled (the trade itself waits for its 100 ms tick)
    assert feed.on_event(SimTrade(0.5, "okx", "BTCUSDT", 95000.1, 0.05, "buy"), W + 199) == []
    eth = feed.on_event(SimTrade(0.5, "okx", "ETHUSDT", 3300.0, 1.0, "buy"), W + 199)
    assert [o.streams[0] for o in eth] == [
        "mark-price:ETH-USDT-SWAP", "funding-rate:ETH-USDT-SWAP", "open-interest:ETH-USDT-SWAP",
    ]  # fmt: skip
    crash = feed.on_event(SimTrade(1.0, "okx", "BTCUSDT", 89300.0, 0.05, "sell"), W + 3000)
    # at the full 6 % drop: open interest x (1 + 2e-5 x 1 s) x (1 - 0.2) = 16842.44 BTC
    assert payloads(crash) == [
        (("mark-price:BTC-USDT-SWAP",), {"arg": btc, "data": [
            {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "markPx": "89300.0",
             "ts": "1700000003000"}]}),
        (("open-interest:BTC-USDT-SWAP",),
         {"arg": {"channel": "open-interest", "instId": "BTC-USDT-SWAP"}, "data": [
             {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "oi": "1684244",
              "oiCcy": "16842.44", "oiUsd": "1504029892.000", "ts": "1700000003000"}]}),
    ]  # fmt: skip
    later = payloads(feed.on_event(SimTrade(1.0, "okx", "BTCUSDT", 89300.0, 1, "sell"), W + 5000))
    assert [s for s, _ in later] == [("mark-price:BTC-USDT-SWAP",), ("funding-rate:BTC-USDT-SWAP",)]
    assert later[1][1]["data"][0] == {**funding, "fundingRate": "-0.0004000000",
                                      "ts": "1700000005000"}  # fmt: skip
    # only trades wait for a deadline (their 100 ms tick): contexts never delay the end of playback
    assert feed.next_deadline_ms() == W + 200
    flushed = feed.flush(W + 5000)
    assert [o.streams[0] for o in flushed] == ["trades:BTC-USDT-SWAP", "trades:ETH-USDT-SWAP",
                                               "trades:BTC-USDT-SWAP"]  # fmt: skip
    assert feed.next_deadline_ms() == W + 5100


def test_mark_price_without_a_path_is_the_event_price() -> None:
    feed = OkxFeed()
    (mark, _, _) = feed.on_event(SimTrade(0.0, "okx", "SOLUSDT", 190.13, 1.0, "buy"), W)
    assert orjson.loads(mark.payload)["data"][0]["markPx"] == "190.13"


def loaded_adapter() -> OkxAdapter:
    adapter = OkxAdapter(ExchangeConfig())
    _, body = okx.rest("/api/v5/public/instruments?instType=SWAP")  # type: ignore[misc]
    assert adapter.load_instruments("u", body) == 5
    return adapter


def test_parsed_mark_prices_are_the_scenario_path() -> None:
    adapter = loaded_adapter()
    scenario = crash_scenario(duration_s=60, seed=7, venues=("okx",))
    feed = OkxFeed(scenario.price_at)
    marks: dict[str, list[tuple[int, float, float]]] = defaultdict(list)  # (ts, parsed, path)
    last: dict[str, MarketContext] = {}
    for ev in scenario.events:
        now = W + round(ev.t * 1000)
        for out in feed.on_event(ev, now):
            parsed = adapter.parse(out.payload, 1)
            (ctx,) = parsed.events
            assert parsed.errors == [] and isinstance(ctx, MarketContext) and ctx.ts_ms == now
            if ctx.mark_price is not None:
                spec = instrument(ev.venue_symbol)
                path = scenario.price_at(ev.venue_symbol, ev.t)
                assert ctx.mark_price == spec.round_price(path)  # the path, on the tick grid
                assert abs(ctx.mark_price - path) <= spec.tick / 2 + 1e-9
                marks[ctx.symbol].append((now, ctx.mark_price, path))
            else:
                for field in ("funding_rate", "open_interest_base"):
                    if getattr(ctx, field) is not None:
                        last.setdefault(f"first {field} {ctx.symbol}", ctx)
                        last[f"{field} {ctx.symbol}"] = ctx
    assert set(marks) == set(CANONICAL.values())
    for symbol, series in marks.items():
        gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(series))
        assert gaps[0] >= 200 and 200 <= gaps[len(gaps) // 2] <= 1000, symbol
        # the crash shows in the mark: the last is the path's end, about 6-11 % below the start
        assert series[-1][1] < series[0][1] * 0.95
        first_oi = last[f"first open_interest_base {symbol}"]
        end_oi = last[f"open_interest_base {symbol}"]
        assert first_oi.open_interest_base and first_oi.open_interest_usd
        assert end_oi.open_interest_base and end_oi.open_interest_usd
        assert end_oi.open_interest_base < first_oi.open_interest_base * 0.85  # falls in the crash
        assert end_oi.open_interest_usd < first_oi.open_interest_usd * 0.8
        assert last[f"first funding_rate {symbol}"].funding_rate == pytest.approx(1e-4, abs=2e-5)
        end_funding = last[f"funding_rate {symbol}"].funding_rate
        assert end_funding is not None and end_funding < -2e-4


def test_rest_instruments_and_routes() -> None:
    assert okx.rest("/api/v5/public/other") is None
    assert okx.rest("/api/v5/public/instruments")[0] == 400  # type: ignore[index]
    status, body = okx.rest("/api/v5/public/instruments?instType=SWAP")  # type: ignore[misc]
    assert status == 200
    got = {d["instId"]: (d["ctType"], d["ctVal"], d["ctValCcy"], d["tickSz"])
           for d in orjson.loads(body)["data"]}  # fmt: skip
    assert got == {
        "BTC-USDT-SWAP": ("linear", "0.01", "BTC", "0.1"),
        "ETH-USDT-SWAP": ("linear", "0.1", "ETH", "0.01"),
        "SOL-USDT-SWAP": ("linear", "1", "SOL", "0.01"),
        "DOGE-USDT-SWAP": ("linear", "1000", "DOGE", "0.00001"),
        "BTC-USD-SWAP": ("inverse", "100", "USD", "0.1"),
    }
    assert okx.SPEC.route("/ws/v5/public") is None
    assert okx.SPEC.route("/ws/v5/business")[0] == 404  # type: ignore[index]
    assert okx.SPEC.name == "okx" and okx.SPEC.base_path == "/ws/v5/public"


CONTEXTS = ("mark-price", "funding-rate", "open-interest")
CANONICAL = {"BTC-USDT-SWAP": "BTC-USDT-PERP", "ETH-USDT-SWAP": "ETH-USDT-PERP",
             "SOL-USDT-SWAP": "SOL-USDT-PERP"}  # fmt: skip


def test_round_trip_through_the_adapter_equals_the_ledger() -> None:
    adapter = loaded_adapter()
    scenario = crash_scenario(duration_s=60, seed=5, venues=("okx",))
    feed = OkxFeed()
    start_ms = 1_700_000_000_000
    outs = []
    for ev in scenario.events:
        now = start_ms + round(ev.t * 1000)
        outs += feed.flush(now)
        outs += feed.on_event(ev, now)
    outs += feed.flush(start_ms + 10**9)
    parsed_usd: dict[tuple[str, str], float] = defaultdict(float)
    sent_usd: dict[tuple[str, str], float] = defaultdict(float)
    n_events = n_contexts = 0
    for out in outs:
        parsed = adapter.parse(out.payload, 1)
        assert parsed.errors == []
        for e in parsed.events:
            if isinstance(e, Liquidation):
                parsed_usd[(e.symbol, e.liquidated_side.value)] += e.notional_usd
                n_events += 1
            n_contexts += isinstance(e, MarketContext)
        for item in out.items:
            if isinstance(item, SentLiquidation):
                sent_usd[(CANONICAL[item.venue_symbol], item.liquidated_side)] += item.notional
    n_sent = sum(isinstance(i, SentLiquidation) for o in outs for i in o.items)
    assert n_events == n_sent > 50
    assert n_contexts == sum(o.streams[0].split(":")[0] in CONTEXTS for o in outs) > 100
    assert max(len(orjson.loads(o.payload)["data"]) for o in outs if o.streams[0][0] == "l") > 1
    assert set(parsed_usd) == set(sent_usd) and len(sent_usd) >= 4
    for k, v in sent_usd.items():
        assert parsed_usd[k] == pytest.approx(v, abs=1e-6)
