from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import ExchangeConfig
from monitor.errors import ParseError
from monitor.schema import (
    Coverage,
    Liquidation,
    OrderSide,
    PriceKind,
    QtyUnit,
    Side,
    Trade,
    liquidation_id,
)
from producers.kraken import KrakenAdapter
from producers.kraken.instruments import instrument_for
from tests.producers.test_fuzz_parsers import _mutate, _paths, check, json_values

RECV = 1_565_342_713_000_000_000
# The documented trade message (exchange-feeds.md s10).
DOC = {"feed": "trade", "product_id": "PI_XBTUSD", "uid": "b5a1c239-7987-4207-96bf-02355a3263cf",
       "side": "sell", "type": "fill", "seq": 85423, "time": 1565342712903, "qty": 1135.0,
       "price": 11735.0}  # fmt: skip
PF = {**DOC, "product_id": "PF_XBTUSD", "qty": 0.25, "price": 60000.5, "uid": "u-1", "seq": 10}


def adapter() -> KrakenAdapter:
    return KrakenAdapter(ExchangeConfig(symbols=("PF_XBTUSD",)))


def test_documented_inverse_fill() -> None:
    parsed = adapter().parse(orjson.dumps(DOC), RECV)
    assert parsed.events == [
        Trade("kraken", "BTC-USD-PERP", "PI_XBTUSD", OrderSide.SELL, 11735.0, 1135.0, QtyUnit.USD,
              1.0, 1135.0 / 11735.0, 1135.0, False, 1565342712903, RECV,
              "b5a1c239-7987-4207-96bf-02355a3263cf")
    ]  # fmt: skip
    assert parsed.gaps == 0 and parsed.errors == []


def test_liquidation_type_gives_unknown_side() -> None:
    parsed = adapter().parse(orjson.dumps({**PF, "type": "liquidation"}), RECV)
    tr, liq = parsed.events
    assert isinstance(tr, Trade) and tr.is_liquidation is True and tr.qty_unit == QtyUnit.BASE
    assert liq == Liquidation(
        "kraken", "BTC-USD-PERP", "PF_XBTUSD", Side.UNKNOWN, None, 60000.5, PriceKind.TRADE, 0.25,
        QtyUnit.BASE, 1.0, 0.25, 0.25 * 60000.5, Coverage.TRADE_FLAG, 1565342712903, RECV,
        liquidation_id("kraken", "PF_XBTUSD", 1565342712903, "unknown|u-1", 0.25, 60000.5),
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["fill", "block", "termination"])
def test_other_types_are_plain_trades(kind: str) -> None:
    (ev,) = adapter().parse(orjson.dumps({**PF, "type": kind}), RECV).events
    assert isinstance(ev, Trade) and ev.is_liquidation is False


def test_snapshot_emits_nothing_and_sets_the_seq_baseline() -> None:
    a = adapter()
    snap = {"feed": "trade_snapshot", "product_id": "PF_XBTUSD",
            "trades": [{**PF, "seq": 7}, {**PF, "seq": 9}, {**PF, "seq": 8}]}  # fmt: skip
    parsed = a.parse(orjson.dumps(snap), RECV)
    assert parsed.control and parsed.events == []
    assert a.parse(orjson.dumps({**PF, "seq": 10}), RECV).gaps == 0
    assert a.parse(orjson.dumps({**PF, "seq": 14}), RECV).gaps == 3
    assert a.parse(orjson.dumps({**PF, "seq": 12}), RECV).gaps == 0  # replay
    assert a.parse(orjson.dumps({**PF, "seq": 15}), RECV).gaps == 0
    assert a.parse(orjson.dumps(DOC), RECV).gaps == 0  # another product: its own baseline
    assert a.parse(orjson.dumps({**DOC, "seq": 85425}), RECV).gaps == 1


def test_control_frames() -> None:
    a = adapter()
    for raw in (b'{"event":"info","version":1}', b'{"feed":"heartbeat","time":1534262350627}',
                b'{"event":"subscribed","feed":"trade","product_ids":["PF_XBTUSD"]}'):  # fmt: skip
        assert a.parse(raw, RECV).control
    assert a.heartbeat() is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "bad_json"),
        (b"[]", "bad_shape"),
        (b'{"event":"error","message":"Invalid product id"}', "subscribe_failed"),
        (b'{"event":"surprise"}', "unknown_event"),
        (b'{"feed":"book"}', "unknown_feed"),
        (b'{"x":1}', "unknown_event"),
        (orjson.dumps({**PF, "side": "up"}), "bad_side"),
        (orjson.dumps({**PF, "type": "weird"}), "bad_type"),
        (orjson.dumps({**PF, "qty": -1}), "bad_number"),
        (orjson.dumps({**PF, "time": 1.5}), "bad_ts"),
        (orjson.dumps({**PF, "product_id": "PF_XBTEUR"}), "unknown_instrument"),
        (orjson.dumps({k: v for k, v in PF.items() if k != "uid"}), "missing_field"),
    ],
)  # fmt: skip
def test_malformed_frames(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        adapter().parse(raw, RECV)
    assert exc.value.reason == reason


@pytest.mark.parametrize(
    ("pid", "expected"),
    [("PF_XBTUSD", ("BTC-USD-PERP", False)), ("PI_ETHUSD", ("ETH-USD-PERP", True)),
     ("FI_XBTUSD_250627", ("BTC-USD-250627", True)), ("PF_XBTUSD_250627", None),
     ("FF_ETHUSD", None), ("PF_XBTEUR", None), ("XBTUSD", None)],
)  # fmt: skip
def test_product_ids(pid: str, expected: tuple[str, bool] | None) -> None:
    inst = instrument_for(pid)
    assert (None if inst is None else (inst.symbol, inst.inverse)) == expected


def test_subscriptions() -> None:
    cfg = ExchangeConfig(symbols=("PF_XBTUSD", "pf_ethusd", "PF_XBTUSD"))
    (plan,) = KrakenAdapter(cfg).connections(cfg, "wss://futures.kraken.com/ws/v1")
    assert [orjson.loads(f) for f in plan.subscribe] == [
        {"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD", "PF_ETHUSD"]},
        {"event": "subscribe", "feed": "heartbeat"},
    ]
    assert KrakenAdapter(ExchangeConfig()).connections(ExchangeConfig(), "ws://x") == []


VALID: list[Any] = [DOC, {**PF, "type": "liquidation"},
                    {"feed": "trade_snapshot", "product_id": "PF_XBTUSD", "trades": [PF]}]  # fmt: skip
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(raw=st.binary(max_size=300), value=json_values)
def test_fuzz_random(raw: bytes, value: Any) -> None:
    check(adapter(), raw)
    check(adapter(), orjson.dumps(value))


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_frames(data: st.DataObject) -> None:
    doc = data.draw(st.sampled_from(VALID))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        action = data.draw(st.sampled_from(["replace", "delete"]))
        doc = _mutate(doc, path, action, data.draw(json_values))
    check(adapter(), orjson.dumps(doc))
