from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import (
    Coverage,
    Liquidation,
    OrderSide,
    PriceKind,
    QtyUnit,
    Side,
    Trade,
    liquidation_id,
)
from producers.htx import HtxAdapter
from tests.producers.htx.conftest import CONTRACT_INFO_URL, data, gz

RECV = 1_639_122_193_300_000_000

LIQ: dict[str, Any] = {
    "symbol": "BTC", "contract_code": "BTC-USDT", "direction": "sell", "offset": "close",
    "volume": 250, "price": 64000.5, "created_at": 1639122193172, "amount": 0.25,
    "trade_turnover": 16000.125, "contract_type": "swap", "pair": "BTC-USDT",
    "business_type": "swap",
}  # fmt: skip
TRD: dict[str, Any] = {"amount": 5, "ts": 1603708208335, "id": 1316022650001, "price": 13000.0,
                       "direction": "sell", "quantity": 0.005, "trade_turnover": 65.0}  # fmt: skip


def liq_frame(*items: object, topic: str = "public.BTC-USDT.liquidation_orders") -> bytes:
    return gz({"op": "notify", "topic": topic, "ts": 1, "data": list(items)})


def trade_frame(*items: object, ch: str = "market.BTC-USDT.trade.detail") -> bytes:
    return gz({"ch": ch, "ts": 1, "tick": {"id": 1, "ts": 1, "data": list(items)}})


def test_documented_liquidation_sell_close_is_a_long(adapter: HtxAdapter) -> None:
    parsed = adapter.parse(gz(data("liquidation_orders.json")), RECV)
    assert parsed.errors == [] and not parsed.control and parsed.replies == []
    assert parsed.events == [
        Liquidation(
            exchange="htx",
            symbol="O3-USDT-PERP",
            venue_symbol="O3-USDT",
            liquidated_side=Side.LONG,  # the forced order SOLD to close: a long
            order_side=OrderSide.SELL,
            price=0.7858,
            price_kind=PriceKind.BANKRUPTCY,
            qty_raw=432.0,  # amount: base coin
            qty_unit=QtyUnit.BASE,
            contract_multiplier=1.0,
            qty_base=432.0,
            notional_usd=339.4656,  # trade_turnover, USDT at par
            coverage=Coverage.PARTIAL,
            ts_ms=1639122193172,
            received_ns=RECV,
            event_id=liquidation_id("htx", "O3-USDT", 1639122193172, "long", 432.0, 0.7858),
        )
    ]


def test_liquidation_amount_is_coin_volume_is_contracts(adapter: HtxAdapter) -> None:
    """BTC-USDT: 250 contracts x 0.001 = 0.25 BTC; the notional is trade_turnover."""
    parsed = adapter.parse(liq_frame(LIQ, {**LIQ, "direction": "buy"}), RECV)
    assert parsed.errors == []
    long, short = parsed.events
    assert isinstance(long, Liquidation) and isinstance(short, Liquidation)
    assert (long.liquidated_side, long.order_side) == (Side.LONG, OrderSide.SELL)
    assert (short.liquidated_side, short.order_side) == (Side.SHORT, OrderSide.BUY)
    assert (long.symbol, long.qty_base, long.notional_usd) == ("BTC-USDT-PERP", 0.25, 16000.125)
    assert long.event_id != short.event_id


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({**LIQ, "amount": 0.3}, "qty_mismatch"),  # 250 x 0.001 != 0.3
        ({**LIQ, "volume": 25}, "qty_mismatch"),
        ({**LIQ, "offset": "open"}, "bad_offset"),
        ({**LIQ, "direction": "Sell"}, "bad_side"),
        ({**LIQ, "price": "64000.5x"}, "bad_number"),
        ({**LIQ, "trade_turnover": 0}, "bad_number"),
        ({**LIQ, "amount": True}, "bad_type"),
        ({**LIQ, "created_at": "1639122193172"}, "bad_ts"),
        ({**LIQ, "contract_code": "ETH-USDT"}, "symbol_mismatch"),
        ({k: v for k, v in LIQ.items() if k != "volume"}, "missing_field"),
        ("junk", "bad_shape"),
    ],
)
def test_bad_liquidation_items_are_skipped(adapter: HtxAdapter, item: object, reason: str) -> None:
    parsed = adapter.parse(liq_frame(item, LIQ), RECV)
    assert parsed.errors == [reason]
    assert len(parsed.events) == 1


def test_documented_trade_amount_is_contracts_quantity_is_coin(adapter: HtxAdapter) -> None:
    parsed = adapter.parse(gz(data("trade_detail.json")), RECV)
    assert parsed.errors == []
    assert parsed.events == [
        Trade(
            exchange="htx",
            symbol="BTC-USDT-PERP",
            venue_symbol="BTC-USDT",
            taker_side=OrderSide.BUY,
            price=13073.3,
            qty_raw=2.0,  # amount: 2 contracts
            qty_unit=QtyUnit.CONTRACTS,
            contract_multiplier=0.001,
            qty_base=0.002,  # = quantity
            notional_usd=0.002 * 13073.3,  # not the doc example's inconsistent trade_turnover
            is_liquidation=None,
            ts_ms=1603708208335,
            received_ns=RECV,
            trade_id="1316022650000",
        )
    ]


def test_trade_names_swapped_vs_liquidations(adapter: HtxAdapter) -> None:
    """A parser that read ``amount`` as coin here would report 5 BTC instead of 0.005."""
    (ev,) = adapter.parse(trade_frame(TRD), RECV).events
    assert isinstance(ev, Trade)
    assert (ev.taker_side, ev.qty_raw, ev.qty_base) == (OrderSide.SELL, 5.0, 0.005)
    assert ev.notional_usd == 0.005 * 13000.0


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({**TRD, "quantity": 5}, "qty_mismatch"),
        ({**TRD, "quantity": "0.005"}, "bad_shape"),
        ({**TRD, "amount": 0}, "bad_number"),
        ({**TRD, "price": None}, "bad_type"),
        ({**TRD, "direction": "BUY"}, "bad_side"),
        ({**TRD, "ts": 1.5}, "bad_ts"),
        ({**TRD, "id": "7"}, "bad_type"),
        ({k: v for k, v in TRD.items() if k != "quantity"}, "missing_field"),
    ],
)
def test_bad_trade_items_are_skipped(adapter: HtxAdapter, item: object, reason: str) -> None:
    parsed = adapter.parse(trade_frame(item, TRD), RECV)
    assert parsed.errors == [reason]
    assert len(parsed.events) == 1


def test_unknown_instrument_until_loaded_then_parsed() -> None:
    adapter = HtxAdapter(ExchangeConfig())
    assert adapter.parse(liq_frame(LIQ), RECV).errors == ["unknown_instrument"]
    assert adapter.parse(trade_frame(TRD), RECV).errors == ["unknown_instrument"]
    adapter.load_instruments(CONTRACT_INFO_URL, data("swap_contract_info.json"))
    assert len(adapter.parse(liq_frame(LIQ), RECV).events) == 1
    # a contract absent from the list (dated future, malformed item) stays unknown
    parsed = adapter.parse(trade_frame(TRD, ch="market.XRP-USDT.trade.detail"), RECV)
    assert parsed.errors == ["unknown_instrument"]


def test_reloaded_contract_size_replaces_the_cached_one(adapter: HtxAdapter) -> None:
    assert len(adapter.parse(trade_frame(TRD), RECV).events) == 1  # cached with size 0.001
    body = orjson.dumps({"status": "ok", "data": [{"symbol": "BTC", "contract_code": "BTC-USDT",
                         "contract_size": 0.01, "trade_partition": "USDT"}]})  # fmt: skip
    assert adapter.load_instruments(CONTRACT_INFO_URL, body) == 1
    (ev,) = adapter.parse(trade_frame({**TRD, "quantity": 0.05}), RECV).events
    assert isinstance(ev, Trade) and ev.qty_base == 0.05 and ev.contract_multiplier == 0.01


def test_market_ping_gets_the_exact_pong(adapter: HtxAdapter) -> None:
    parsed = adapter.parse(gz(data("market_ping.json")), RECV)
    assert parsed.control and parsed.events == []
    assert parsed.replies == ['{"pong":1492420473027}']


def test_notification_ping_gets_the_exact_pong(adapter: HtxAdapter) -> None:
    parsed = adapter.parse(gz(data("notification_ping.json")), RECV)
    assert parsed.control
    assert parsed.replies == ['{"op":"pong","ts":"1492420473058"}']
    assert adapter.heartbeat() is None  # the server pings, the client only answers


@pytest.mark.parametrize("name", ["market_subbed.json", "notification_subbed.json"])
def test_sub_acks_are_control(adapter: HtxAdapter, name: str) -> None:
    parsed = adapter.parse(gz(data(name)), RECV)
    assert parsed.control and parsed.events == [] and parsed.replies == []


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("market_sub_error.json", "invalid topic market.NOPE-USDT.trade.detail"),
        ("notification_sub_error.json", "2014"),
    ],
)
def test_sub_errors_raise_subscribe_failed(adapter: HtxAdapter, name: str, detail: str) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(gz(data(name)), RECV)
    assert err.value.reason == "subscribe_failed"
    assert detail in str(err.value)


def test_gzip_is_required_and_checked(adapter: HtxAdapter) -> None:
    plain = data("market_ping.json")
    cases: list[tuple[bytes | str, str]] = [
        (plain, "bad_gzip"),  # uncompressed JSON: not what HTX sends
        (plain.decode(), "bad_gzip"),  # a text frame
        (gz(plain)[:-6], "bad_gzip"),  # truncated stream
        (b"\x1f\x8b\x08\x00garbage", "bad_gzip"),
        (b"", "bad_gzip"),
        (gz(b"{not json"), "bad_json"),
        (gzip.compress(b" " * (9 * 1024 * 1024), mtime=0), "frame_too_large"),
    ]
    for raw, reason in cases:
        with pytest.raises(ParseError) as err:
            adapter.parse(raw, RECV)
        assert err.value.reason == reason, raw[:20]


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ([], "bad_shape"),
        ({}, "unknown_event"),
        ({"ch": "market.BTC-USDT.depth.step0", "tick": {"data": []}}, "unknown_topic"),
        ({"ch": "market.BTC-USDT.trade.detailX", "tick": {"data": []}}, "unknown_topic"),
        ({"ch": "market..trade.detail", "tick": {"data": []}}, "unknown_topic"),
        ({"ch": 5, "tick": {"data": []}}, "bad_type"),
        ({"ch": "market.BTC-USDT.trade.detail"}, "missing_field"),
        ({"ch": "market.BTC-USDT.trade.detail", "tick": {"data": {}}}, "bad_shape"),
        ({"ch": "market.BTC-USDT.trade.detail", "tick": []}, "bad_shape"),
        ({"op": "notify", "topic": "public.*.liquidation_orders", "data": []}, "unknown_topic"),
        ({"op": "notify", "topic": "orders.BTC-USDT", "data": []}, "unknown_topic"),
        ({"op": "notify", "topic": "public.BTC-USDT.liquidation_orders"}, "missing_field"),
        ({"op": "error", "err-code": 2002, "err-msg": "x"}, "venue_error"),
        ({"op": "close"}, "venue_error"),
        ({"op": "auth"}, "unknown_op"),
        ({"op": "sub", "err-code": "0"}, "subscribe_failed"),
        ({"ping": 1.5}, "bad_type"),
        ({"op": "ping"}, "missing_field"),
        ({"status": "error"}, "subscribe_failed"),
    ],
)
def test_malformed_frames(adapter: HtxAdapter, doc: object, reason: str) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(gz(doc), RECV)
    assert err.value.reason == reason
