from __future__ import annotations

from monitor.core.config import ExchangeConfig
from producers.binance import BinanceAdapter
from producers.bybit import BybitAdapter
from producers.registry import ADAPTERS, EXCHANGES


def test_registry_covers_every_configurable_exchange() -> None:
    assert set(ADAPTERS) == set(EXCHANGES) == {
        "binance", "bybit", "okx", "htx", "gate", "bitget", "bitmex", "deribit", "kraken",
        "hyperliquid",
    }  # fmt: skip
    assert isinstance(ADAPTERS["binance"](ExchangeConfig()), BinanceAdapter)
    assert isinstance(ADAPTERS["bybit"](ExchangeConfig()), BybitAdapter)
    for name, factory in ADAPTERS.items():
        assert factory(ExchangeConfig()).exchange == name
