from __future__ import annotations

from pathlib import Path
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
from monitor.core.symbols import Instrument
from producers.gate import GateAdapter
from producers.gate.instruments import parse_contracts

DATA = Path(__file__).resolve().parent / "data"
URL = "https://api.gateio.ws/api/v4/futures/usdt/contracts"
RECV = 1_700_000_000_000_000_000
LIQ: dict[str, Any] = {"price": "95000.5", "size": "-2500", "time": 1700000000123,
                       "contract": "BTC_USDT"}  # fmt: skip
TRD: dict[str, Any] = {"size": "12.5", "id": 7, "create_time": 1700000000,
                       "create_time_ms": 1700000000456, "price": "3300.25",
                       "contract": "ETH_USDT"}  # fmt: skip


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def loaded() -> GateAdapter:
    adapter = GateAdapter(ExchangeConfig(symbols=("BTC_USDT",)), clock=lambda: 1700000000.9)
    assert adapter.load_instruments(URL, data("contracts.json")) == 2
    return adapter


@pytest.fixture
def adapter() -> GateAdapter:
    return loaded()


def update(channel: str, *items: object) -> bytes:
    return orjson.dumps({"channel": channel, "event": "update", "time": 1, "result": list(items)})


def test_documented_liquidation_array_negative_size_is_long(adapter: GateAdapter) -> None:
    parsed = adapter.parse(data("public_liquidates.json"), RECV)
    assert parsed.errors == [] and not parsed.control
    first, second = parsed.events
    assert first == Liquidation(
        exchange="gate",
        symbol="BTC-USDT-PERP",
        venue_symbol="BTC_USDT",
        liquidated_side=Side.LONG,  # size < 0: a sell order closed a long (inferred)
        order_side=OrderSide.SELL,
        price=215.1,
        price_kind=PriceKind.ORDER_LIMIT,
        qty_raw=124.5,  # contracts, decimal string (X-Gate-Size-Decimal)
        qty_unit=QtyUnit.CONTRACTS,
        contract_multiplier=0.0001,
        qty_base=124.5 * 0.0001,
        notional_usd=124.5 * 0.0001 * 215.1,
        coverage=Coverage.AGGREGATED,
        ts_ms=1541486601123,
        received_ns=RECV,
        event_id=liquidation_id("gate", "BTC_USDT", 1541486601123, "long", 124.5, 215.1),
    )
    assert isinstance(second, Liquidation)
    assert (second.qty_raw, second.price, second.ts_ms) == (10.5, 215.2, 1541486601456)


def test_positive_size_is_short_integer_sizes_and_second_times(adapter: GateAdapter) -> None:
    items = [
        {**LIQ, "size": 40},  # integer size (no size-decimal header)
        {**LIQ, "size": -3, "time": 1700000000},  # seconds (older payloads)
        {**LIQ, "time": 1700000000, "time_ms": 1700000000999},  # time_ms wins
    ]
    parsed = adapter.parse(update("futures.public_liquidates", *items), RECV)
    assert parsed.errors == []
    assert [
        (e.liquidated_side, e.order_side, e.qty_raw, e.qty_base, e.ts_ms)
        for e in parsed.events
        if isinstance(e, Liquidation)
    ] == [
        (Side.SHORT, OrderSide.BUY, 40.0, 40 * 0.0001, 1700000000123),
        (Side.LONG, OrderSide.SELL, 3.0, 3 * 0.0001, 1700000000000),
        (Side.LONG, OrderSide.SELL, 2500.0, 2500 * 0.0001, 1700000000999),
    ]
    assert parsed.events[0].notional_usd == 40 * 0.0001 * 95000.5


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({**LIQ, "size": "0"}, "bad_number"),
        ({**LIQ, "size": "-1e999"}, "bad_number"),
        ({**LIQ, "size": True}, "bad_type"),
        ({**LIQ, "price": "-1"}, "bad_number"),
        ({**LIQ, "time": "1700000000123"}, "bad_ts"),
        ({**LIQ, "time": 0}, "bad_ts"),
        ({**LIQ, "contract": "NOPE_USDT"}, "unknown_instrument"),
        ({**LIQ, "contract": 5}, "bad_type"),
        ({k: v for k, v in LIQ.items() if k != "size"}, "missing_field"),
        ([], "bad_shape"),
    ],
)
def test_bad_liquidation_items_are_skipped(adapter: GateAdapter, item: object, reason: str) -> None:
    parsed = adapter.parse(update("futures.public_liquidates", item, LIQ), RECV)
    assert parsed.errors == [reason]
    assert len(parsed.events) == 1


def test_documented_trade_negative_size_is_taker_sell(adapter: GateAdapter) -> None:
    (ev,) = adapter.parse(data("trades.json"), RECV).events
    assert ev == Trade(
        exchange="gate",
        symbol="BTC-USDT-PERP",
        venue_symbol="BTC_USDT",
        taker_side=OrderSide.SELL,
        price=96.4,
        qty_raw=108.0,
        qty_unit=QtyUnit.CONTRACTS,
        contract_multiplier=0.0001,
        qty_base=108 * 0.0001,
        notional_usd=108 * 0.0001 * 96.4,
        is_liquidation=None,
        ts_ms=1545136464123,
        received_ns=RECV,
        trade_id="27753479",
    )


def test_trade_decimal_size_buy_and_seconds(adapter: GateAdapter) -> None:
    no_ms = {k: v for k, v in TRD.items() if k != "create_time_ms"}
    parsed = adapter.parse(update("futures.trades", TRD, no_ms, {**TRD, "id": "7"}), RECV)
    assert parsed.errors == ["bad_type"]
    a, b = parsed.events
    assert isinstance(a, Trade) and isinstance(b, Trade)
    assert (a.taker_side, a.qty_base, a.ts_ms) == (OrderSide.BUY, 12.5 * 0.01, 1700000000456)
    assert b.ts_ms == 1700000000000


def test_unknown_instrument_before_loading() -> None:
    adapter = GateAdapter(ExchangeConfig())
    assert adapter.parse(data("public_liquidates.json"), RECV).errors == ["unknown_instrument"] * 2


def test_acks_and_pongs(adapter: GateAdapter) -> None:
    for name in ("subscribe_ok.json", "pong.json"):
        parsed = adapter.parse(data(name), RECV)
        assert parsed.control and parsed.events == [] and parsed.replies == []
    with pytest.raises(ParseError) as err:
        adapter.parse(data("subscribe_fail.json"), RECV)
    assert err.value.reason == "subscribe_failed" and "NOPE_USDT" in str(err.value)


def test_heartbeat_is_the_futures_ping(adapter: GateAdapter) -> None:
    assert adapter.heartbeat() == '{"time":1700000000,"channel":"futures.ping"}'


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "bad_json"),
        (b"[1]", "bad_shape"),
        (b"{}", "unknown_event"),
        (b'{"channel": "futures.book_ticker", "event": "update", "result": []}', "unknown_channel"),
        (b'{"channel": "futures.trades", "event": "update"}', "missing_field"),
        (b'{"channel": "futures.trades", "event": "update", "result": {}}', "bad_shape"),
        (
            b'{"channel": "futures.trades", "event": "subscribe", "result": null}',
            "subscribe_failed",
        ),
        (
            b'{"channel": "futures.trades", "event": "subscribe", "error": null,'
            b' "result": {"status": "fail"}}',
            "subscribe_failed",
        ),
        (b'{"channel": "futures.trades", "event": ["update"]}', "bad_shape"),
    ],
)
def test_malformed_frames(adapter: GateAdapter, raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(raw, RECV)
    assert err.value.reason == reason


def test_plan_headers_and_requests() -> None:
    cfg = ExchangeConfig(symbols=("BTCUSDT", "eth_usdt", "BTC_USDT"))
    adapter = GateAdapter(cfg, clock=lambda: 1700000000.9)
    (plan,) = adapter.connections(cfg, "wss://fx-ws.gateio.ws/v4/ws/usdt")
    assert (plan.name, plan.url) == ("public", "wss://fx-ws.gateio.ws/v4/ws/usdt")
    assert plan.headers == (("X-Gate-Size-Decimal", "1"),)
    assert [orjson.loads(f) for f in plan.subscribe] == [
        {"time": 1700000000, "channel": "futures.public_liquidates", "event": "subscribe",
         "payload": ["!all"]},
        {"time": 1700000000, "channel": "futures.trades", "event": "subscribe",
         "payload": ["BTC_USDT", "ETH_USDT"]},
        {"time": 1700000000, "channel": "futures.tickers", "event": "subscribe",
         "payload": ["BTC_USDT", "ETH_USDT"]},
    ]  # fmt: skip
    (bare,) = adapter.connections(ExchangeConfig(), "ws://x")
    assert len(bare.subscribe) == 1


def test_instruments() -> None:
    adapter = GateAdapter(ExchangeConfig())
    assert adapter.instrument_urls("https://api.gateio.ws/") == [URL]
    assert parse_contracts(data("contracts.json")) == [
        Instrument("BTC_USDT", "BTC-USDT-PERP", "BTC", "USDT", 0.0001),
        Instrument("ETH_USDT", "ETH-USDT-PERP", "ETH", "USDT", 0.01),
    ]
    for body in (b"{}", b"[]", b"nope", b'[{"name": "BTC_USDT", "quanto_multiplier": "x"}]'):
        with pytest.raises(ParseError):
            parse_contracts(body)
