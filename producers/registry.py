"""The one explicit table of venue adapters: exchange name (as in the config) -> factory."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from monitor.config import ExchangeConfig
from producers.base import VenueAdapter
from producers.binance import BinanceAdapter
from producers.bybit import BybitAdapter
from producers.gate import GateAdapter
from producers.htx import HtxAdapter

ADAPTERS: Final[Mapping[str, Callable[[ExchangeConfig], VenueAdapter]]] = MappingProxyType(
    {
        "binance": BinanceAdapter,
        "bybit": BybitAdapter,
        "htx": HtxAdapter,
        "gate": GateAdapter,
    }
)
