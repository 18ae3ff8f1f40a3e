"""The Gate protocol module, sans-I/O: requests and replies, aggregation, sign convention, and the
round trip through the real adapter."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from monitor.config import ExchangeConfig
from monitor.schema import Liquidation
from monitor.simulator import gate
from monitor.simulator.ledger import Ledger, SentLiquidation, SentTrade
from monitor.simulator.scenario import SimLiquidation, SimTrade, crash_scenario
from monitor.simulator.wire import Reply
from producers.gate import GateAdapter


def one(r: Reply) -> Any:
    (frame,) = r.frames
    return orjson.loads(frame)


def sub(channel: str, payload: Any, event: str = "subscribe") -> bytes:
    return orjson.dumps({"time": 1, "channel": channel, "event": event, "payload": payload})


def test_spec_and_rest() -> None:
    spec = gate.SPEC
    assert (spec.name, spec.base_path, spec.binary, spec.tick_s) == (
        "gate",
        "/v4/ws/usdt",
        False,
        None,
    )
    assert spec.route("/v4/ws/usdt") is None and spec.route("/v4/ws/btc") == (
        404,
        "Not Found: /v4/ws/btc",
    )
    status, body = gate.rest("/api/v4/futures/usdt/contracts") or (0, b"")
    assert status == 200 and gate.rest("/api/v4/spot/currencies") is None
    adapter = GateAdapter(ExchangeConfig())
    assert adapter.load_instruments("u", body) == 3
    assert [(c["name"], c["quanto_multiplier"]) for c in orjson.loads(body)] == [
        ("BTC_USDT", "0.0001"), ("ETH_USDT", "0.01"), ("SOL_USDT", "1"),
    ]  # fmt: skip


def test_subscribe_ping_and_errors() -> None:
    s = gate.GateSession("c")
    ok = s.handle(sub("futures.public_liquidates", ["!all"]), 1700000000.5)
    assert ok.subscriptions_changed
    assert one(ok) == {"time": 1700000000, "time_ms": 1700000000500,
                       "channel": "futures.public_liquidates", "event": "subscribe",
                       "payload": ["!all"], "error": None, "result": {"status": "success"}}  # fmt: skip
    bad = one(s.handle(sub("futures.trades", ["BTC_USDT", "!all"]), 1.0))
    assert bad["error"] == {"code": 2, "message": "unknown contract !all"}
    assert bad["result"] == {"status": "fail"}
    assert one(s.handle(sub("futures.trades", ["BTC_USDT"]), 1.0))["error"] is None
    assert list(s.subscriptions) == ["futures.public_liquidates|!all", "futures.trades|BTC_USDT"]
    s.handle(sub("futures.trades", ["BTC_USDT"], "unsubscribe"), 1.0)
    assert list(s.subscriptions) == ["futures.public_liquidates|!all"]
    pong = one(s.handle(b'{"time": 5, "channel": "futures.ping"}', 5.25))
    assert pong == {"time": 5, "time_ms": 5250, "channel": "futures.pong", "event": "",
                    "error": None, "result": None}  # fmt: skip
    assert one(s.handle(b"{x", 1.0))["error"]["code"] == 2


def liq(side: str, qty: float, sym: str = "BTCUSDT") -> SimLiquidation:
    return SimLiquidation(0, "gate", sym, side, 95000.0, qty)


def test_liquidations_aggregated_per_contract_per_second_with_sign() -> None:
    feed = gate.GateFeed()
    assert feed.on_event(liq("long", 0.25), 1_000_100) == []
    assert feed.on_event(liq("short", 0.00004), 1_000_200) == []  # rounds to 0 contracts: dropped
    assert feed.on_event(liq("short", 0.0123), 1_000_999) == []
    assert feed.on_event(liq("long", 0.5), 1_001_000) == []  # next window
    assert feed.next_deadline_ms() == 1_001_000
    (out,) = feed.flush(1_001_000)
    assert out.streams == ("futures.public_liquidates|BTC_USDT", "futures.public_liquidates|!all")
    assert orjson.loads(out.payload) == {
        "channel": "futures.public_liquidates", "event": "update", "time": 1001,
        "time_ms": 1_001_000,
        "result": [
            {"price": "94525.0", "size": "-2500", "time": 1_000_100, "contract": "BTC_USDT"},
            {"price": "95475.0", "size": "123", "time": 1_000_999, "contract": "BTC_USDT"},
        ],
    }  # fmt: skip
    assert out.items == (
        SentLiquidation(
            "gate", "BTC_USDT", "long", "2500", "94525.0", 1_000_100, multiplier=0.0001
        ),
        SentLiquidation(
            "gate", "BTC_USDT", "short", "123", "95475.0", 1_000_999, multiplier=0.0001
        ),
    )
    assert feed.next_deadline_ms() == 1_002_000


def test_early_flush_at_20() -> None:
    feed = gate.GateFeed()
    outs = [o for i in range(21) for o in feed.on_event(liq("long", 1.0, "SOLUSDT"), 5_000 + i)]
    (out,) = outs
    assert len(orjson.loads(out.payload)["result"]) == 20 and len(out.keys) == 20
    (rest,) = feed.flush(6_000)
    assert len(orjson.loads(rest.payload)["result"]) == 1


def test_trades_pushed_at_once_negative_size_is_taker_sell() -> None:
    feed = gate.GateFeed()
    (out,) = feed.on_event(SimTrade(0, "gate", "ETHUSDT", 3300.0, 0.5, "sell"), 1_700_000_000_123)
    (item,) = orjson.loads(out.payload)["result"]
    assert {k: item[k] for k in ("size", "create_time", "create_time_ms", "price", "contract")} == {
        "size": "-50", "create_time": 1_700_000_000, "create_time_ms": 1_700_000_000_123,
        "price": "3300.00", "contract": "ETH_USDT",
    }  # fmt: skip
    assert out.items == (
        SentTrade(
            "gate", "ETH_USDT", "sell", "0.50", "3300.00", 1_700_000_000_123, str(item["id"])
        ),
    )


def test_round_trip_feed_to_adapter_matches_the_ledger() -> None:
    scenario = crash_scenario(duration_s=60.0, seed=11, venues=("bybit",))
    adapter = GateAdapter(ExchangeConfig())
    adapter.load_instruments("u", gate.rest(gate.CONTRACTS_PATH)[1])  # type: ignore[index]
    session = gate.GateSession("c")
    session.handle(sub("futures.public_liquidates", ["!all"]), 0.0)
    session.handle(sub("futures.trades", ["BTC_USDT", "ETH_USDT", "SOL_USDT"]), 0.0)
    feed, ledger = gate.GateFeed(), Ledger()
    got: dict[tuple[str, str], float] = {}
    errors: list[str] = []
    n_trades = 0
    t0 = 1_700_000_000_000
    outs = []
    for ev in scenario.events:
        now = t0 + round(ev.t * 1000)
        outs += feed.flush(now)
        outs += feed.on_event(dataclasses.replace(ev, venue="gate"), now)
    outs += feed.flush(t0 + 10**9)
    for out in outs:
        for frame in session.frames_for(out):
            ledger.record("gate", out.keys, out.items)
            parsed = adapter.parse(frame, 1)
            errors += parsed.errors
            for e in parsed.events:
                if isinstance(e, Liquidation):
                    key = (e.symbol, e.liquidated_side.value)
                    got[key] = got.get(key, 0.0) + e.notional_usd
                else:
                    n_trades += 1
    want = {(f"{c.replace('_', '-')}-PERP", side): v
            for (_, c, side), v in ledger.liquidation_notional().items()}  # fmt: skip
    assert errors == [] and n_trades == len(ledger.trades) > 100
    assert len(ledger.liquidations) > 10 and ("BTC-USDT-PERP", "long") in want
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6)
