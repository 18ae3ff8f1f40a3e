from __future__ import annotations

import dataclasses

import pytest

from monitor.core.errors import ParseError
from monitor.core.schema import (
    Coverage,
    Liquidation,
    OrderSide,
    PriceKind,
    QtyUnit,
    Side,
    Trade,
)
from producers.events import new_liquidation, new_trade, non_negative, positive, timestamp_ms

LIQ_ARGS = ("bybit", "BTC-USDT-PERP", "BTCUSDT", Side.LONG, None, 64000.5, PriceKind.BANKRUPTCY,
            0.5, QtyUnit.BASE, 1.0, 0.5, 32000.25, Coverage.AGGREGATED, 1760000000000, 7, "abc")  # fmt: skip
TRADE_ARGS = ("binance", "ETH-USDT-PERP", "ETHUSDT", OrderSide.SELL, 3400.5, 2.0, QtyUnit.BASE,
              1.0, 2.0, 6801.0, None, 1760000000001, 8, "42")  # fmt: skip


def test_fast_liquidation_equals_the_dataclass() -> None:
    fast, slow = new_liquidation(*LIQ_ARGS), Liquidation(*LIQ_ARGS)
    assert type(fast) is Liquidation
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert dataclasses.astuple(fast) == LIQ_ARGS
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.price = 1.0  # type: ignore[misc]


def test_fast_trade_equals_the_dataclass() -> None:
    fast, slow = new_trade(*TRADE_ARGS), Trade(*TRADE_ARGS)
    assert type(fast) is Trade
    assert fast == slow and hash(fast) == hash(slow)
    assert dataclasses.astuple(fast) == TRADE_ARGS
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.trade_id = "x"  # type: ignore[misc]
    assert dataclasses.replace(fast, price=1.0).price == 1.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.014", 0.014), ("9910", 9910.0), (3, 3.0), (2.5, 2.5), ("1e-8", 1e-8)],
)
def test_positive_accepts(value: object, expected: float) -> None:
    assert positive(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [("0", "bad_number"), ("-1", "bad_number"), ("nan", "bad_number"), ("inf", "bad_number"),
     ("x", "bad_number"), (0, "bad_number"), (10**400, "bad_number"), (True, "bad_type"),
     (None, "bad_type"), ([], "bad_type")],
)  # fmt: skip
def test_positive_refuses(value: object, reason: str) -> None:
    with pytest.raises(ParseError) as err:
        positive(value)
    assert err.value.reason == reason


def test_non_negative_and_timestamp() -> None:
    assert non_negative("0") == 0.0
    with pytest.raises(ParseError):
        non_negative("-0.1")
    assert timestamp_ms(1760000000000) == 1760000000000
    for bad in (0, -1, 1.5, "1760000000000", True, None):
        with pytest.raises(ParseError) as err:
            timestamp_ms(bad)
        assert err.value.reason == "bad_ts"
