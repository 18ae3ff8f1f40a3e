"""The one explicit table of venue adapters: exchange name (as in the config) -> factory."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from monitor.core.config import ExchangeConfig
from producers.base import VenueAdapter
from producers.binance import BinanceAdapter
from producers.bitget import BitgetAdapter
from producers.bitmex import BitmexAdapter
from producers.bybit import BybitAdapter
from producers.deribit import DeribitAdapter
from producers.gate import GateAdapter
from producers.htx import HtxAdapter
from producers.hyperliquid import HyperliquidAdapter
from producers.kraken import KrakenAdapter
from producers.okx import OkxAdapter

ADAPTERS: Final[Mapping[str, Callable[[ExchangeConfig], VenueAdapter]]] = MappingProxyType(
    {
        "binance": BinanceAdapter,
        "bybit": BybitAdapter,
        "okx": OkxAdapter,
        "htx": HtxAdapter,
        "gate": GateAdapter,
        "bitget": BitgetAdapter,
        "bitmex": BitmexAdapter,
        "deribit": DeribitAdapter,
        "kraken": KrakenAdapter,
        "hyperliquid": HyperliquidAdapter,
    }
)
