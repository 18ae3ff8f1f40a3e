"""The Bybit protocol module, sans-I/O: operations, replies, batching, side convention."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.schema import MarketContext
from monitor.simulator.instruments import instrument
from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.scenario import Scenario, SimLiquidation, SimTrade, crash_scenario
from monitor.simulator.venues.bybit import BybitFeed, BybitSession, TickerOutgoing
from producers.bybit import BybitAdapter


def reply(s: BybitSession, request: object) -> dict[str, Any]:
    r = s.handle(orjson.dumps(request), 0.0)
    assert len(r.frames) == 1
    body: dict[str, Any] = orjson.loads(r.frames[0])
    return body


def test_subscribe_and_unsubscribe_replies() -> None:
    s = BybitSession("conn-1")
    r = s.handle(
        b'{"op":"subscribe","args":["allLiquidation.BTCUSDT","publicTrade.BTCUSDT"],"req_id":"a1"}',
        0.0,
    )
    assert r.frames == (
        b'{"success":true,"ret_msg":"","conn_id":"conn-1","req_id":"a1","op":"subscribe"}',
    )
    assert r.subscriptions_changed
    assert list(s.subscriptions) == ["allLiquidation.BTCUSDT", "publicTrade.BTCUSDT"]
    # no req_id sent: none echoed
    assert reply(s, {"op": "unsubscribe", "args": ["publicTrade.BTCUSDT"]}) == {
        "success": True,
        "ret_msg": "",
        "conn_id": "conn-1",
        "op": "unsubscribe",
    }
    assert list(s.subscriptions) == ["allLiquidation.BTCUSDT"]


def test_ping_pong() -> None:
    s = BybitSession("c")
    assert s.handle(b'{"op":"ping","req_id":"p7"}', 0.0).frames == (
        b'{"success":true,"ret_msg":"pong","conn_id":"c","req_id":"p7","op":"ping"}',
    )
    assert reply(s, {"op": "ping"}) == {
        "success": True,
        "ret_msg": "pong",
        "conn_id": "c",
        "op": "ping",
    }


@pytest.mark.parametrize(
    ("args", "ret_msg"),
    [
        (["liquidation.BTCUSDT"], "error:handler not found,topic:liquidation.BTCUSDT"),
        (["publicTrade.btcusdt"], "error:handler not found,topic:publicTrade.btcusdt"),
        (
            ["publicTrade.ETHUSDT", "allLiquidation"],
            "error:handler not found,topic:allLiquidation",
        ),
        ([f"publicTrade.S{i}USDT" for i in range(11)], "error:args size >10"),
        (["tickers.btcusdt"], "error:handler not found,topic:tickers.btcusdt"),
        (["tickers"], "error:handler not found,topic:tickers"),
        (["tickers.50.BTCUSDT"], "error:handler not found,topic:tickers.50.BTCUSDT"),
        ([], "error:args must be a list of topics"),
    ],
)
def test_refused_subscriptions_subscribe_nothing(args: list[str], ret_msg: str) -> None:
    s = BybitSession("c")
    assert reply(s, {"op": "subscribe", "args": args, "req_id": "r"}) == {
        "success": False,
        "ret_msg": ret_msg,
        "conn_id": "c",
        "req_id": "r",
        "op": "subscribe",
    }
    assert list(s.subscriptions) == []


def test_ten_topics_per_request_is_fine_and_duplicates_are_refused() -> None:
    s = BybitSession("c")
    topics = [f"allLiquidation.S{i}USDT" for i in range(10)]
    assert reply(s, {"op": "subscribe", "args": topics})["success"] is True
    dup = reply(s, {"op": "subscribe", "args": ["publicTrade.BTCUSDT", topics[3]]})
    assert dup["ret_msg"] == f"error:already subscribed,topic:{topics[3]}"
    assert "publicTrade.BTCUSDT" not in s.subscriptions
    assert len(s.subscriptions) == 10


def test_garbage_gets_a_failure_reply() -> None:
    s = BybitSession("c")
    assert reply(s, {"op": "hello"})["success"] is False
    r = s.handle(b"{nope", 0.0)
    assert orjson.loads(r.frames[0])["success"] is False


def trade(price: float, side: str = "buy", qty: float = 0.01) -> SimTrade:
    return SimTrade(0.0, "bybit", "BTCUSDT", price, qty, side)


def test_trades_are_batched_per_100ms_tick() -> None:
    feed = BybitFeed()
    assert feed.on_event(trade(95000.0), 1_000_010) == []
    feed.on_event(trade(95000.0, "sell"), 1_000_099)
    feed.on_event(trade(95000.5), 1_000_100)
    assert feed.next_deadline_ms() == 1_000_100
    (first,) = feed.flush(1_000_100)
    body = orjson.loads(first.payload)
    assert body["topic"] == "publicTrade.BTCUSDT"
    assert body["type"] == "snapshot"
    assert body["ts"] == 1_000_100
    assert [(d["T"], d["S"], d["v"], d["p"], d["L"], d["BT"]) for d in body["data"]] == [
        (1_000_010, "Buy", "0.010", "95000.0", "ZeroPlusTick", False),
        (1_000_099, "Sell", "0.010", "95000.0", "ZeroPlusTick", False),
    ]
    assert list(body["data"][0]) == ["T", "s", "S", "v", "p", "L", "i", "BT"]
    ids = [d["i"] for d in body["data"]]
    assert first.items == (
        SentTrade("bybit", "BTCUSDT", "buy", "0.010", "95000.0", 1_000_010, ids[0]),
        SentTrade("bybit", "BTCUSDT", "sell", "0.010", "95000.0", 1_000_099, ids[1]),
    )
    (second,) = feed.flush(1_000_200)
    assert orjson.loads(second.payload)["data"][0]["L"] == "PlusTick"
    # trade ids are deterministic UUIDs
    again = BybitFeed()
    again.on_event(trade(95000.0), 5)
    (o,) = again.flush(100)
    assert orjson.loads(o.payload)["data"][0]["i"] == ids[0]
    assert len(ids[0]) == 36 and ids[0][14] == "4"


def test_tick_direction_sequence() -> None:
    feed = BybitFeed()
    for i, p in enumerate([100.0, 100.0, 101.0, 101.0, 100.0, 100.0]):
        feed.on_event(trade(p), i)
    (o,) = feed.flush(100)
    assert [d["L"] for d in orjson.loads(o.payload)["data"]] == [
        "ZeroPlusTick", "ZeroPlusTick", "PlusTick", "ZeroPlusTick", "MinusTick", "ZeroMinusTick",
    ]  # fmt: skip


def test_all_liquidations_every_500ms_with_position_side() -> None:
    feed = BybitFeed()
    feed.on_event(SimLiquidation(0, "bybit", "BTCUSDT", "long", 95000.0, 0.5), 1_000_100)
    feed.on_event(SimLiquidation(0, "bybit", "BTCUSDT", "short", 94000.0, 0.003), 1_000_499)
    feed.on_event(SimLiquidation(0, "bybit", "BTCUSDT", "long", 93000.0, 1.0), 1_000_500)
    assert feed.next_deadline_ms() == 1_000_500
    (first,) = feed.flush(1_000_502)
    assert orjson.loads(first.payload) == {
        "topic": "allLiquidation.BTCUSDT",
        "type": "snapshot",
        "ts": 1_000_502,
        "data": [
            # "Buy" = a long position was liquidated; p = bankruptcy price (0.5 % beyond)
            {"T": 1_000_100, "s": "BTCUSDT", "S": "Buy", "v": "0.500", "p": "94525.0"},
            {"T": 1_000_499, "s": "BTCUSDT", "S": "Sell", "v": "0.003", "p": "94470.0"},
        ],
    }
    assert first.streams == ("allLiquidation.BTCUSDT",)
    assert first.items == (
        SentLiquidation("bybit", "BTCUSDT", "long", "0.500", "94525.0", 1_000_100),
        SentLiquidation("bybit", "BTCUSDT", "short", "0.003", "94470.0", 1_000_499),
    )
    assert feed.next_deadline_ms() == 1_001_000
    (second,) = feed.flush(1_001_000)
    assert len(orjson.loads(second.payload)["data"]) == 1
    assert feed.next_deadline_ms() is None


def test_every_fourth_btc_liquidation_is_an_inverse_one_on_its_own_socket() -> None:
    feed = BybitFeed()
    for i in range(4):  # keys 0..3: key 3 goes to the inverse twin BTCUSD
        feed.on_event(SimLiquidation(0, "bybit", "BTCUSDT", "long", 95000.0, 0.5), 1_000_100 + i)
    inverse, linear = sorted(feed.flush(1_000_500), key=lambda o: o.streams)
    assert linear.streams == ("allLiquidation.BTCUSDT",) and len(linear.items) == 3
    assert inverse.streams == ("allLiquidation.BTCUSD",)
    assert orjson.loads(inverse.payload)["data"] == [
        # 0.5 BTC at the 94525.0 bankruptcy price: 47,262.5 USD -> 47,262 contracts of 1 USD
        {"T": 1_000_103, "s": "BTCUSD", "S": "Buy", "v": "47262", "p": "94525.0"}
    ]
    assert inverse.items == (
        SentLiquidation("bybit", "BTCUSD", "long", "47262", "94525.0", 1_000_103, 1.0, True),
    )
    linear_conn, inverse_conn = BybitSession("l", "linear"), BybitSession("i", "inverse")
    refused = reply(linear_conn, {"op": "subscribe", "args": ["allLiquidation.BTCUSD"]})
    assert refused["ret_msg"] == "error:handler not found,topic:allLiquidation.BTCUSD"
    refused = reply(inverse_conn, {"op": "subscribe", "args": ["allLiquidation.BTCUSDT"]})
    assert refused["success"] is False
    assert reply(inverse_conn, {"op": "subscribe", "args": ["allLiquidation.BTCUSD"]})["success"]
    assert inverse_conn.frames_for(inverse) == [inverse.payload]
    assert inverse_conn.frames_for(linear) == []


# ---- tickers -------------------------------------------------------------------------------------


def line_scenario(end_price: float = 89300.0, crash_start_s: float = 2.5) -> Scenario:
    """BTCUSDT on a straight line from 95000 (t=0) to ``end_price`` (t=10 s)."""
    return Scenario(events=[], duration_s=10.0, seed=0, venues=("bybit",), symbols=("BTCUSDT",),
                    crash_start_s=crash_start_s, path_times=(0.0, 10.0),
                    paths={"BTCUSDT": (95000.0, end_price)})  # fmt: skip


def subscribed(*topics: str) -> BybitSession:
    s = BybitSession("c")
    assert reply(s, {"op": "subscribe", "args": list(topics)})["success"] is True
    return s


def push(sessions: list[BybitSession], outs: list[Any]) -> list[list[dict[str, Any]]]:
    return [[orjson.loads(f) for o in outs for f in s.frames_for(o)] for s in sessions]


def test_tickers_snapshot_first_then_deltas_exact() -> None:
    feed = BybitFeed(line_scenario())
    a, b = subscribed("tickers.BTCUSDT"), subscribed("publicTrade.BTCUSDT")
    # t = 2.5 s: path 93575.0, crash progress 0
    outs = feed.on_event(SimTrade(2.5, "bybit", "BTCUSDT", 93575.1, 0.01, "buy"), 1_000)
    (out,) = outs
    assert isinstance(out, TickerOutgoing)
    assert (out.streams, out.keys, out.items) == (("tickers.BTCUSDT",), (), ())  # not in the ledger
    snapshot = {
        "topic": "tickers.BTCUSDT",
        "type": "snapshot",
        "data": {
            "symbol": "BTCUSDT", "tickDirection": "ZeroPlusTick", "lastPrice": "93575.1",
            "markPrice": "93575.0", "indexPrice": "93575.0", "openInterest": "13157.895",
            "openInterestValue": "1231250024.62", "nextFundingTime": "28800000",
            "fundingRate": "0.000100",
        },
        "cs": 1,
        "ts": 1_000,
    }  # fmt: skip
    assert push([a, b], outs) == [[snapshot], []]
    # 99 ms later: too early for another push (the trade still counts for the next one)
    assert feed.on_event(SimTrade(2.599, "bybit", "BTCUSDT", 93575.0, 0.01, "sell"), 1_099) == []
    # t = 5 s: path 92150.0, progress 1/3; a 0.5 BTC long liquidated: open interest -0.5
    outs = feed.on_event(SimLiquidation(5.0, "bybit", "BTCUSDT", "long", 92150.0, 0.5), 3_500)
    c = subscribed("tickers.BTCUSDT", "allLiquidation.BTCUSDT")  # subscribed since the last push
    delta_data = {
        "symbol": "BTCUSDT", "tickDirection": "MinusTick", "lastPrice": "93575.0",
        "markPrice": "92150.0", "indexPrice": "92165.4", "openInterest": "13157.395",
        "openInterestValue": "1212453949.25", "fundingRate": "0.000000",
    }  # fmt: skip
    full = {**snapshot["data"], **delta_data}  # type: ignore[dict-item]
    assert push([a, b, c], outs) == [
        [{"topic": "tickers.BTCUSDT", "type": "delta", "data": delta_data, "cs": 2, "ts": 3_500}],
        [],
        [{"topic": "tickers.BTCUSDT", "type": "snapshot", "data": full, "cs": 2, "ts": 3_500}],
    ]
    assert list(full) == list(snapshot["data"])  # type: ignore[call-overload]
    # unsubscribing and subscribing again starts with a snapshot again
    assert reply(a, {"op": "unsubscribe", "args": ["tickers.BTCUSDT"]})["success"] is True
    assert push(
        [a], feed.on_event(SimTrade(7.5, "bybit", "BTCUSDT", 91000.0, 0.01, "sell"), 6_000)
    ) == [[]]
    assert reply(a, {"op": "subscribe", "args": ["tickers.BTCUSDT"]})["success"] is True
    (got_a, got_c) = push(
        [a, c], feed.on_event(SimTrade(8.5, "bybit", "BTCUSDT", 90000.0, 0.01, "sell"), 7_000)
    )
    assert [f["type"] for f in got_a] == ["snapshot"] and [f["type"] for f in got_c] == ["delta"]
    assert (
        got_a[0]["data"]["markPrice"] == got_c[0]["data"]["markPrice"] == "90155.0"
    )  # 95000 - 570 * 8.5
    assert got_a[0]["cs"] == got_c[0]["cs"] == 4


def test_unchanged_ticker_is_not_pushed() -> None:
    feed = BybitFeed(line_scenario(end_price=95000.0, crash_start_s=10.0))  # a flat, calm market
    assert len(feed.on_event(SimTrade(1.0, "bybit", "BTCUSDT", 95000.0, 0.01, "buy"), 1_000)) == 1
    assert feed.on_event(SimTrade(2.0, "bybit", "BTCUSDT", 95000.0, 0.01, "buy"), 2_000) == []
    (out,) = feed.on_event(SimTrade(3.0, "bybit", "BTCUSDT", 95000.1, 0.01, "buy"), 3_000)
    assert orjson.loads(out.payload)["data"] == {
        "symbol": "BTCUSDT", "tickDirection": "PlusTick", "lastPrice": "95000.1"
    }  # fmt: skip
    # the funding time rolls over at the 8-hour boundary
    (out,) = feed.on_event(SimTrade(4.0, "bybit", "BTCUSDT", 95000.1, 0.01, "buy"), 28_800_000)
    assert orjson.loads(out.payload)["data"] == {
        "symbol": "BTCUSDT", "tickDirection": "ZeroPlusTick", "nextFundingTime": "57600000"
    }  # fmt: skip


def test_no_scenario_no_tickers() -> None:
    """Without a price path the feed has no ticker to send: the topic is accepted and silent."""
    feed = BybitFeed()
    assert feed.on_event(SimTrade(1.0, "bybit", "BTCUSDT", 95000.0, 0.01, "buy"), 1_000) == []
    assert feed.on_event(SimLiquidation(1.0, "bybit", "BTCUSDT", "long", 95000.0, 1.0), 2_000) == []


def test_parsed_ticker_marks_follow_the_scenario_path() -> None:
    """Simulator frames through the producer's parser: every mark price is the scenario path at
    the event's time (to the instrument's decimals), snapshot first per topic, pushes >= 100 ms
    apart, and open interest falls by exactly the liquidated size."""
    sc = crash_scenario(duration_s=30.0, seed=11, venues=("bybit",))
    t0_ms = 1_737_936_000_000
    feed = BybitFeed(sc)
    session = subscribed(*(f"tickers.{s}" for s in sc.symbols))
    adapter = BybitAdapter(ExchangeConfig(symbols=sc.symbols))
    latest: dict[str, dict[str, Any]] = {}
    pushes: dict[str, list[int]] = {}
    types: dict[str, list[str]] = {}
    liquidated: dict[str, float] = dict.fromkeys(sc.symbols, 0.0)
    oi: dict[str, list[float]] = {s: [] for s in sc.symbols}
    for ev in sc.events:
        now_ms = t0_ms + round(ev.t * 1000)
        if isinstance(ev, SimLiquidation):
            liquidated[ev.venue_symbol] += ev.qty
        for out in feed.on_event(ev, now_ms):
            for raw in session.frames_for(out):
                types.setdefault(ev.venue_symbol, []).append(orjson.loads(raw)["type"])
                (c,) = adapter.parse(raw, 1).events
                assert isinstance(c, MarketContext) and c.venue_symbol == ev.venue_symbol
                assert c.ts_ms == now_ms
                if c.mark_price is not None:
                    spec = instrument(c.venue_symbol)
                    assert c.mark_price == float(spec.price_text(sc.price_at(c.venue_symbol, ev.t)))
                if c.open_interest_base is not None:
                    oi[c.venue_symbol].append(c.open_interest_base)
                pushes.setdefault(c.venue_symbol, []).append(now_ms)
                state = latest.setdefault(c.venue_symbol, {})
                for field in ("mark_price", "index_price", "funding_rate", "next_funding_ms",
                              "open_interest_base", "open_interest_usd"):  # fmt: skip
                    if getattr(c, field) is not None:
                        state[field] = getattr(c, field)
    assert set(latest) == set(sc.symbols)
    for sym in sc.symbols:
        assert types[sym][0] == "snapshot" and set(types[sym][1:]) == {"delta"}
        assert len(latest[sym]) == 6  # every field known after the snapshot
        times = pushes[sym]
        assert min(b - a for a, b in itertools.pairwise(times)) >= 100
        assert len(times) >= sc.duration_s  # about every 100 ms to 1 s
        # open interest only falls, by the liquidated size (those liquidated after the last push
        # of the symbol are not pushed yet)
        assert oi[sym] == sorted(oi[sym], reverse=True) and oi[sym][-1] < oi[sym][0]
        assert oi[sym][0] - oi[sym][-1] <= liquidated[sym] + 1e-6
