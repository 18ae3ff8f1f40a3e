"""Records built column by column (``Columns``): the same v1 bytes as before, ids made at encode."""

from __future__ import annotations

import pytest

from monitor.core.codec import CTX, LIQ, TRD, Columns, decode_batch, encode_batch
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
    ranked_id,
)

LIQ_EVENT = Liquidation(
    "bybit", "BTC-USDT-PERP", "BTCUSDT", Side.LONG, None, 64000.5, PriceKind.BANKRUPTCY, 0.5,
    QtyUnit.BASE, 1.0, 0.5, 32000.25, Coverage.AGGREGATED, 1760000000000, 7,
    liquidation_id("bybit", "BTCUSDT", 1760000000000, "long", 0.5, 64000.5),
)  # fmt: skip
TRADE_EVENT = Trade("bybit", "BTC-USDT-PERP", "BTCUSDT", OrderSide.SELL, 64001.0, 0.25,
                    QtyUnit.BASE, 1.0, 0.25, 16000.25, None, 1760000000001, 8, "t-1")  # fmt: skip
CONTEXT_EVENT = MarketContext("bybit", "BTC-USDT-PERP", "BTCUSDT", 64002.5, None, 0.0001,
                              1760003600000, 52000.5, None, 1760000000002, 9)  # fmt: skip
# The record the event-by-event encoder wrote before records were built as columns (v1).
BEFORE = (
    b'{"v":1,"exchange":"bybit","symbol":"BTC-USDT-PERP","venue_symbol":"BTCUSDT","liq":{"id":'
    b'["a1ddf17830c9702a82d5"],"side":["long"],"order_side":[null],"price":[64000.5],'
    b'"price_kind":["bankruptcy"],"qty_raw":[0.5],"qty_unit":["base"],"mult":[1.0],"qty_base":'
    b'[0.5],"notional_usd":[32000.25],"coverage":["aggregated"],"ts_ms":[1760000000000],'
    b'"recv_ns":[7]},"trd":{"id":["t-1"],"taker":["sell"],"price":[64001.0],"qty_raw":[0.25],'
    b'"qty_unit":["base"],"mult":[1.0],"qty_base":[0.25],"notional_usd":[16000.25],"is_liq":'
    b'[null],"ts_ms":[1760000000001],"recv_ns":[8]},"ctx":{"mark":[64002.5],"index":[null],'
    b'"funding":[0.0001],"next_funding_ms":[1760003600000],"oi_base":[52000.5],"oi_usd":[null],'
    b'"ts_ms":[1760000000002],"recv_ns":[9]}}'
)


def test_the_wire_format_is_unchanged() -> None:
    assert encode_batch([TRADE_EVENT, LIQ_EVENT, CONTEXT_EVENT]) == BEFORE


def test_rows_appended_as_columns_encode_to_the_same_record() -> None:
    cols = Columns("bybit", "BTC-USDT-PERP", "BTCUSDT")
    for values, kind in (
        (("t-1", "sell", 64001.0, 0.25, "base", 1.0, 0.25, 16000.25, None, 1760000000001, 8), TRD),
        ((("BTCUSDT", 1760000000000, "long", 0.5, 64000.5), "long", None, 64000.5, "bankruptcy",
          0.5, "base", 1.0, 0.5, 32000.25, "aggregated", 1760000000000, 7), LIQ),  # id parts
        ((64002.5, None, 0.0001, 1760003600000, 52000.5, None, 1760000000002, 9), CTX),
    ):  # fmt: skip
        for col, v in zip(cols.group(kind), values, strict=True):
            col.append(v)
        cols.n += 1
    assert cols.encode() == BEFORE
    assert [cols.event(k, 0) for k in (LIQ, TRD, CTX)] == [LIQ_EVENT, TRADE_EVENT, CONTEXT_EVENT]


def test_ranked_id_parts_become_ranked_ids() -> None:
    cols = Columns("okx", "BTC-USDT-PERP", "BTC-USDT-SWAP")
    parts = ("BTC-USDT-SWAP", 5, "short", 3.0, 100.0)
    for key in (parts, (*parts, 1), "an-id-of-its-own"):
        row = (key, "short", "buy", 100.0, "bankruptcy", 3.0, "contracts", 0.01, 0.03, 3.0,
               "sampled_per_contract_1s", 5, 1)  # fmt: skip
        for col, v in zip(cols.group(LIQ), row, strict=True):
            col.append(v)
        cols.n += 1
    base = liquidation_id("okx", "BTC-USDT-SWAP", 5, "short", 3.0, 100.0)
    ids = decode_batch(cols.encode()).liq["id"]
    assert ids == [base, ranked_id(base, 1), "an-id-of-its-own"]


def test_split_keeps_every_row_in_order_in_proportion() -> None:
    cols = Columns("bybit", "BTC-USDT-PERP", "BTCUSDT")
    for i in range(8):
        cols.append_event(Trade(**{**_fields(TRADE_EVENT), "trade_id": f"t{i}"}))
    for i in range(4):
        cols.append_event(Liquidation(**{**_fields(LIQ_EVENT), "event_id": f"l{i}"}))
    first, rest = cols.split(6)
    assert (first.counts(), rest.counts()) == ((2, 4, 0), (2, 4, 0))
    assert first.n + rest.n == 12
    assert [e.trade_id for e in decode_batch(first.encode()).events() if isinstance(e, Trade)] + [
        e.trade_id for e in decode_batch(rest.encode()).events() if isinstance(e, Trade)
    ] == [f"t{i}" for i in range(8)]


def test_columns_refuse_other_symbols_and_empty_records() -> None:
    cols = Columns("bybit", "ETH-USDT-PERP", "ETHUSDT")
    with pytest.raises(CodecError, match="mixes"):
        cols.append_event(TRADE_EVENT)
    with pytest.raises(CodecError, match="empty"):
        cols.encode()


def _fields(e: object) -> dict[str, object]:
    return {f: getattr(e, f) for f in e.__slots__}  # type: ignore[attr-defined]
