"""Binance USD-M futures: ``!forceOrder@arr`` liquidations and ``<symbol>@aggTrade`` trades."""

from producers.binance.parser import BinanceAdapter

__all__ = ["BinanceAdapter"]
