"""The Binance protocol module, sans-I/O: routes, requests, framing, sampling, mark prices."""

from __future__ import annotations

import math

import orjson
import pytest

from monitor.simulator.instruments import instrument
from monitor.simulator.ledger import Ledger, SentLiquidation, SentTrade
from monitor.simulator.scenario import Scenario, SimEvent, SimLiquidation, SimTrade, crash_scenario
from monitor.simulator.venues.binance import (
    FUNDING_RATE,
    SPEC,
    BinanceFeed,
    BinanceSession,
    Route,
    RouteError,
    parse_route,
)
from monitor.simulator.wire import Outgoing


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/market/ws/!forceOrder@arr", Route(False, ("!forceOrder@arr",))),
        ("/market/ws/%21forceOrder%40arr", Route(False, ("!forceOrder@arr",))),
        (
            "/market/ws/btcusdt@aggTrade/ethusdt@aggTrade",
            Route(False, ("btcusdt@aggTrade", "ethusdt@aggTrade")),
        ),
        (
            "/market/stream?streams=btcusdt@aggTrade/!forceOrder@arr",
            Route(True, ("btcusdt@aggTrade", "!forceOrder@arr")),
        ),
        (
            "/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice@1s/ethusdt@markPrice",
            Route(True, ("btcusdt@aggTrade", "btcusdt@markPrice@1s", "ethusdt@markPrice")),
        ),
        ("/market/ws", Route(False, ())),
        ("/market/stream", Route(True, ())),
        ("/ws/!forceOrder@arr", Route(False, ("!forceOrder@arr",), legacy=True)),
        ("/stream?streams=btcusdt@aggTrade", Route(True, ("btcusdt@aggTrade",), legacy=True)),
        ("/ws", Route(False, (), legacy=True)),
    ],
)
def test_routes(path: str, route: Route) -> None:
    assert parse_route(path) == route


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/public/ws/btcusdt@aggTrade", 404),
        ("/market", 404),
        ("/market/foo", 404),
        ("/market/ws/BTCUSDT@aggTrade", 400),
        ("/market/ws/btcusdt@depth", 400),
        ("/market/stream?streams=btcusdt@aggTrade/!forceorder@arr", 400),
        ("/market/ws/btcusdt@markPrice@3s", 400),
        ("/market/ws/btcusdt@markprice@1s", 400),
        ("/market/ws/btcusdt@markPrice@1s@1s", 400),
        ("/market/ws/!markPrice@arr", 400),  # not served by the simulator
    ],
)
def test_bad_routes_are_refused(path: str, status: int) -> None:
    with pytest.raises(RouteError) as err:
        parse_route(path)
    assert err.value.status == status


def session(path: str = "/market/ws") -> BinanceSession:
    return BinanceSession(parse_route(path), "c1")


def reply_json(s: BinanceSession, request: object, now_s: float = 0.0) -> object:
    reply = s.handle(orjson.dumps(request), now_s)
    assert len(reply.frames) == 1
    return orjson.loads(reply.frames[0])


def test_subscribe_list_unsubscribe() -> None:
    s = session()
    reply = s.handle(
        orjson.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1}), 0.0
    )
    assert reply.frames == (b'{"result":null,"id":1}',)
    assert reply.subscriptions_changed
    assert reply_json(s, {"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": 2}) == {
        "result": None,
        "id": 2,
    }
    assert reply_json(s, {"method": "LIST_SUBSCRIPTIONS", "id": 3}) == {
        "result": ["btcusdt@aggTrade", "!forceOrder@arr"],
        "id": 3,
    }
    assert reply_json(s, {"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 4}) == {
        "result": None,
        "id": 4,
    }
    assert list(s.subscriptions) == ["!forceOrder@arr"]


def test_a_request_with_an_unknown_stream_is_refused_whole() -> None:
    s = session("/market/ws/btcusdt@aggTrade")
    bad = {"method": "SUBSCRIBE", "params": ["ethusdt@aggTrade", "ethusdt@kline_1m"], "id": 5}
    assert reply_json(s, bad) == {
        "error": {"code": 2, "msg": "Invalid request: unknown stream name `ethusdt@kline_1m`"},
        "id": 5,
    }
    assert list(s.subscriptions) == ["btcusdt@aggTrade"]


@pytest.mark.parametrize(
    ("raw", "code", "msg_start", "rid"),
    [
        (b"{not json", 3, "Invalid JSON: ", None),
        (b"[1,2]", 2, "Invalid request: expected a JSON object", None),
        (b'{"method":"SUBSCRIBE","params":[]}', 2, "Invalid request: missing field `id`", None),
        (b'{"method":"SUBSCRIBE","id":"x"}', 2, "Invalid request: request ID must be", None),
        (b'{"method":"SUBSCRIB","id":7}', 2, "Invalid request: unknown variant `SUBSCRIB`", 7),
        (b'{"params":[],"id":8}', 2, "Invalid request: missing field `method`", 8),
        (b'{"method":"SUBSCRIBE","params":"x","id":9}', 2, "Invalid request: invalid type", 9),
    ],
)
def test_malformed_requests_get_binance_errors(
    raw: bytes, code: int, msg_start: str, rid: int | None
) -> None:
    reply = session().handle(raw, 0.0)
    body = orjson.loads(reply.frames[0])
    assert body["error"]["code"] == code
    assert body["error"]["msg"].startswith(msg_start)
    assert body["id"] == rid
    assert reply.close is None


def test_more_than_ten_messages_a_second_closes_with_1008() -> None:
    s = session()
    list_req = orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1})
    for i in range(30):  # 5 per second: fine
        assert s.handle(list_req, i * 0.2).close is None
    s = session()
    for i in range(10):
        assert s.handle(list_req, 100.0 + i * 0.01).close is None
    assert s.handle(list_req, 100.5).close == (1008, "Too many requests")


def test_combined_property_and_framing() -> None:
    payload = b'{"e":"aggTrade"}'
    out = Outgoing(("btcusdt@aggTrade",), payload, (0,), ())
    s = session("/market/ws/btcusdt@aggTrade")
    assert s.frames_for(out) == [payload]
    assert reply_json(s, {"method": "GET_PROPERTY", "params": ["combined"], "id": 1}) == {
        "result": False,
        "id": 1,
    }
    assert reply_json(s, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 2}) == {
        "result": None,
        "id": 2,
    }
    assert s.frames_for(out) == [b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade"}}']
    assert session("/market/ws/ethusdt@aggTrade").frames_for(out) == []
    # subscribed to both streams of one forceOrder: one frame per stream, like Binance
    both = session("/market/stream?streams=!forceOrder@arr/btcusdt@forceOrder")
    liq = Outgoing(("!forceOrder@arr", "btcusdt@forceOrder"), b"{}", (1,), ())
    assert both.frames_for(liq) == [
        b'{"stream":"!forceOrder@arr","data":{}}',
        b'{"stream":"btcusdt@forceOrder","data":{}}',
    ]


def test_legacy_session_is_silent() -> None:
    s = session("/ws/!forceOrder@arr")
    assert list(s.subscriptions) == []
    for i in range(50):
        reply = s.handle(b'{"method":"LIST_SUBSCRIPTIONS","id":1}', i * 0.001)
        assert reply.frames == () and reply.close is None
    assert s.frames_for(Outgoing(("!forceOrder@arr",), b"{}", (0,), ())) == []


def liq(sym: str, side: str, price: float, qty: float) -> SimLiquidation:
    return SimLiquidation(0.0, "binance", sym, side, price, qty)


def test_force_order_sampling_keeps_the_latest_per_symbol_per_second() -> None:
    feed = BinanceFeed()
    assert feed.next_deadline_ms() is None
    assert feed.on_event(liq("BTCUSDT", "long", 95100.0, 0.2), 1_000_100) == []
    feed.on_event(liq("BTCUSDT", "long", 95050.0, 0.3), 1_000_500)
    feed.on_event(liq("ETHUSDT", "short", 3300.0, 1.5), 1_000_200)
    feed.on_event(liq("BTCUSDT", "long", 95000.0, 0.5), 1_000_999)
    feed.on_event(liq("BTCUSDT", "short", 94000.0, 0.001), 1_001_000)  # next window
    assert feed.next_deadline_ms() == 1_001_000
    assert feed.flush(1_000_999) == []
    first = [o for o in feed.flush(1_001_003) if o.items]  # (mark prices carry no items)
    assert [orjson.loads(o.payload) for o in first] == [
        {
            "e": "forceOrder",
            "E": 1_001_003,
            "o": {
                "s": "BTCUSDT",
                "S": "SELL",
                "o": "LIMIT",
                "f": "IOC",
                "q": "0.5",
                "p": "94525",
                "ap": "95000",
                "X": "FILLED",
                "l": "0.5",
                "z": "0.5",
                "T": 1_000_999,
            },
        },
        {
            "e": "forceOrder",
            "E": 1_001_003,
            "o": {
                "s": "ETHUSDT",
                "S": "BUY",
                "o": "LIMIT",
                "f": "IOC",
                "q": "1.5",
                "p": "3316.5",
                "ap": "3300",
                "X": "FILLED",
                "l": "1.5",
                "z": "1.5",
                "T": 1_000_200,
            },
        },
    ]
    assert first[0].streams == ("!forceOrder@arr", "btcusdt@forceOrder")
    assert first[0].items == (
        SentLiquidation("binance", "BTCUSDT", "long", "0.5", "95000", 1_000_999),
    )
    assert first[1].items == (
        SentLiquidation("binance", "ETHUSDT", "short", "1.5", "3300", 1_000_200),
    )
    assert feed.next_deadline_ms() == 1_002_000
    (second,) = [o for o in feed.flush(1_002_000) if o.items]
    assert orjson.loads(second.payload)["o"]["S"] == "BUY"
    assert feed.next_deadline_ms() is None  # no scenario and no event since: marks pause too
    assert len({k for o in [*first, second] for k in o.keys}) == 3


def test_agg_trades_carry_increasing_ids_and_maker_flag() -> None:
    feed = BinanceFeed()
    (a,) = feed.on_event(SimTrade(0.0, "binance", "BTCUSDT", 95000.1, 0.01, "sell"), 5_000)
    (b,) = feed.on_event(SimTrade(0.1, "binance", "BTCUSDT", 95000.2, 1.5, "buy"), 5_100)
    pa, pb = orjson.loads(a.payload), orjson.loads(b.payload)
    assert list(pa) == ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m"]
    assert (pa["e"], pa["E"], pa["s"], pa["p"], pa["q"], pa["T"], pa["m"]) == (
        "aggTrade", 5_000, "BTCUSDT", "95000.1", "0.010", 5_000, True,
    )  # fmt: skip
    assert (pb["p"], pb["q"], pb["m"]) == ("95000.2", "1.500", False)
    assert pb["a"] == pa["a"] + 1
    assert pa["f"] <= pa["l"] and pb["f"] == pa["l"] + 1
    assert a.streams == ("btcusdt@aggTrade",)
    assert a.items == (
        SentTrade("binance", "BTCUSDT", "sell", "0.010", "95000.1", 5_000, str(pa["a"])),
    )


def test_ledger_records_each_item_once_in_send_order() -> None:
    ledger = Ledger()
    l1 = SentLiquidation("binance", "BTCUSDT", "long", "0.5", "95000.1", 1)
    l2 = SentLiquidation("binance", "BTCUSDT", "long", "0.003", "94000", 2)
    l3 = SentLiquidation("bybit", "BTCUSDT", "short", "2", "3", 3)
    t1 = SentTrade("bybit", "ETHUSDT", "buy", "1", "3300.01", 4, "x")
    ledger.record("binance", [1], [l1])
    ledger.record("binance", [1], [l1])  # same item on a second connection / stream
    ledger.record("binance", [2], [l2])
    ledger.record("bybit", [1, 2], [l3, t1])  # keys are per venue
    assert ledger.liquidations == [l1, l2, l3]
    assert ledger.trades == [t1]
    assert ledger.liquidation_notional() == {
        ("binance", "BTCUSDT", "long"): 0.5 * 95000.1 + 0.003 * 94000.0,
        ("bybit", "BTCUSDT", "short"): 6.0,
    }
    assert ledger.counts() == {
        "binance": {"liquidations": 2, "long_liquidations": 2, "trades": 0},
        "bybit": {"liquidations": 1, "long_liquidations": 0, "trades": 1},
    }


# ---- mark price ---------------------------------------------------------------------------------

START_MS = 1_700_000_001_000  # wall time of scenario second 0; its second is a multiple of 3
NEXT_FUNDING_MS = 1_700_006_400_000  # 2023-11-15 00:00 UTC, the next 8 h boundary


def play(feed: BinanceFeed, events: list[SimEvent], start_ms: int, speed: float = 1.0
         ) -> list[Outgoing]:  # fmt: skip
    """Drive a feed like the server does (whole ms, events exactly on time)."""
    out: list[Outgoing] = []
    i = 0
    while True:
        targets = [d] if (d := feed.next_deadline_ms()) is not None else []
        if i < len(events):
            targets.append(start_ms + math.ceil(events[i].t * 1000 / speed))
        if not targets:
            return out
        now = min(targets)
        while i < len(events) and start_ms + math.ceil(events[i].t * 1000 / speed) <= now:
            out += feed.on_event(events[i], now)
            i += 1
        out += feed.flush(now)


def marks(outs: list[Outgoing]) -> list[tuple[tuple[str, ...], dict[str, object]]]:
    return [(o.streams, orjson.loads(o.payload)) for o in outs if b"markPriceUpdate" in o.payload]


def mark_payload(sc: Scenario, sym: str, wall_ms: int, t: float) -> dict[str, object]:
    index = sc.price_at(sym, t)
    return {
        "e": "markPriceUpdate",
        "E": wall_ms,
        "s": sym,
        "p": f"{instrument(sym).round_price(index):.8f}",
        "i": f"{index:.8f}",
        "P": f"{index:.8f}",
        "r": FUNDING_RATE,
        "T": NEXT_FUNDING_MS,
    }


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return crash_scenario(duration_s=5.0, venues=("binance",), symbols=("BTCUSDT", "ETHUSDT"))


def test_mark_price_once_a_second_per_symbol_from_the_scenario_path(scenario: Scenario) -> None:
    feed = BinanceFeed(scenario, start_ms=START_MS)
    assert feed.next_deadline_ms() == START_MS  # scheduled before any event
    outs = play(feed, scenario.events, START_MS)
    got = marks(outs)
    seconds = [START_MS + 1000 * k for k in range(6)]  # scenario seconds 0..5, the end included
    assert [(p["E"], p["s"]) for _, p in got] == [
        (w, s) for w in seconds for s in ("BTCUSDT", "ETHUSDT")
    ]
    for _, p in got:
        wall_ms, sym = p["E"], p["s"]
        assert isinstance(wall_ms, int) and isinstance(sym, str)
        assert p == mark_payload(scenario, sym, wall_ms, (wall_ms - START_MS) / 1000)
    # the path starts at the instrument's start price; keys in the documented order
    assert got[0] == (
        ("btcusdt@markPrice@1s", "btcusdt@markPrice"),
        {"e": "markPriceUpdate", "E": START_MS, "s": "BTCUSDT", "p": "95000.00000000",
         "i": "95000.00000000", "P": "95000.00000000", "r": "0.00010000", "T": NEXT_FUNDING_MS},
    )  # fmt: skip
    assert list(got[0][1]) == ["e", "E", "s", "p", "i", "P", "r", "T"]
    # <sym>@markPrice (3000 ms) gets every third second, <sym>@markPrice@1s every second
    assert [p["E"] for streams, p in got if "btcusdt@markPrice" in streams] == [
        START_MS, START_MS + 3000,
    ]  # fmt: skip
    assert all(o.keys == () and o.items == () for o in outs if b"markPriceUpdate" in o.payload)
    assert feed.next_deadline_ms() is None  # the scenario is over: playback can end


def test_a_session_gets_one_mark_per_second_per_subscribed_symbol(scenario: Scenario) -> None:
    outs = play(BinanceFeed(scenario, start_ms=START_MS), scenario.events, START_MS)
    s = session("/market/stream?streams=btcusdt@markPrice@1s/ethusdt@markPrice/btcusdt@aggTrade")
    frames = [orjson.loads(f) for o in outs for f in s.frames_for(o)]
    mark_frames = [f for f in frames if f["data"]["e"] == "markPriceUpdate"]
    assert [(f["stream"], f["data"]["s"], f["data"]["E"]) for f in mark_frames] == [
        ("btcusdt@markPrice@1s", "BTCUSDT", START_MS),
        ("ethusdt@markPrice", "ETHUSDT", START_MS),
        ("btcusdt@markPrice@1s", "BTCUSDT", START_MS + 1000),
        ("btcusdt@markPrice@1s", "BTCUSDT", START_MS + 2000),
        ("btcusdt@markPrice@1s", "BTCUSDT", START_MS + 3000),
        ("ethusdt@markPrice", "ETHUSDT", START_MS + 3000),
        ("btcusdt@markPrice@1s", "BTCUSDT", START_MS + 4000),
        ("btcusdt@markPrice@1s", "BTCUSDT", START_MS + 5000),
    ]
    trades = [f for f in frames if f["data"]["e"] == "aggTrade"]
    assert len(trades) == len([e for e in scenario.trades() if e.venue_symbol == "BTCUSDT"])
    assert not [o for o in outs if s.frames_for(o) and b'"ETHUSDT"' in o.payload and o.items]


def test_mark_price_at_double_speed_follows_scenario_time(scenario: Scenario) -> None:
    got = marks(play(BinanceFeed(scenario, speed=2.0, start_ms=START_MS), scenario.events,
                     START_MS, speed=2.0))  # fmt: skip
    btc = [p for _, p in got if p["s"] == "BTCUSDT"]
    assert [p["E"] for p in btc] == [START_MS, START_MS + 1000, START_MS + 2000]
    assert btc == [
        mark_payload(scenario, "BTCUSDT", START_MS + 1000 * k, 2.0 * k) for k in range(3)
    ]


def test_scenario_clock_is_taken_from_the_events(scenario: Scenario) -> None:
    # BinanceFeed(scenario): what the server builds; neither start nor speed is given
    feed = BinanceFeed(scenario)
    assert feed.next_deadline_ms() is None  # nothing known before the first event
    feed.on_event(SimTrade(0.5, "binance", "BTCUSDT", 95000.1, 0.01, "sell"), START_MS + 125)
    assert feed.next_deadline_ms() == START_MS + 1000
    feed.on_event(SimTrade(2.0, "binance", "ETHUSDT", 3300.2, 0.01, "buy"), START_MS + 500)
    # 1.5 scenario s in 375 ms: speed 4, so the next second is scenario second 2 + 0.5 * 4 = 4
    (btc, eth) = marks(feed.flush(START_MS + 1000))
    assert btc[1] == mark_payload(scenario, "BTCUSDT", START_MS + 1000, 4.0)
    assert eth[1] == mark_payload(scenario, "ETHUSDT", START_MS + 1000, 4.0)
    # the scenario (5 s) ends at wall START_MS + 500 + 3 / 4 s: no further mark
    assert feed.next_deadline_ms() is None


def test_with_one_event_the_mark_is_the_path_at_that_event(scenario: Scenario) -> None:
    feed = BinanceFeed(scenario)
    feed.on_event(SimTrade(0.75, "binance", "BTCUSDT", 95000.1, 0.01, "sell"), START_MS + 750)
    (btc, _) = marks(feed.flush(START_MS + 1000))  # speed unknown yet: no extrapolation
    assert btc[1] == mark_payload(scenario, "BTCUSDT", START_MS + 1000, 0.75)


def test_the_simulator_builds_the_feed_with_its_scenario(scenario: Scenario) -> None:
    assert SPEC.new_feed_for is not None
    feed = SPEC.new_feed_for(scenario)
    (out,) = feed.on_event(
        SimTrade(0.5, "binance", "BTCUSDT", 95000.1, 0.01, "sell"), START_MS + 500
    )
    assert b"aggTrade" in out.payload
    got = marks(feed.flush(START_MS + 1000))
    assert [p["s"] for _, p in got] == ["BTCUSDT", "ETHUSDT"]  # every scenario symbol
    assert got[0][1] == mark_payload(scenario, "BTCUSDT", START_MS + 1000, 0.5)


def test_without_a_scenario_marks_follow_the_latest_event_and_pause_when_idle() -> None:
    feed = BinanceFeed()
    feed.on_event(SimTrade(0.0, "binance", "ETHUSDT", 3300.01, 1.0, "buy"), 10_000_100)
    feed.on_event(liq("BTCUSDT", "long", 95000.1, 0.5), 10_000_200)
    feed.on_event(SimTrade(0.0, "binance", "ETHUSDT", 3299.99, 1.0, "sell"), 10_000_300)
    assert feed.next_deadline_ms() == 10_001_000
    outs = feed.flush(10_001_000)
    assert [p for _, p in marks(outs)] == [
        {"e": "markPriceUpdate", "E": 10_001_000, "s": "ETHUSDT", "p": "3299.99000000",
         "i": "3299.99000000", "P": "3299.99000000", "r": "0.00010000", "T": 28_800_000},
        {"e": "markPriceUpdate", "E": 10_001_000, "s": "BTCUSDT", "p": "95000.10000000",
         "i": "95000.10000000", "P": "95000.10000000", "r": "0.00010000", "T": 28_800_000},
    ]  # fmt: skip
    assert [o.streams for o in outs if not o.items] == [
        ("ethusdt@markPrice@1s",), ("btcusdt@markPrice@1s",),  # second 10_001: not a 3rd one
    ]  # fmt: skip
    assert feed.next_deadline_ms() is None  # no event in the second that just ended: pause
    feed.on_event(SimTrade(0.0, "binance", "BTCUSDT", 94990.0, 0.1, "sell"), 10_003_500)
    assert feed.next_deadline_ms() == 10_004_000  # resumes at the next boundary, no backlog
    assert [p["p"] for _, p in marks(feed.flush(10_004_002))] == [
        "3299.99000000", "94990.00000000",
    ]  # fmt: skip


def test_a_late_flush_sends_one_mark_not_a_backlog(scenario: Scenario) -> None:
    feed = BinanceFeed(scenario, start_ms=START_MS)
    got = marks(feed.flush(START_MS + 2500))
    assert [(p["s"], p["E"]) for _, p in got] == [
        ("BTCUSDT", START_MS + 2500), ("ETHUSDT", START_MS + 2500),
    ]  # fmt: skip
    assert got[0][1] == mark_payload(scenario, "BTCUSDT", START_MS + 2500, 2.5)
    assert feed.next_deadline_ms() == START_MS + 3000


def test_speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="speed"):
        BinanceFeed(speed=0.0)
