"""The Bybit protocol module, sans-I/O: operations, replies, batching, side convention."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from monitor.simulator.bybit import BybitFeed, BybitSession
from monitor.simulator.ledger import SentLiquidation, SentTrade
from monitor.simulator.scenario import SimLiquidation, SimTrade


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
