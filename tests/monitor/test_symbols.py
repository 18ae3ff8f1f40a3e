from __future__ import annotations

import pytest

from monitor.errors import ParseError, UnknownSymbolError
from monitor.symbols import SymbolTable, split_concatenated


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
