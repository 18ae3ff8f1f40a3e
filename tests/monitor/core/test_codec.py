from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.codec import decode_batch, encode_batch
from monitor.core.errors import CodecError
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


def _liq(i: int, side: Side = Side.LONG, qty: float = 0.014, price: float = 9910.0) -> Liquidation:
    return Liquidation(
        exchange="binance", symbol="BTC-USDT-PERP", venue_symbol="BTCUSDT",
        liquidated_side=side, order_side=OrderSide.SELL if side is Side.LONG else OrderSide.BUY,
        price=price, price_kind=PriceKind.AVG_FILL, qty_raw=qty, qty_unit=QtyUnit.BASE,
        contract_multiplier=1.0, qty_base=qty, notional_usd=qty * price,
        coverage=Coverage.SAMPLED_LATEST_1S, ts_ms=1568014460893 + i,
        received_ns=1568014460950_000_000 + i,
        event_id=liquidation_id("binance", "BTCUSDT", 1568014460893 + i, "long", qty, price),
    )  # fmt: skip


def _trade(i: int) -> Trade:
    return Trade(
        exchange="binance", symbol="BTC-USDT-PERP", venue_symbol="BTCUSDT",
        taker_side=OrderSide.BUY if i % 2 else OrderSide.SELL, price=95000.1 + i,
        qty_raw=0.001 * (i + 1), qty_unit=QtyUnit.BASE, contract_multiplier=1.0,
        qty_base=0.001 * (i + 1), notional_usd=0.001 * (i + 1) * (95000.1 + i),
        is_liquidation=None, ts_ms=1700000000000 + i, received_ns=1700000000000_000_000 + i,
        trade_id=str(5933014 + i),
    )  # fmt: skip


def test_round_trip_mixed_batch_keeps_every_field_and_order() -> None:
    events = [_liq(0), _trade(0), _trade(1), _liq(1, Side.SHORT), _trade(2)]
    batch = decode_batch(encode_batch(events))
    assert (batch.exchange, batch.symbol, batch.venue_symbol) == (
        "binance",
        "BTC-USDT-PERP",
        "BTCUSDT",
    )
    assert batch.n_liquidations == 2 and batch.n_trades == 3
    # events() yields liquidations first, then trades, each in their original order
    assert batch.events() == [events[0], events[3], events[1], events[2], events[4]]


def test_decimal_text_survives_exactly() -> None:
    raw = orjson.loads(encode_batch([_liq(0, qty=0.014, price=9910.1)]))
    assert raw["liq"]["qty_raw"] == [0.014]
    assert b'"qty_raw":[0.014]' in encode_batch([_liq(0, qty=0.014, price=9910.1)])
    assert b'"price":[9910.1]' in encode_batch([_liq(0, qty=0.014, price=9910.1)])


@given(
    qty=st.floats(min_value=1e-8, max_value=1e9, allow_nan=False),
    price=st.floats(min_value=1e-8, max_value=1e7, allow_nan=False),
)
def test_round_trip_any_finite_numbers(qty: float, price: float) -> None:
    ev = _liq(3, qty=qty, price=price)
    assert decode_batch(encode_batch([ev])).events() == [ev]


def test_event_id_is_deterministic_and_distinguishes_fields() -> None:
    a = liquidation_id("bybit", "BTCUSDT", 1, "long", 0.5, 100.0)
    assert a == liquidation_id("bybit", "BTCUSDT", 1, "long", 0.5, 100.0)
    assert a != liquidation_id("bybit", "BTCUSDT", 1, "short", 0.5, 100.0)
    assert a != liquidation_id("bybit", "BTCUSDT", 1, "long", 0.5, 100.1)
    assert len(a) == 20


def test_encode_refuses_mixed_symbols_and_empty() -> None:
    other = _trade(0)
    other = Trade(**{**{f: getattr(other, f) for f in other.__slots__}, "symbol": "ETH-USDT-PERP"})
    with pytest.raises(CodecError, match="mixes"):
        encode_batch([_liq(0), other])
    with pytest.raises(CodecError, match="empty"):
        encode_batch([])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1,2]", "not a JSON object"),
        (b'{"v":2,"exchange":"x","symbol":"s","venue_symbol":"v"}', "unsupported schema"),
        (b'{"v":1,"exchange":"x","symbol":"s"}', "missing header"),
        (b'{"v":1,"exchange":1,"symbol":"s","venue_symbol":"v"}', "must be strings"),
        (b'{"v":1,"exchange":"x","symbol":"s","venue_symbol":"v","liq":[]}', "not an object"),
        (b'{"v":1,"exchange":"x","symbol":"s","venue_symbol":"v","trd":{"id":[1]}}', "missing"),
    ],
)
def test_decode_rejects_invalid_records(value: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        decode_batch(value)


def test_decode_rejects_ragged_columns() -> None:
    doc = orjson.loads(encode_batch([_trade(0), _trade(1)]))
    doc["trd"]["price"].pop()
    with pytest.raises(CodecError, match="has 1 rows, expected 2"):
        decode_batch(orjson.dumps(doc))


def test_market_context_round_trip_with_missing_fields() -> None:
    a = MarketContext("binance", "BTC-USDT-PERP", "BTCUSDT", 95000.5, 94990.1, 0.0001,
                      1700003600000, 52000.123, 4.94e9, 1700000000000, 1700000000001000000)  # fmt: skip
    b = MarketContext("binance", "BTC-USDT-PERP", "BTCUSDT", None, None, None, None, 52001.0,
                      None, 1700000001000, 1700000001001000000)  # fmt: skip
    batch = decode_batch(encode_batch([_trade(0), a, b]))
    assert (batch.n_trades, batch.n_contexts, batch.n_liquidations) == (1, 2, 0)
    assert batch.events()[1:] == [a, b]
