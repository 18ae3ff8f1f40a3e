from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import ExchangeConfig
from monitor.errors import ParseError
from monitor.schema import OrderSide, QtyUnit, Trade
from producers.hyperliquid import HyperliquidAdapter
from tests.producers.test_fuzz_parsers import _mutate, _paths, check, json_values

RECV = 1_704_067_200_100_000_000
TRADE = {"coin": "BTC", "side": "A", "px": "42000.5", "sz": "0.015", "hash": "0xabc",
         "time": 1704067200000, "tid": 123, "users": ["0xbuyer", "0xseller"]}  # fmt: skip


def frame(*items: Any) -> bytes:
    return orjson.dumps({"channel": "trades", "data": list(items)})


def adapter() -> HyperliquidAdapter:
    return HyperliquidAdapter(ExchangeConfig(symbols=("BTC",)))


def test_documented_trade() -> None:
    parsed = adapter().parse(frame(TRADE, {**TRADE, "coin": "kPEPE", "side": "B", "tid": 7}), RECV)
    assert parsed.errors == [] and not parsed.control
    assert parsed.events == [
        Trade("hyperliquid", "BTC-USD-PERP", "BTC", OrderSide.SELL, 42000.5, 0.015, QtyUnit.BASE,
              1.0, 0.015, 0.015 * 42000.5, None, 1704067200000, RECV, "1704067200000-123"),
        Trade("hyperliquid", "KPEPE-USD-PERP", "kPEPE", OrderSide.BUY, 42000.5, 0.015, QtyUnit.BASE,
              1.0, 0.015, 0.015 * 42000.5, None, 1704067200000, RECV, "1704067200000-7"),
    ]  # fmt: skip


def test_bad_items_skipped() -> None:
    parsed = adapter().parse(
        frame({**TRADE, "side": "X"}, {**TRADE, "sz": "0"}, {**TRADE, "coin": "@107"},
              {**TRADE, "coin": "xyz:HOOD"}, {**TRADE, "tid": "1"}, {**TRADE, "time": 0}, [], TRADE),
        RECV,
    )  # fmt: skip
    assert parsed.errors == ["bad_side", "bad_number", "unknown_instrument", "unknown_instrument",
                             "bad_type", "bad_ts", "bad_shape"]  # fmt: skip
    assert len(parsed.events) == 1


def test_control_and_errors() -> None:
    a = adapter()
    assert a.parse(b'{"channel":"pong"}', 1).control
    sub = b'{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}}'
    assert a.parse(sub, 1).control
    assert a.heartbeat() == '{"method":"ping"}'


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"{", "bad_json"), (b"1", "bad_shape"), (b'{"channel":"error","data":"x"}', "request_failed"),
     (b'{"channel":"l2Book","data":{}}', "unknown_channel"), (b'{"data":[]}', "unknown_event"),
     (b'{"channel":"trades","data":{}}', "bad_shape"), (b'{"channel":"trades"}', "missing_field")],
)  # fmt: skip
def test_malformed_frames(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        adapter().parse(raw, RECV)
    assert exc.value.reason == reason


def test_subscriptions_one_per_coin() -> None:
    cfg = ExchangeConfig(symbols=("BTC", "kPEPE", "BTC"))
    (plan,) = HyperliquidAdapter(cfg).connections(cfg, "wss://api.hyperliquid.xyz/ws")
    assert plan.subscribe == (
        '{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}',
        '{"method":"subscribe","subscription":{"type":"trades","coin":"kPEPE"}}',
    )
    assert HyperliquidAdapter(ExchangeConfig()).connections(ExchangeConfig(), "ws://x") == []


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(raw=st.binary(max_size=300), value=json_values)
def test_fuzz_random(raw: bytes, value: Any) -> None:
    check(adapter(), raw)
    check(adapter(), orjson.dumps(value))


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_frames(data: st.DataObject) -> None:
    doc: Any = orjson.loads(frame(TRADE))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        action = data.draw(st.sampled_from(["replace", "delete"]))
        doc = _mutate(doc, path, action, data.draw(json_values))
    check(adapter(), orjson.dumps(doc))
