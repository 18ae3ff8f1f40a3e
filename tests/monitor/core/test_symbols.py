from __future__ import annotations

import pytest

from monitor.core.errors import ParseError, UnknownSymbolError
from monitor.core.symbols import Instrument, SymbolTable, split_concatenated


@pytest.mark.parametrize(
    ("venue", "expected"),
    [
        ("BTCUSDT", ("BTC", "USDT", None)),
        ("ethusdc", ("ETH", "USDC", None)),
        ("1000PEPEUSDT", ("1000PEPE", "USDT", None)),
        ("BTCFDUSD", ("BTC", "FDUSD", None)),
        ("BTCUSDT_250328", ("BTC", "USDT", "250328")),
    ],
)
def test_split(venue: str, expected: tuple[str, str, str | None]) -> None:
    assert split_concatenated(venue) == expected


@pytest.mark.parametrize("venue", ["USDT", "BTCEUR", "", "BTC/USDT", "X" * 30 + "USDT"])
def test_unknown_symbols_raise(venue: str) -> None:
    with pytest.raises(UnknownSymbolError):
        split_concatenated(venue)


def test_table_caches_and_caps() -> None:
    table = SymbolTable(max_symbols=2)
    a = table.resolve("BTCUSDT")
    assert a.symbol == "BTC-USDT-PERP" and a.contract_multiplier == 1.0
    assert table.resolve("BTCUSDT") is a
    table.resolve("ETHUSDT")
    with pytest.raises(ParseError) as exc:
        table.resolve("SOLUSDT")
    assert exc.value.reason == "symbol_cap"
    assert len(table) == 2


def test_linear_and_inverse_conversion() -> None:

    okx_linear = Instrument("BTC-USDT-SWAP", "BTC-USDT-PERP", "BTC", "USDT", 0.01)
    assert okx_linear.convert(100, 95000.0) == pytest.approx((1.0, 95000.0))
    okx_inverse = Instrument("BTC-USD-SWAP", "BTC-USD-PERP", "BTC", "USD", 100.0, inverse=True)
    qty_base, usd = okx_inverse.convert(13, 100000.0)
    assert usd == 1300.0 and qty_base == pytest.approx(0.013)


def test_strict_table_never_guesses_a_multiplier() -> None:

    table = SymbolTable(strict=True)
    with pytest.raises(ParseError) as exc:
        table.resolve("BTCUSDT")
    assert exc.value.reason == "unknown_instrument"
    inst = Instrument("BTC_USDT", "BTC-USDT-PERP", "BTC", "USDT", 0.0001)
    table.replace([inst])
    assert table.resolve("BTC_USDT") is inst and table.get("ETH_USDT") is None
    with pytest.raises(ParseError) as exc:
        SymbolTable(max_symbols=1, strict=True).replace([inst, Instrument("E", "E", "E", "U", 1)])
    assert exc.value.reason == "symbol_cap"
