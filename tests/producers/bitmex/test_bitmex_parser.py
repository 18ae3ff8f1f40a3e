from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import (
    Coverage,
    Liquidation,
    MarketContext,
    OrderSide,
    PriceKind,
    QtyUnit,
    Side,
    Trade,
    liquidation_id,
)
from producers.base import Parsed
from producers.bitmex import BitmexAdapter
from producers.bitmex.parser import MAX_OPEN_ORDERS, iso_ms
from tests.producers.test_fuzz_parsers import _mutate, _paths, check, json_values

DATA = Path(__file__).resolve().parent / "data"
RECV = 1_526_732_726_700_000_000
OID = "98ae1dad-6a3b-51c4-14bd-e076919e9e30"


def frame(name: str) -> bytes:
    return (DATA / name).read_bytes()


def loaded(cfg: ExchangeConfig | None = None) -> BitmexAdapter:
    a = BitmexAdapter(cfg or ExchangeConfig())
    assert a.load_instruments("u", frame("instruments.json")) == 3
    return a


def liq(action: str, *rows: dict[str, Any]) -> bytes:
    return orjson.dumps({"table": "liquidation", "action": action, "data": list(rows)})


def test_documented_lifecycle_counts_the_order_once() -> None:
    a = loaded()
    parsed = a.parse(frame("liquidation_insert.json"), RECV)
    assert parsed.errors == [] and not parsed.control
    assert parsed.events == [
        Liquidation(
            exchange="bitmex", symbol="BTC-USD-PERP", venue_symbol="XBTUSD",
            liquidated_side=Side.SHORT,  # a Buy forced order closes a short
            order_side=OrderSide.BUY, price=13854.5, price_kind=PriceKind.ORDER_LIMIT,
            qty_raw=314930.0, qty_unit=QtyUnit.CONTRACTS, contract_multiplier=1.0,
            qty_base=314930 / 13854.5, notional_usd=314930.0,  # inverse: 1 USD per contract
            coverage=Coverage.ORDER_LIFECYCLE, ts_ms=RECV // 1_000_000, received_ns=RECV,
            event_id=liquidation_id("bitmex", "XBTUSD", 0, f"order|{OID}", 0.0, 0.0),
        )
    ]  # fmt: skip
    assert a.open_orders == {OID: 314930.0}
    upd = a.parse(frame("liquidation_update.json"), RECV)
    assert upd.events == [] and upd.errors == [] and a.open_orders == {OID: 305515.0}
    assert a.parse(frame("liquidation_insert.json"), RECV).errors == ["duplicate_order"]
    dele = a.parse(frame("liquidation_delete.json"), RECV)
    assert dele.events == [] and a.open_orders == {}


def test_linear_usdt_liquidation_uses_base_per_contract() -> None:
    a = loaded()
    row = {
        "orderID": "o-1",
        "symbol": "XBTUSDT",
        "side": "Sell",
        "price": 60000.5,
        "leavesQty": 250000,
    }
    (ev,) = a.parse(liq("insert", row), RECV).events
    assert isinstance(ev, Liquidation)
    assert (ev.symbol, ev.liquidated_side, ev.contract_multiplier) == (
        "BTC-USDT-PERP",
        Side.LONG,
        1e-6,
    )
    assert ev.qty_base == 250000 * 1e-6 and ev.notional_usd == 250000 * 1e-6 * 60000.5


def test_partial_replaces_state_and_emits_nothing() -> None:
    """A partial is the book on subscribing (orders from before it): never new liquidations, but
    its orders are known afterwards, so a re-sent insert of one is not counted either."""
    a = loaded()
    row = {"orderID": "a", "symbol": "XBTUSD", "side": "Sell", "price": 100.0, "leavesQty": 500}
    assert len(a.parse(liq("insert", row, {**row, "orderID": "gone"}), RECV).events) == 2
    parsed = a.parse(liq("partial", {**row, "leavesQty": 300}, {**row, "orderID": "new"}), RECV)
    assert parsed.events == [] and parsed.control
    assert parsed.replayed == ["venue_snapshot", "venue_snapshot"]
    assert a.open_orders == {"a": 300.0, "new": 500.0}
    assert a.parse(liq("insert", {**row, "orderID": "new"}), RECV).errors == ["duplicate_order"]


def test_open_orders_are_bounded() -> None:
    a = loaded()
    rows = [{"orderID": f"o{i}", "symbol": "XBTUSD", "side": "Buy", "price": 1.0, "leavesQty": 1}
            for i in range(MAX_OPEN_ORDERS + 5)]  # fmt: skip
    assert len(a.parse(liq("insert", *rows), RECV).events) == MAX_OPEN_ORDERS + 5
    state = a.open_orders
    assert len(state) == MAX_OPEN_ORDERS and "o4" not in state and "o5" in state


def test_documented_trade_uses_home_and_foreign_notional() -> None:
    (ev,) = loaded().parse(frame("trade.json"), RECV).events
    assert ev == Trade("bitmex", "BTC-USD-PERP", "XBTUSD", OrderSide.BUY, 8335.0, 40.0,
                       QtyUnit.CONTRACTS, 1.0, 0.0047992, 40.0, None, 1526732726632, RECV,
                       "5f4ecd49-f87f-41c0-06e3-4a9405b9cdde")  # fmt: skip


def test_everything_waits_for_instruments() -> None:
    a = BitmexAdapter(ExchangeConfig())
    assert a.parse(frame("trade.json"), RECV).errors == ["unknown_instrument"]
    assert a.parse(frame("liquidation_insert.json"), RECV).errors == ["unknown_instrument"]
    assert a.open_orders == {}


def test_control_frames() -> None:
    a = loaded()
    assert a.parse(b"pong", 1).control and a.parse("pong", 1).control
    assert a.parse(b'{"info":"Welcome to the BitMEX Realtime API.","version":"2.0"}', 1).control
    assert a.parse(b'{"success":true,"subscribe":"liquidation","request":{}}', 1).control
    assert a.parse(b'{"table":"trade","action":"partial","keys":[],"data":[{"x":1}]}', 1).control
    assert a.heartbeat() == "ping"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "bad_json"),
        (b"[]", "bad_shape"),
        (b'{"status":400,"error":"Unknown table: foo","meta":{},"request":{}}', "request_failed"),
        (b'{"success":false,"subscribe":"x"}', "subscribe_failed"),
        (b'{"table":"orderBookL2","action":"insert","data":[]}', "unknown_table"),
        (b'{"table":"trade","action":"update","data":[]}', "unknown_action"),
        (b'{"table":"liquidation","action":"x","data":[]}', "unknown_action"),
        (b'{"table":"trade","data":[]}', "missing_field"),
        (b'{"table":"trade","action":"insert","data":{}}', "bad_shape"),
        (b'{"hello":1}', "unknown_event"),
    ],
)
def test_malformed_frames(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as exc:
        loaded().parse(raw, RECV)
    assert exc.value.reason == reason


def test_bad_items_are_skipped() -> None:
    good = orjson.loads(frame("trade.json"))["data"][0]
    bad = [
        {**good, "side": "Up"},
        {**good, "homeNotional": 0},
        {**good, "timestamp": "yesterday"},
        {**good, "timestamp": "2018-05-19T12:25:26"},
        {**good, "trdMatchID": 5},
        {"symbol": 1},
        7,
    ]
    parsed = loaded().parse(
        orjson.dumps({"table": "trade", "action": "insert", "data": [*bad, good]}), RECV
    )
    assert parsed.errors == ["bad_side", "bad_number", "bad_ts", "bad_ts", "bad_type",
                             "missing_field", "bad_shape"]  # fmt: skip
    assert len(parsed.events) == 1
    zero = {"orderID": "z", "symbol": "XBTUSD", "side": "Buy", "price": 1.0, "leavesQty": 0}
    assert loaded().parse(liq("insert", zero), RECV).errors == ["no_qty"]


def test_instrument_metadata() -> None:
    a = loaded()
    with pytest.raises(ParseError):
        a.load_instruments("u", b'{"error":"x"}')
    with pytest.raises(ParseError):
        a.load_instruments("u", b"[]")
    assert a.instrument_urls("") == ["https://www.bitmex.com/api/v1/instrument/active"]
    assert a.instrument_urls("http://127.0.0.1:9/") == [
        "http://127.0.0.1:9/api/v1/instrument/active"
    ]
    fut = {"orderID": "f", "symbol": "XBTM25", "side": "Buy", "price": 100.0, "leavesQty": 100}
    assert a.parse(liq("insert", fut), RECV).events[0].symbol == "BTC-USD-250627"
    quanto = {**fut, "orderID": "q", "symbol": "ETHUSD"}
    assert a.parse(liq("insert", quanto), RECV).errors == ["unknown_instrument"]


def test_iso_ms() -> None:
    assert iso_ms("2018-05-19T12:25:26.632Z") == 1526732726632
    assert iso_ms("1970-01-01T00:00:00.001Z") == 1


# ---- market context: the instrument table -------------------------------------------------------


def inst(action: str, *rows: Any) -> bytes:
    return orjson.dumps({"table": "instrument", "action": action, "data": list(rows)})


def test_instrument_partial_of_an_inverse_perpetual() -> None:
    parsed = loaded().parse(frame("instrument_partial.json"), RECV)
    assert parsed.errors == [] and not parsed.control
    assert parsed.events == [
        MarketContext(
            exchange="bitmex",
            symbol="BTC-USD-PERP",
            venue_symbol="XBTUSD",
            mark_price=101246.88,
            index_price=101242.58,  # indicativeSettlePrice: the .BXBT index
            funding_rate=0.0001,
            next_funding_ms=1737979200000,  # fundingTimestamp 2025-01-27T12:00:00.000Z
            open_interest_base=None,  # inverse: contracts are USD, no base without a price
            open_interest_usd=395123400.0,  # 395123400 contracts x 1 USD
            ts_ms=1737970200000,  # timestamp 2025-01-27T09:30:00.000Z
            received_ns=RECV,
        )
    ]


def test_instrument_update_of_a_linear_perpetual() -> None:
    (ctx,) = loaded().parse(frame("instrument_update.json"), RECV).events
    assert ctx == MarketContext(
        exchange="bitmex", symbol="BTC-USDT-PERP", venue_symbol="XBTUSDT", mark_price=101198.4,
        index_price=None, funding_rate=None, next_funding_ms=None,
        open_interest_base=412500000 * 1e-6,  # contracts x 0.000001 XBT (= 412.5)
        open_interest_usd=None,  # the consumer derives it: base x mark
        ts_ms=1737970200500, received_ns=RECV,
    )  # fmt: skip


def test_instrument_deltas_nulls_and_timestamps() -> None:
    a = loaded()
    rows = [
        {"symbol": "XBTUSD", "indicativeSettlePrice": 101250.1},  # no timestamp: receipt time
        {"symbol": "XBTUSD", "lastPrice": 101251, "timestamp": "2025-01-27T09:30:01.000Z"},
        {"symbol": "XBTM25", "fundingRate": None, "fundingTimestamp": None, "markPrice": 1e5,
         "openInterest": 0, "timestamp": None},  # a dated future: no funding
        {"symbol": "XBTUSD", "fundingRate": -0.000375, "timestamp": "2025-01-27T12:00:00Z"},
    ]  # fmt: skip
    parsed = a.parse(inst("update", *rows), RECV)
    assert parsed.errors == [] and not parsed.control
    got = [(e.symbol, e.mark_price, e.index_price, e.funding_rate, e.open_interest_usd, e.ts_ms)
           for e in parsed.events if isinstance(e, MarketContext)]  # fmt: skip
    assert got == [
        ("BTC-USD-PERP", None, 101250.1, None, None, RECV // 1_000_000),
        ("BTC-USD-250627", 1e5, None, None, 0.0, RECV // 1_000_000),
        ("BTC-USD-PERP", None, None, -0.000375, None, 1737979200000),
    ]
    (inserted,) = a.parse(inst("insert", rows[0]), RECV).events
    assert isinstance(inserted, MarketContext) and inserted.index_price == 101250.1
    assert a.parse(inst("update", rows[1]), RECV) == Parsed()  # last price only: no event
    assert a.parse(inst("delete", {"symbol": "XBTUSD"}), RECV).control
    assert a.open_orders == {}  # the liquidation lifecycle is untouched


def test_bad_instrument_rows_are_skipped() -> None:
    good = {"symbol": "XBTUSD", "markPrice": 101246.88, "timestamp": "2025-01-27T09:30:00.000Z"}
    rows = [
        {**good, "markPrice": 0},
        {**good, "markPrice": "abc"},
        {**good, "indicativeSettlePrice": -1.0},
        {**good, "fundingRate": True},
        {**good, "fundingTimestamp": "2025-01-27T12:00:00"},  # no zone
        {**good, "fundingTimestamp": 1737979200000},
        {**good, "openInterest": -5},
        {**good, "timestamp": "yesterday"},
        {**good, "symbol": "ETHUSD"},  # the quanto: refused by the metadata
        {**good, "symbol": 7},
        {"markPrice": 1.0},
        "x",
        good,
    ]
    parsed = loaded().parse(inst("partial", *rows), RECV)
    assert parsed.errors == ["bad_number", "bad_number", "bad_number", "bad_type", "bad_ts",
                             "bad_ts", "bad_number", "bad_ts", "unknown_instrument", "bad_type",
                             "missing_field", "bad_shape"]  # fmt: skip
    assert len(parsed.events) == 1
    assert BitmexAdapter(ExchangeConfig()).parse(inst("partial", good), RECV).errors == [
        "unknown_instrument"  # before the metadata is loaded
    ]
    assert loaded().parse(inst("update", {**good, "timestamp": None}), 1).errors == ["bad_ts"]
    with pytest.raises(ParseError) as exc:
        loaded().parse(inst("upsert", good), RECV)
    assert exc.value.reason == "unknown_action"


VALID = [
    orjson.loads(p.read_bytes())
    for p in sorted(DATA.glob("*.json"))
    if p.name != "instruments.json"
]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(raw=st.binary(max_size=300), value=json_values)
def test_fuzz_random(raw: bytes, value: Any) -> None:
    check(loaded(), raw)
    check(loaded(), orjson.dumps(value))


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_frames(data: st.DataObject) -> None:
    doc = data.draw(st.sampled_from(VALID))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        action = data.draw(st.sampled_from(["replace", "delete"]))
        doc = _mutate(doc, path, action, data.draw(json_values))
    a = loaded()
    for raw in (frame("liquidation_insert.json"), orjson.dumps(doc)):
        with contextlib.suppress(ParseError):
            a.parse(raw, RECV)
    check(a, orjson.dumps(doc))


@FUZZ
@given(body=json_values)
def test_fuzz_instrument_bodies(body: Any) -> None:
    a = BitmexAdapter(ExchangeConfig())
    with contextlib.suppress(ParseError):
        a.load_instruments("u", orjson.dumps(body))
