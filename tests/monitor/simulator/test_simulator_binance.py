"""The Binance protocol module, sans-I/O: routes, requests, framing, sampling."""

from __future__ import annotations

import orjson
import pytest

from monitor.simulator.binance import (
    BinanceFeed,
    BinanceSession,
    Route,
    RouteError,
    parse_route,
)
from monitor.simulator.ledger import Ledger, SentLiquidation, SentTrade
from monitor.simulator.scenario import SimLiquidation, SimTrade
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
    first = feed.flush(1_001_003)
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
    (second,) = feed.flush(1_002_000)
    assert orjson.loads(second.payload)["o"]["S"] == "BUY"
    assert feed.next_deadline_ms() is None
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
