"""Binance USD-M futures: ``!forceOrder@arr`` liquidations, ``<symbol>@aggTrade`` trades and
``<symbol>@markPrice@1s`` market context (mark, index, funding)."""

from producers.binance.parser import BinanceAdapter

__all__ = ["BinanceAdapter"]
